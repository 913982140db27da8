"""Ops routes: ``/healthz`` (the process is up), ``/readyz`` (Kafka is reachable), ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from wa_bridge import metrics

__all__ = ["HealthStatus", "build_health_router"]


class HealthStatus(BaseModel):
    status: Literal["ok", "ready", "not_ready"]
    detail: str | None = None


def build_health_router(is_ready: Callable[[], bool]) -> APIRouter:
    """``is_ready`` must be cheap (no I/O): it is called on every probe."""
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
        responses={503: {"model": HealthStatus, "description": "Kafka is not reachable"}},
    )
    async def readyz() -> HealthStatus | JSONResponse:
        if is_ready():
            return HealthStatus(status="ready")
        return JSONResponse(
            status_code=503,
            content={"status": "not_ready", "detail": "Kafka is not reachable"},
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
