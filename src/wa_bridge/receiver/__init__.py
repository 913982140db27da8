"""The webhook receiver: a raw ASGI hot path beside a FastAPI app for everything else."""

from __future__ import annotations

from wa_bridge.receiver.app import ReceiverApp, create_app
from wa_bridge.receiver.signature import sign, verify_signature
from wa_bridge.receiver.webhook import WEBHOOK_PATH

__all__ = ["WEBHOOK_PATH", "ReceiverApp", "create_app", "sign", "verify_signature"]
