"""Hot-path cost of ``normalize_webhook``: prints µs per call (no assertions).

    .venv/bin/python -m bench.normalize [--number 20000]

Uses bench/data/text_webhook.json (a ~700-byte text webhook). Figures: normalize only
(warm phone cache, a ``datetime`` to format), as the receiver calls it (``recvtime`` from
``rfc3339_now``), orjson.loads + normalize, and normalize with the phone caches cleared
before every call (a new contact each time, the worst case).
"""

from __future__ import annotations

import argparse
import timeit
from datetime import UTC, datetime
from pathlib import Path

import orjson

from wa_bridge.normalize import _fast, normalize_webhook
from wa_bridge.normalize.meta import rfc3339_now
from wa_bridge.normalize.phones import _placed, _to_e164, country_of, to_e164, user_e164

BODY = Path(__file__).resolve().parent / "data" / "text_webhook.json"


def _best_us(stmt: object, number: int) -> float:
    runs = timeit.repeat(stmt, number=number, repeat=5)  # type: ignore[arg-type]
    return min(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    raw = BODY.read_bytes()
    payload = orjson.loads(raw)
    now = datetime.now(UTC)

    def warm() -> None:
        normalize_webhook(payload, received_at=now)

    def as_received() -> None:  # the receiver's call: recvtime already text
        normalize_webhook(payload, received_at=rfc3339_now())

    def with_parse() -> None:
        normalize_webhook(orjson.loads(raw), received_at=now)

    def cold() -> None:
        for cached in (to_e164, _to_e164, _placed, user_e164, country_of):
            cached.cache_clear()
        _fast._sender.cache_clear()  # the fast path's own cache of the same lookups
        normalize_webhook(payload, received_at=now)

    count = len(normalize_webhook(payload, received_at=now))
    print(f"body: {BODY.name}, {len(raw)} bytes, {count} event(s)")
    print(f"normalize (warm caches):     {_best_us(warm, args.number):6.1f} µs/call")
    print(f"as the receiver calls it:    {_best_us(as_received, args.number):6.1f} µs/call")
    print(f"orjson.loads + normalize:    {_best_us(with_parse, args.number):6.1f} µs/call")
    print(
        f"normalize (phone cache cold): {_best_us(cold, max(args.number // 10, 100)):6.1f} µs/call"
    )


if __name__ == "__main__":
    main()
