"""The webhook routes as FastAPI sees them: for the OpenAPI document only.

Requests to ``/webhooks/whatsapp`` never reach FastAPI: the dispatcher in ``app.py`` hands
them to the raw :class:`~wa_bridge.receiver.webhook.WebhookEndpoint` first. Declaring the
routes here keeps the served OpenAPI document (and ``openapi.yaml``) complete.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from wa_bridge.receiver.webhook import WEBHOOK_PATH

__all__ = ["ErrorBody", "PublishedBody", "build_webhook_docs_router"]


class ErrorBody(BaseModel):
    error: str
    detail: str


class PublishedBody(BaseModel):
    events: int


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_HANDSHAKE_PARAMS: list[dict[str, Any]] = [
    {"name": name, "in": "query", "required": True, "schema": {"type": "string"}, **extra}
    for name, extra in (
        ("hub.mode", {"description": "Always `subscribe`."}),
        ("hub.verify_token", {"description": "Must equal WA_BRIDGE_VERIFY_TOKEN."}),
        ("hub.challenge", {"description": "Echoed back as the response body."}),
    )
]

_POST_EXTRA: dict[str, Any] = {
    "parameters": [
        {
            "name": "X-Hub-Signature-256",
            "in": "header",
            "required": True,
            "description": "`sha256=` + hex HMAC-SHA256 of the raw body with a Meta app secret.",
            "schema": {"type": "string", "pattern": "^sha256=[0-9a-fA-F]{64}$"},
        }
    ],
    "requestBody": {
        "required": True,
        "description": "A Meta WhatsApp Business Account webhook, as Meta sends it.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["object", "entry"],
                    "properties": {
                        "object": {"type": "string", "example": "whatsapp_business_account"},
                        "entry": {"type": "array", "items": {"type": "object"}},
                    },
                }
            }
        },
    },
}


def _served_by_raw_endpoint() -> None:
    raise HTTPException(status_code=500, detail="served by the raw webhook endpoint")


def build_webhook_docs_router() -> APIRouter:
    router = APIRouter(tags=["webhook"])

    @router.get(
        WEBHOOK_PATH,
        summary="Meta's verification handshake",
        description="Answers `hub.challenge` as text/plain when the mode and token match.",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "The handshake succeeded; the body is hub.challenge.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            403: {
                "description": "Wrong hub.mode or hub.verify_token.",
                "content": {"application/json": {"schema": ErrorBody.model_json_schema()}},
            },
        },
        openapi_extra={"parameters": _HANDSHAKE_PARAMS},
    )
    async def verify_webhook() -> None:
        _served_by_raw_endpoint()

    @router.post(
        WEBHOOK_PATH,
        summary="Receive a webhook from Meta",
        description=(
            "Verifies the signature, normalizes the payload to canonical events and answers "
            "200 only once Kafka acknowledged every event (acks=all)."
        ),
        response_model=PublishedBody,
        responses={
            200: {"description": "Every event was acknowledged by Kafka; `events` counts them."},
            400: _error(
                "Malformed JSON, JSON nested deeper than WA_BRIDGE_MAX_JSON_DEPTH (too_deep), "
                "or not a WhatsApp Business Account webhook."
            ),
            401: _error("X-Hub-Signature-256 is missing or does not match; nothing published."),
            405: _error("Method not allowed."),
            413: _error("The body exceeds WA_BRIDGE_MAX_BODY_BYTES."),
            503: {
                **_error("Kafka did not acknowledge in time; retry later (nothing was lost)."),
                "headers": {
                    "Retry-After": {"description": "Seconds.", "schema": {"type": "integer"}}
                },
            },
        },
        openapi_extra=_POST_EXTRA,
    )
    async def receive_webhook() -> PublishedBody:
        _served_by_raw_endpoint()
        return PublishedBody(events=0)  # pragma: no cover - unreachable

    return router
