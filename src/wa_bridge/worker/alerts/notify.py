"""Post alert notifications to a Slack-compatible incoming webhook (``{"text": ...}``).

The body names the rule, its severity, the state and the rule's summary (labels and
numbers only: never personal data). A failed post returns False; the monitor tries again
on its next tick.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

import httpx

from wa_bridge.log import get_logger

__all__ = ["Notifier", "WebhookNotifier", "alert_text"]

log = get_logger("worker.alerts")
State = Literal["firing", "resolved"]
_ICON: Final = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}


def alert_text(*, rule: str, severity: str, state: State, summary: str) -> str:
    word = "FIRING" if state == "firing" else "RESOLVED"
    return f"{_ICON[state]} [{word}] wa-bridge {rule} ({severity}): {summary}"


class Notifier(Protocol):
    async def post(self, text: str) -> bool:
        """Deliver ``text``; True when the receiver took it."""
        ...

    async def aclose(self) -> None: ...


class WebhookNotifier:
    """POSTs ``{"text": ..., "username": "wa-bridge"}`` to one URL (all timeouts set)."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self._url = url
        timeout = httpx.Timeout(connect=timeout_s, read=timeout_s, write=timeout_s, pool=timeout_s)
        self._client = httpx.AsyncClient(timeout=timeout)

    async def post(self, text: str) -> bool:
        try:
            response = await self._client.post(
                self._url, json={"text": text, "username": "wa-bridge"}
            )
        except httpx.HTTPError as exc:
            log.warning("alert_post_failed", error_class=type(exc).__name__)
            return False
        if response.status_code >= 300:
            log.warning("alert_post_refused", status=response.status_code)
            return False
        return True

    async def aclose(self) -> None:
        await self._client.aclose()
