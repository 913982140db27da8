"""``POST /inbox/events``: the agents' inbox posts conversation outcomes, we put them on Kafka.

(No ``from __future__ import annotations`` here: FastAPI must evaluate the handler's
annotations, which name a per-router dependency alias.)

The same safety rule as the webhook: 202 only once Kafka acknowledged every event of the
request, 503 (with Retry-After) when the bus is down, so the inbox retries and nothing is
lost; a repeated post is harmless because the canonical id is ``inbox:<posted id>`` and
the worker deduplicates by id. A request is all or nothing: if one event is invalid,
none is published and the 400 names each bad event and field.

The caller needs a bearer token of role ``inbox`` (``inbox:<token>`` in
WA_BRIDGE_ADMIN_TOKENS). That role may do nothing else, and no other role may post here.
An inbox that cannot hold a bearer token may sign each call instead, as Meta signs its
webhooks: ``X-Inbox-Signature-256: sha256=<hex HMAC-SHA256 of the exact body>`` with a
secret of WA_BRIDGE_INBOX_SIGNING_SECRETS (its own: never the Meta app secret). A bearer
token, when sent, is checked first and decides. The body is parsed by hand rather than by
a FastAPI body parameter so that auth is checked before the body is read (a signature,
once it is read, before it is parsed) and bad input gets a 400 with our reasons (FastAPI
answers 422).
"""

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, SecretStr, TypeAdapter

from wa_bridge.auth import Principal, TokenBook
from wa_bridge.bus.producer import EventPublisher
from wa_bridge.errors import BusUnavailable, InvalidEvent
from wa_bridge.events import CanonicalEvent
from wa_bridge.log import get_logger
from wa_bridge.metrics import EVENTS_PUBLISHED
from wa_bridge.normalize.inbox import InboxEventIn, normalize_inbox_event
from wa_bridge.receiver._reject import Reject
from wa_bridge.receiver.guard import bearer_guard
from wa_bridge.receiver.problems import Problem, problem_answer, problem_responses
from wa_bridge.receiver.signature import verify_signature
from wa_bridge.settings import Settings

__all__ = [
    "INBOX_PATH",
    "INBOX_SIGNATURE_HEADER",
    "MAX_EVENTS_PER_REQUEST",
    "InboxAccepted",
    "build_inbox_router",
    "inbox_api",
    "json_body_doc",
]

INBOX_PATH: Final = "/inbox/events"
INBOX_SIGNATURE_HEADER: Final = "X-Inbox-Signature-256"
MAX_EVENTS_PER_REQUEST: Final = 500
_MAX_REASONS: Final = 20

log = get_logger("receiver.inbox")


class InboxAccepted(BaseModel):
    """Every event of the request is on Kafka (acknowledged)."""

    events: int
    ids: list[str]


class InboxProblem(Problem):
    """Why the request was not accepted; nothing of it was published."""


_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="InboxBearer",
    description="inbox:token from WA_BRIDGE_ADMIN_TOKENS (role inbox)",
)


_SIGNATURE = APIKeyHeader(
    name=INBOX_SIGNATURE_HEADER,
    auto_error=False,
    scheme_name="InboxSignature",
    description="sha256=<hex HMAC-SHA256 of the body> with a secret of "
    "WA_BRIDGE_INBOX_SIGNING_SECRETS (for an inbox that cannot hold a bearer token)",
)
# Who posted a signed call, once its signature is checked against the body.
SIGNED: Final = Principal(role="inbox", actor="signature")


def _require_inbox(tokens: TokenBook, signing: bool) -> Callable[..., Awaitable[Principal | None]]:
    """The caller's principal (a bearer token of role inbox), or None for a signed call
    (``signing``: secrets are configured) whose signature the route checks on the body;
    else 401 / 403 as for any bearer route."""
    bearer = bearer_guard(
        tokens, "inbox", _BEARER, refused="posting inbox events needs the inbox role"
    )

    async def dependency(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
        signature: Annotated[str | None, Depends(_SIGNATURE)],
    ) -> Principal | None:
        if credentials is None and signature is not None and signing:
            return None
        if credentials is None and signature is not None:
            raise HTTPException(
                status_code=401,
                detail="signed inbox calls need WA_BRIDGE_INBOX_SIGNING_SECRETS; "
                "use a bearer token of role inbox",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await bearer(credentials)

    return dependency


def _request_body_doc() -> dict[str, Any]:
    """The body's JSON Schema (one event or a list) with its ``$defs`` inlined."""
    return json_body_doc(TypeAdapter(InboxEventIn | list[InboxEventIn]).json_schema())


def json_body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    """An ``openapi_extra`` request body of JSON ``schema``, its ``$defs`` inlined (an
    OpenAPI document has no ``$defs`` of its own for ``#/$defs/...`` to point at)."""
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline(schema)}},
        }
    }


def build_inbox_router(
    *,
    tokens: TokenBook,
    publisher: EventPublisher,
    max_body_bytes: int,
    max_events: int = MAX_EVENTS_PER_REQUEST,
    signing_secrets: Sequence[SecretStr] = (),
) -> APIRouter:
    """The ``/inbox/events`` route, publishing through ``publisher`` (the receiver's);
    calls signed with one of ``signing_secrets`` are taken without a bearer token."""
    router = APIRouter(tags=["inbox"])
    secrets = [secret.get_secret_value().encode() for secret in signing_secrets]
    inbox = Annotated[Principal | None, Depends(_require_inbox(tokens, bool(secrets)))]

    @router.post(
        INBOX_PATH,
        status_code=202,
        response_model=InboxAccepted,
        summary="Post agents' inbox events (one, or a list)",
        responses=problem_responses(
            InboxProblem,
            bad_request="Malformed JSON or an invalid event; detail names each one",
            unauthorized="No bearer token or signature, or a wrong one",
            forbidden="The token's role is not inbox",
            too_large="The body or the number of events is over the limit",
        ),
        openapi_extra=_request_body_doc(),
    )
    async def post_inbox_events(request: Request, who: inbox) -> Response:
        """Publish the events to Kafka; 202 once Kafka acknowledged every one of them.

        ``type``: assigned (needs ``agent``), handoff (a bot hands over to a person, with
        ``queue``, ``intents`` and ``captured`` data), tagged (needs ``tags``), resolved,
        converted (``value`` and ``currency``), csat (needs ``csat`` 1-5).
        ``conversation_id`` is the inbox's own id: events naming it land on one case.
        ``id`` is the idempotency key: posting the same id again (after a timeout, say)
        takes effect once. Authenticate with a bearer token of role inbox, or sign the
        body (``X-Inbox-Signature-256``).
        """
        try:
            body = await _read_body(request, max_body_bytes)
            if who is None:
                who = _signed(request, body, secrets)
            events = _events(body, max_events)
            await _publish(publisher, events)
        except Reject as reject:
            log.warning("inbox_rejected", status=reject.status, error=reject.error)
            return problem_answer(reject.status, reject.error, reject.detail)
        log.info("inbox_events_published", events=len(events), role=who.role)
        accepted = InboxAccepted(events=len(events), ids=[event.id for event in events])
        return JSONResponse(accepted.model_dump(), status_code=202)

    return router


def inbox_api(settings: Settings, publisher: EventPublisher) -> APIRouter:
    """The inbox route for a deployment: tokens from WA_BRIDGE_ADMIN_TOKENS (``inbox:...``).

    Always mounted; with no inbox token configured every post gets 401. Raises ConfigError
    for malformed tokens.
    """
    return build_inbox_router(
        tokens=TokenBook(settings.admin_tokens),
        publisher=publisher,
        max_body_bytes=settings.max_body_bytes,
        signing_secrets=settings.inbox_signing_secrets,
    )


def _signed(request: Request, body: bytes, secrets: Sequence[bytes]) -> Principal:
    """The signed caller, if the signature header is a valid signature of ``body``."""
    header = request.headers.get(INBOX_SIGNATURE_HEADER)
    if not verify_signature(body, header.encode() if header else None, secrets):
        raise Reject(401, "bad_signature", f"{INBOX_SIGNATURE_HEADER} does not sign this body")
    return SIGNED


async def _read_body(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise Reject(400, "bad_content_length", "Content-Length is not a number")
        if int(declared) > cap:
            raise Reject(413, "body_too_large", f"the body exceeds {cap} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise Reject(413, "body_too_large", f"the body exceeds {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _events(body: bytes, max_events: int) -> list[CanonicalEvent]:
    """Parse and normalize every posted event, or raise Reject naming all bad ones."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Reject(400, "malformed_json", str(exc)) from exc
    if isinstance(payload, list):
        if not payload:
            raise Reject(400, "invalid_event", "the list of events is empty")
        if len(payload) > max_events:
            raise Reject(
                413, "too_many_events", f"at most {max_events} events per request, not more"
            )
        items, labels = payload, [f"events[{i}]: " for i in range(len(payload))]
    else:
        items, labels = [payload], [""]
    received_at = datetime.now(UTC)
    events: list[CanonicalEvent] = []
    reasons: list[str] = []
    first_at: dict[str, int] = {}
    for index, (item, label) in enumerate(zip(items, labels, strict=True)):
        try:
            event = normalize_inbox_event(item, received_at=received_at)
        except InvalidEvent as exc:
            reasons.append(label + str(exc))
            continue
        if event.id in first_at:
            reasons.append(f"{label}id: repeats the id of events[{first_at[event.id]}]")
            continue
        first_at[event.id] = index
        events.append(event)
    if reasons:
        shown = reasons[:_MAX_REASONS]
        more = len(reasons) - len(shown)
        detail = "; ".join(shown) + (f"; and {more} more" if more else "")
        raise Reject(400, "invalid_event", detail)
    return events


async def _publish(publisher: EventPublisher, events: list[CanonicalEvent]) -> None:
    try:
        await publisher.publish_many(events)
        EVENTS_PUBLISHED.inc(len(events))
    except BusUnavailable as exc:
        raise Reject(503, "bus_unavailable", str(exc)) from exc
