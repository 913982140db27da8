"""Ops routes: ``/healthz`` (the process is up), ``/readyz`` (ready to take webhooks),
``/metrics``.

``/readyz`` answers 503 while Kafka is not reachable, or while a part of the process said
why it is not ready (:class:`Readiness`: ``wa-bridge dev`` reports a paused worker there,
while the receiver keeps acknowledging webhooks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from wa_bridge import metrics

__all__ = ["HealthStatus", "Readiness", "build_health_router"]

KAFKA_DOWN: Final = "Kafka is not reachable"


class HealthStatus(BaseModel):
    status: Literal["ok", "ready", "not_ready"]
    detail: str | None = None


class Readiness:
    """Why parts of the process are not ready, by part name; no I/O, safe to read on
    every probe. A part sets its reason when it stops doing its job and clears it when it
    resumes."""

    def __init__(self) -> None:
        self._reasons: dict[str, str] = {}
        self._watched: dict[str, Callable[[], str | None]] = {}

    def set_not_ready(self, part: str, reason: str) -> None:
        self._reasons[part] = reason

    def clear(self, part: str) -> None:
        self._reasons.pop(part, None)

    def watch(self, part: str, reason: Callable[[], str | None]) -> None:
        """Ask ``reason()`` (cheap, no I/O) on every probe: why ``part`` is not ready now,
        or None (``wa-bridge dev``: a worker paused until the CRM's budget is back)."""
        self._watched[part] = reason

    def reason(self) -> str | None:
        """Every part's reason, joined (None when every part is ready)."""
        watched = [r for get in self._watched.values() if (r := get()) is not None]
        return "; ".join([*self._reasons.values(), *watched]) or None


def build_health_router(
    is_ready: Callable[[], bool], readiness: Readiness | None = None
) -> APIRouter:
    """``is_ready`` (Kafka) must be cheap (no I/O): it is called on every probe."""
    router = APIRouter(tags=["health"])

    @router.get(
        "/healthz",
        response_model=HealthStatus,
        summary="Liveness: 200 whenever the process is up",
    )
    async def healthz() -> HealthStatus:
        return HealthStatus(status="ok")

    @router.get(
        "/readyz",
        response_model=HealthStatus,
        summary="Readiness: 200 when the Kafka producer is connected and the broker answered",
        responses={
            503: {
                "model": HealthStatus,
                "description": "Kafka is not reachable, or a part of the process (the "
                "worker of `wa-bridge dev`) is paused: `detail` says why",
            }
        },
    )
    async def readyz() -> HealthStatus | JSONResponse:
        reason = readiness.reason() if readiness is not None else None
        if reason is None and is_ready():
            return HealthStatus(status="ready")
        return JSONResponse(
            status_code=503,
            content={"status": "not_ready", "detail": reason or KAFKA_DOWN},
        )

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {metrics.CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def prometheus_metrics() -> Response:
        return Response(content=metrics.render(), media_type=metrics.CONTENT_TYPE)

    return router
