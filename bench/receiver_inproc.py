"""The receiver's own CPU per webhook, in-process: no HTTP server, no load generator.

    .venv/bin/python -m bench.receiver_inproc [--requests 20000] [--concurrency 64]
                                              [--rounds 5] [--asyncio]

``bench.receiver`` compares whole servers under wrk, and on a shared 2-core machine its
figures move with the neighbours. This one measures only wa-bridge's part of a webhook
POST: ``create_app``'s ASGI app called directly (scope, receive, send as uvicorn gives
them) by ``--concurrency`` tasks at once, publishing to a Tansu broker through the
shipped producer. It prints the event-loop thread's CPU per request (``thread_time``,
the figure that neighbours move least), the process's CPU per request (librdkafka's and
the poll thread's included) and requests/s, per round and the best round. For an A/B
between two trees run it twice with ``PYTHONPATH=<tree>/src``. Not a test: it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import hmac
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.cli._common import tune_gc
from wa_bridge.receiver.app import create_app
from wa_bridge.receiver.webhook import WEBHOOK_PATH
from wa_bridge.settings import Settings

BODY = Path(__file__).resolve().parent / "data" / "text_webhook.json"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=20_000, help="POSTs per round")
    p.add_argument("--concurrency", type=int, default=64, help="POSTs in flight")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--asyncio", action="store_true", help="asyncio's own loop, not uvloop")
    return p.parse_args()


async def _rounds(args: argparse.Namespace, bootstrap: str) -> list[tuple[float, float, float]]:
    secret = secrets.token_hex(16)
    body = BODY.read_bytes()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    settings = Settings(
        app_secrets=[secret],
        verify_token="bench",
        kafka_bootstrap=bootstrap,
        kafka_topic=f"bench.inproc.{uuid.uuid4().hex[:8]}",
        kafka_enable_idempotence=False,
    )
    app = create_app(settings)
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"x-hub-signature-256", signature.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    statuses: list[int] = []

    async def send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            statuses.append(msg["status"])

    async def one() -> None:
        scope = {
            "type": "http",
            "method": "POST",
            "path": WEBHOOK_PATH,
            "headers": list(headers),
            "query_string": b"",
        }
        await app(scope, receive, send)

    async def worker(n: int) -> None:
        for _ in range(n):
            await one()

    figures = []
    async with app.lifespan():
        async with asyncio.timeout(30):
            while True:  # polled: readiness has no event to wait on
                if app.publisher.is_ready:
                    break
                await asyncio.sleep(0.05)
        await asyncio.gather(*(worker(50) for _ in range(args.concurrency)))  # warm-up
        for _ in range(args.rounds):
            statuses.clear()
            per = args.requests // args.concurrency
            wall, loop_cpu, proc_cpu = time.perf_counter(), time.thread_time(), time.process_time()
            await asyncio.gather(*(worker(per) for _ in range(args.concurrency)))
            wall = time.perf_counter() - wall
            loop_cpu = time.thread_time() - loop_cpu
            proc_cpu = time.process_time() - proc_cpu
            done = per * args.concurrency
            if statuses.count(200) != done:
                raise SystemExit(f"only {statuses.count(200)} of {done} POSTs answered 200")
            figures.append((loop_cpu / done * 1e6, proc_cpu / done * 1e6, done / wall))
    return figures


def main() -> None:
    args = _args()
    tune_gc()
    gc.collect()
    os.environ.setdefault("WA_BRIDGE_LOG_LEVEL", "WARNING")
    broker = EmbeddedBroker()
    broker.start()
    try:
        if args.asyncio:
            figures = asyncio.run(_rounds(args, broker.bootstrap))
        else:  # the loop uvicorn runs the receiver on
            import uvloop

            figures = uvloop.run(_rounds(args, broker.bootstrap))
    finally:
        broker.stop()
    print(f"{'round':>5} {'loop µs/req':>12} {'process µs/req':>15} {'req/s':>8}")
    for n, (loop_us, proc_us, rate) in enumerate(figures, 1):
        print(f"{n:>5} {loop_us:>12.1f} {proc_us:>15.1f} {rate:>8.0f}")
    best = min(figures)
    print(f" best {best[0]:>12.1f} {best[1]:>15.1f} {best[2]:>8.0f}")


if __name__ == "__main__":
    main()
