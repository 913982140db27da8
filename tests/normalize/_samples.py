"""The project's own invented LATAM webhook bodies (tests/samples/meta/)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from wa_bridge.events import CanonicalEvent
from wa_bridge.normalize import normalize_webhook

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples" / "meta"
RECEIVED_AT = datetime(2026, 6, 12, 9, 30, 0, 250000, tzinfo=UTC)
RECVTIME = "2026-06-12T09:30:00.250000Z"


def load(name: str) -> Any:
    return orjson.loads((SAMPLES_DIR / f"{name}.json").read_bytes())


def events(name: str) -> list[CanonicalEvent]:
    return normalize_webhook(load(name), received_at=RECEIVED_AT)


def sample_names() -> list[str]:
    return sorted(p.stem for p in SAMPLES_DIR.glob("*.json"))
