"""An early answer from a receiver endpoint, raised while reading or checking a request."""

from __future__ import annotations

__all__ = ["Reject"]


class Reject(Exception):
    """An early answer: status, error code and detail."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
