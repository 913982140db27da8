"""What a posting route (inbox events, consents) answers when it takes nothing, and how
its OpenAPI entry documents those answers.

The body is ``{"error": <code>, "detail": <what is wrong>}``; a 503 (Kafka is down)
carries ``Retry-After``, so the caller retries and nothing is lost.
"""

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from wa_bridge.bus.producer import RETRY_AFTER_S

__all__ = ["Problem", "problem_answer", "problem_responses"]


class Problem(BaseModel):
    """An error code and what is wrong; each route subclasses it to name its own schema."""

    error: str
    detail: str


def problem_answer(status: int, error: str, detail: str) -> JSONResponse:
    """The answer of ``status`` with the problem body (and Retry-After on a 503)."""
    headers = {"Retry-After": str(int(RETRY_AFTER_S))} if status == 503 else None
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def problem_responses(
    model: type[Problem], *, bad_request: str, unauthorized: str, forbidden: str, too_large: str
) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a bearer-guarded posting route: 400, 413 and 503 with ``model``
    as the body, 401 and 403 from the guard; each described by the given text."""

    def problem(description: str) -> dict[str, Any]:
        return {"model": model, "description": description}

    return {
        400: problem(bad_request),
        401: {"description": unauthorized},
        403: {"description": forbidden},
        413: problem(too_large),
        503: {
            **problem("Kafka is unavailable: retry after the given seconds"),
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before retrying",
                    "schema": {"type": "integer"},
                }
            },
        },
    }
