"""``POST /consents``: opt-in evidence captured outside WhatsApp, onto Kafka for the ledger.

(No ``from __future__ import annotations`` here: FastAPI must evaluate the handler's
annotations.)

A web form, a point of sale or an SMS flow records that a customer agreed to WhatsApp
messages for a purpose, with the text they were shown (:class:`ConsentIn`). The caller
needs a bearer token of role ``operator`` (WA_BRIDGE_ADMIN_TOKENS); every accepted record
is audited (``consent.record``, by the token's hash). As for the webhook and the inbox:
202 only once Kafka acknowledged the event, 503 with Retry-After when the bus is down,
400 naming what is wrong; the canonical id is ``consent:<id>``, so a repeated post is
recorded once. The worker appends it to the consent ledger; when it is the contact's
latest consent, the CRM gets the new state.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Final

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel

from wa_bridge.auth import Principal, TokenBook
from wa_bridge.bus.producer import EventPublisher
from wa_bridge.errors import BusUnavailable, InvalidEvent
from wa_bridge.log import get_logger
from wa_bridge.metrics import EVENTS_PUBLISHED
from wa_bridge.normalize.consent import ConsentIn, normalize_consent
from wa_bridge.receiver.guard import bearer_guard
from wa_bridge.receiver.inbox import json_body_doc
from wa_bridge.receiver.problems import Problem, problem_answer, problem_responses

__all__ = ["CONSENTS_PATH", "ConsentAccepted", "build_consents_router"]

CONSENTS_PATH: Final = "/consents"
_MAX_BODY_BYTES: Final = 64 * 1024

log = get_logger("ops.consents")
Audit = Callable[[Principal, str, str, str], Awaitable[None]]


class ConsentAccepted(BaseModel):
    """The record is on Kafka (acknowledged); the worker adds it to the ledger."""

    id: str


class ConsentProblem(Problem):
    """Why the record was not accepted; nothing was published."""


_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="ConsentBearer",
    description="operator:token from WA_BRIDGE_ADMIN_TOKENS",
)


def build_consents_router(
    *, tokens: TokenBook, publisher: EventPublisher, audit: Audit
) -> APIRouter:
    """The ``/consents`` route (role operator), publishing through ``publisher`` and
    auditing each accepted record through ``audit(who, action, target, detail)``."""
    router = APIRouter(tags=["consents"])
    guard = bearer_guard(
        tokens, "operator", _BEARER, refused="recording consent needs the operator role"
    )
    operator = Annotated[Principal, Depends(guard)]

    @router.post(
        CONSENTS_PATH,
        status_code=202,
        response_model=ConsentAccepted,
        summary="Record consent evidence (opt-in from a web form, POS, SMS…)",
        responses=problem_responses(
            ConsentProblem,
            bad_request="Malformed JSON or an invalid record",
            unauthorized="No bearer token, or an unknown one",
            forbidden="The token's role is not operator",
            too_large="The body is over 64 KiB",
        ),
        openapi_extra=json_body_doc(ConsentIn.model_json_schema()),
    )
    async def post_consent(request: Request, who: operator) -> Response:
        """Add the evidence to the consent ledger (through Kafka and the worker).

        ``status`` opt_in (default) or opt_out; ``captured_via``: web_form, pos, sms…;
        ``purpose``: marketing (default), utility…; ``text_shown``: the wording the
        customer accepted; ``time``: when. The contact's state is its latest consent by
        ``time``. ``id`` is the idempotency key: posting it again records it once.
        """
        body = await request.body()
        if len(body) > _MAX_BODY_BYTES:
            return problem_answer(
                413, "body_too_large", f"the body exceeds {_MAX_BODY_BYTES} bytes"
            )
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return problem_answer(400, "malformed_json", str(exc))
        try:
            event = normalize_consent(raw, received_at=datetime.now(UTC), recorded_by=who.actor)
        except InvalidEvent as exc:
            return problem_answer(400, "invalid_consent", str(exc))
        try:
            await publisher.publish_many([event])
        except BusUnavailable as exc:
            log.warning("consent_rejected", status=503, error="bus_unavailable")
            return problem_answer(503, "bus_unavailable", str(exc))
        EVENTS_PUBLISHED.inc()
        data = event.data
        detail = f"{data['status']} {data['purpose']} via {data['captured_via']}"
        await audit(who, "consent.record", event.id, detail)
        log.info("consent_published", event_id=event.id, role=who.role)
        return JSONResponse(ConsentAccepted(id=event.id).model_dump(), status_code=202)

    return router
