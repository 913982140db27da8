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
The body is parsed by hand rather than by a FastAPI body parameter so that auth is checked
before the body is read and bad input gets a 400 with our reasons (FastAPI answers 422).
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, TypeAdapter

from wa_bridge.auth import Principal, TokenBook
from wa_bridge.bus.producer import RETRY_AFTER_S, EventPublisher
from wa_bridge.errors import BusUnavailable, InvalidEvent
from wa_bridge.events import CanonicalEvent
from wa_bridge.log import get_logger
from wa_bridge.metrics import EVENTS_PUBLISHED
from wa_bridge.normalize.inbox import InboxEventIn, normalize_inbox_event
from wa_bridge.receiver.guard import bearer_guard
from wa_bridge.settings import Settings

__all__ = [
    "INBOX_PATH",
    "MAX_EVENTS_PER_REQUEST",
    "InboxAccepted",
    "build_inbox_router",
    "inbox_api",
]

INBOX_PATH: Final = "/inbox/events"
MAX_EVENTS_PER_REQUEST: Final = 500
_MAX_REASONS: Final = 20

log = get_logger("receiver.inbox")


class InboxAccepted(BaseModel):
    """Every event of the request is on Kafka (acknowledged)."""

    events: int
    ids: list[str]


class InboxProblem(BaseModel):
    """Why the request was not accepted; nothing of it was published."""

    error: str
    detail: str


class _Reject(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail


_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="InboxBearer",
    description="inbox:token from WA_BRIDGE_ADMIN_TOKENS (role inbox)",
)


def _require_inbox(tokens: TokenBook) -> Callable[..., Awaitable[Principal]]:
    return bearer_guard(
        tokens, "inbox", _BEARER, refused="posting inbox events needs the inbox role"
    )


def _problem(description: str) -> dict[str, Any]:
    return {"model": InboxProblem, "description": description}


def _request_body_doc() -> dict[str, Any]:
    """The body's JSON Schema (one event or a list) with its ``$defs`` inlined."""
    schema = TypeAdapter(InboxEventIn | list[InboxEventIn]).json_schema()
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
) -> APIRouter:
    """The ``/inbox/events`` route, publishing through ``publisher`` (the receiver's)."""
    router = APIRouter(tags=["inbox"])
    inbox = Annotated[Principal, Depends(_require_inbox(tokens))]

    @router.post(
        INBOX_PATH,
        status_code=202,
        response_model=InboxAccepted,
        summary="Post agents' inbox events (one, or a list)",
        responses={
            400: _problem("Malformed JSON or an invalid event; detail names each one"),
            401: {"description": "No bearer token, or an unknown one"},
            403: {"description": "The token's role is not inbox"},
            413: _problem("The body or the number of events is over the limit"),
            503: {
                **_problem("Kafka is unavailable: retry after the given seconds"),
                "headers": {
                    "Retry-After": {
                        "description": "Seconds to wait before retrying",
                        "schema": {"type": "integer"},
                    }
                },
            },
        },
        openapi_extra=_request_body_doc(),
    )
    async def post_inbox_events(request: Request, who: inbox) -> Response:
        """Publish the events to Kafka; 202 once Kafka acknowledged every one of them.

        ``type``: assigned (needs ``agent``), tagged (needs ``tags``), resolved,
        converted, csat (needs ``csat`` 1-5). ``id`` is the idempotency key: posting the
        same id again (after a timeout, say) takes effect once.
        """
        try:
            body = await _read_body(request, max_body_bytes)
            events = _events(body, max_events)
            await _publish(publisher, events)
        except _Reject as reject:
            log.warning("inbox_rejected", status=reject.status, error=reject.error)
            headers = {"Retry-After": str(int(RETRY_AFTER_S))} if reject.status == 503 else None
            content = {"error": reject.error, "detail": reject.detail}
            return JSONResponse(content, status_code=reject.status, headers=headers)
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
    )


async def _read_body(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise _Reject(400, "bad_content_length", "Content-Length is not a number")
        if int(declared) > cap:
            raise _Reject(413, "body_too_large", f"the body exceeds {cap} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise _Reject(413, "body_too_large", f"the body exceeds {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _events(body: bytes, max_events: int) -> list[CanonicalEvent]:
    """Parse and normalize every posted event, or raise _Reject naming all bad ones."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _Reject(400, "malformed_json", str(exc)) from exc
    if isinstance(payload, list):
        if not payload:
            raise _Reject(400, "invalid_event", "the list of events is empty")
        if len(payload) > max_events:
            raise _Reject(
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
        raise _Reject(400, "invalid_event", detail)
    return events


async def _publish(publisher: EventPublisher, events: list[CanonicalEvent]) -> None:
    try:
        await publisher.publish_many(events)
        EVENTS_PUBLISHED.inc(len(events))
    except BusUnavailable as exc:
        raise _Reject(503, "bus_unavailable", str(exc)) from exc
