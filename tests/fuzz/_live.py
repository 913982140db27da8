"""The receiver as `wa-bridge receiver` builds it (admin API and inbox included), served by
uvicorn in a thread on a free port, against the session broker and a SQLite store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from wa_bridge.bus.embedded import free_port
from wa_bridge.cli.receiver import build_receiver
from wa_bridge.settings import Settings

SECRET = "fuzz-app-secret"
VERIFY_TOKEN = "fuzz-verify-token"
TOKENS = {
    "viewer": "viewer-token-0123456789",
    "operator": "operator-token-0123456789",
    "inbox": "inbox-token-0123456789abc",
}


@contextmanager
def live_receiver(bootstrap: str, topic: str, state_dir: Path) -> Iterator[str]:
    """Yield the base URL once /readyz answers 200; stop the server afterwards."""
    settings = Settings(
        _env_file=None,
        app_secrets=[SECRET],  # type: ignore[list-item]
        verify_token=VERIFY_TOKEN,  # type: ignore[arg-type]
        admin_tokens=[f"{role}:{token}" for role, token in TOKENS.items()],  # type: ignore[misc]
        kafka_bootstrap=bootstrap,
        kafka_topic=topic,
        kafka_partitions=1,
        kafka_enable_idempotence=False,
        database_url=f"sqlite+aiosqlite:///{state_dir / 'state.db'}",
        log_level="ERROR",
    )
    port = free_port()
    config = uvicorn.Config(
        build_receiver(settings),
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_level="error",
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the receiver did not become ready"
            assert thread.is_alive(), "the receiver stopped at start-up"
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
