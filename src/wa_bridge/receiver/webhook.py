"""The webhook endpoint, ``/webhooks/whatsapp``: a small raw ASGI app (the hot path).

GET answers Meta's verification handshake. POST reads the body under a size cap, checks
``X-Hub-Signature-256`` against every configured app secret, parses with orjson, refuses
JSON nested deeper than ``max_json_depth`` (Meta's webhooks are about ten levels deep; a
deeper body could not be kept as a raw copy), normalizes, publishes every event and
answers 200 only once Kafka acknowledged them all.

No framework and no per-request models here: measured, a FastAPI route does a third of
the requests per second of this endpoint. Every answer is a small JSON body
``{"error": ..., "detail": ...}`` (or ``{"events": n}``); a 500 is always a bug.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from datetime import datetime
from typing import Any, Final, Protocol
from urllib.parse import parse_qs

import orjson

from wa_bridge.bus.producer import RETRY_AFTER_S, EventPublisher
from wa_bridge.errors import BusUnavailable, InvalidEvent
from wa_bridge.events import CanonicalEvent
from wa_bridge.metrics import count_webhook_changes
from wa_bridge.normalize.bounds import without_nul
from wa_bridge.normalize.meta import rfc3339_now
from wa_bridge.receiver._outcomes import Outcomes
from wa_bridge.receiver._reject import Reject
from wa_bridge.receiver.signature import SIGNATURE_HEADER, SignatureVerifier, verify_token

__all__ = ["DEFAULT_MAX_JSON_DEPTH", "WEBHOOK_PATH", "Normalizer", "WebhookEndpoint"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WEBHOOK_PATH: Final = "/webhooks/whatsapp"
_SIGNATURE_HEADER: Final = SIGNATURE_HEADER.encode()
_JSON: Final = (b"content-type", b"application/json")
DEFAULT_MAX_JSON_DEPTH: Final = 64


class Normalizer(Protocol):
    """``wa_bridge.normalize.normalize_webhook``: raises InvalidEvent for a non-webhook;
    ``received_at`` is a moment or its RFC 3339 text."""

    def __call__(self, payload: object, *, received_at: datetime | str) -> list[CanonicalEvent]: ...


class WebhookEndpoint:
    """The ASGI app serving ``GET`` and ``POST`` on the webhook path."""

    def __init__(
        self,
        *,
        app_secrets: Sequence[bytes],
        verify_token: str,
        max_body_bytes: int,
        publisher: EventPublisher,
        normalize: Normalizer,
        outcomes: Outcomes | None = None,
        max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
    ) -> None:
        self._verify_signature = SignatureVerifier(app_secrets)
        self._max_json_depth = max_json_depth
        self._verify_token = verify_token
        self._max_body_bytes = max_body_bytes
        self._publisher = publisher
        self._normalize = normalize
        self._outcomes = outcomes or Outcomes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST: read, verify, parse, normalize, publish; 200 once Kafka acknowledged all.

        The whole POST is this one coroutine (the hot path): every nested coroutine costs
        a frame to create, and one more to resume when the acknowledgement arrives.
        """
        if scope["method"] != "POST":
            await self._not_post(scope, send)
            return
        try:
            signature, declared = _signature_and_length(scope)
            cap = self._max_body_bytes
            if declared is not None:
                _check_declared(declared, cap)
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                # The common case: the whole body arrived in one message; no copy.
                body: bytes = message.get("body", b"")
                if len(body) > cap:
                    raise Reject(413, "body_too_large", f"the body exceeds {cap} bytes")
            else:
                body = await _read_rest(receive, message, cap)
            payload = self._verified_payload(body, signature)
            try:
                events = self._normalize(payload, received_at=rfc3339_now())
            except InvalidEvent as exc:
                count_webhook_changes(payload, "not_a_webhook")
                raise Reject(400, "not_a_webhook", str(exc)) from exc
            try:
                await self._publisher.publish_many(events)
            except BusUnavailable as exc:
                count_webhook_changes(payload, "bus_unavailable")
                raise Reject(503, "bus_unavailable", str(exc)) from exc
        except Reject as reject:
            self._outcomes.record(reject.status, reject.error)
            extra = [(b"retry-after", b"%d" % RETRY_AFTER_S)] if reject.status == 503 else []
            await _send_json(
                send, reject.status, {"error": reject.error, "detail": reject.detail}, extra=extra
            )
            return
        count_webhook_changes(payload, "published")
        count = len(events)
        self._outcomes.published(count)
        headers, answer = _published_answer(count)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def _not_post(self, scope: Scope, send: Send) -> None:
        if scope["method"] in ("GET", "HEAD"):
            await self._handshake(scope, send)
        else:
            await _send_json(
                send,
                405,
                {"error": "method_not_allowed", "detail": "use GET or POST"},
                extra=[(b"allow", b"GET, HEAD, POST")],
            )

    async def _handshake(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        mode = query.get("hub.mode", [""])[0]
        token = query.get("hub.verify_token", [""])[0]
        challenge = query.get("hub.challenge", [""])[0]
        if mode == "subscribe" and verify_token(token, self._verify_token):
            self._outcomes.record(200, "handshake", is_post=False)
            body = challenge.encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        self._outcomes.record(403, "handshake_refused", is_post=False)
        await _send_json(
            send,
            403,
            {"error": "forbidden", "detail": "hub.mode must be subscribe and the token must match"},
        )

    def _verified_payload(self, body: bytes, signature: bytes | None) -> Any:
        """The parsed body once its signature matched (a plain call, no coroutine)."""
        if not self._verify_signature(body, signature):
            raise Reject(
                401, "bad_signature", "X-Hub-Signature-256 is missing or does not match the body"
            )
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if "depth" in str(exc):  # orjson's own limit (1024), far past ours
                raise self._too_deep() from exc
            raise Reject(400, "malformed_json", str(exc)) from exc
        limit = self._max_json_depth
        # Fewer brackets than the limit cannot nest deeper than it: the common case costs
        # two C-level scans of the body, no walk.
        if body.count(b"{") + body.count(b"[") > limit and _deeper_than(payload, limit):
            raise self._too_deep()
        # PostgreSQL stores no NUL. A body without a backslash has no escape at all: one
        # byte search (memchr) answers for most bodies, before the slower substring one.
        if b"\\" in body and b"\\u0000" in body:
            payload = without_nul(payload)
        return payload

    def _too_deep(self) -> Reject:
        return Reject(
            400,
            "too_deep",
            f"JSON nesting deeper than {self._max_json_depth} levels is refused",
        )


def _check_declared(declared: bytes, cap: int) -> None:
    """Refuse a Content-Length that is not a number or is over ``cap`` before reading."""
    if not declared.strip().isdigit():
        raise Reject(400, "bad_content_length", "Content-Length is not a number")
    if int(declared) > cap:
        raise Reject(413, "body_too_large", f"the body exceeds {cap} bytes")


async def _read_rest(receive: Receive, message: Message, cap: int) -> bytes:
    """The body of a request that arrives in several messages (``message``: the first)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise Reject(400, "client_disconnected", "the client went away mid-body")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise Reject(413, "body_too_large", f"the body exceeds {cap} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


def _deeper_than(value: object, limit: int) -> bool:
    """True when objects and arrays nest more than ``limit`` levels (the top is level 1)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[object] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _signature_and_length(scope: Scope) -> tuple[bytes | None, bytes | None]:
    """The signature and Content-Length headers (first of each), in one pass."""
    signature: bytes | None = None
    length: bytes | None = None
    for key, value in scope["headers"]:
        if key == _SIGNATURE_HEADER:
            if signature is None:
                signature = bytes(value)
        elif key == b"content-length" and length is None:
            length = bytes(value)
    return signature, length


# The 200 answer depends only on the number of events: built once per count.
_PUBLISHED_ANSWERS: dict[int, tuple[bytes, bytes]] = {}
_PUBLISHED_ANSWERS_MAX: Final = 256


def _published_answer(count: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    cached = _PUBLISHED_ANSWERS.get(count)
    if cached is None:
        body = orjson.dumps({"events": count})
        cached = (str(len(body)).encode(), body)
        if len(_PUBLISHED_ANSWERS) < _PUBLISHED_ANSWERS_MAX:
            _PUBLISHED_ANSWERS[count] = cached
    length, body = cached
    # A fresh list each time: middleware may edit the headers of a message in place.
    return [_JSON, (b"content-length", length)], body


async def _send_json(
    send: Send, status: int, content: object, *, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = orjson.dumps(content)
    headers = [_JSON, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
