"""Meta webhook body → canonical events. Pure: no I/O, safe to call on the hot path.

>>> normalize_webhook(body, received_at=datetime.now(UTC))  # doctest: +SKIP
"""

from __future__ import annotations

from wa_bridge.normalize.meta import NotAWebhook
from wa_bridge.normalize.to_events import normalize_webhook

__all__ = ["NotAWebhook", "normalize_webhook"]
