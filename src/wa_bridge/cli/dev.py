"""``wa-bridge dev``: everything on one machine, in one process, nothing to install.

Starts the embedded Kafka-protocol broker (Tansu, memory storage) on a free port, then the
receiver and the worker in one event loop, with SQLite state under ``--data-dir``. An app
secret and a verify token are generated on first use and kept in
``<data-dir>/dev-secrets.env`` (this is a local tool: they are printed).

The broker keeps events in memory only, so ``dev`` keeps what the receiver acknowledged:

- Ctrl-C (or SIGTERM) stops the receiver first (no new webhooks), then the worker drains
  the broker into the CRM (or the dead-letter table) until caught up, for at most
  ``WA_BRIDGE_DEV_DRAIN_TIMEOUT_S``, then everything stops. A second Ctrl-C stops at once.
- a tripped dead-letter guard pauses the worker (one CRITICAL log line; ``/readyz``
  answers 503 with the reason) while the receiver keeps serving; Ctrl-C then drains.
- a spent CRM budget pauses the worker until it is back (``/readyz`` says until when)
  while the receiver keeps serving: the broker holds the backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import shlex
import signal
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import uvicorn
import uvloop

from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.cli._common import exit_with, settings_or_exit, tune_gc
from wa_bridge.cli.receiver import build_receiver, uvicorn_config
from wa_bridge.errors import ConfigError
from wa_bridge.log import configure_logging, get_logger
from wa_bridge.receiver import WEBHOOK_PATH
from wa_bridge.receiver.health import Readiness
from wa_bridge.settings import ENV_PREFIX, Settings
from wa_bridge.store.db import DEV_DATA_DIR

__all__ = ["dev_settings", "load_dev_secrets", "register", "sample_webhook"]

SECRETS_FILE = "dev-secrets.env"
_SECRET_KEYS = (ENV_PREFIX + "APP_SECRETS", ENV_PREFIX + "VERIFY_TOKEN")

log = get_logger("dev")


def load_dev_secrets(data_dir: Path) -> dict[str, str]:
    """The dev app secret and verify token: read from the secrets file, made if missing."""
    path = data_dir / SECRETS_FILE
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() in _SECRET_KEYS:
                values[key.strip()] = value.strip()
    if all(values.get(key) for key in _SECRET_KEYS):
        return values
    values = {
        _SECRET_KEYS[0]: values.get(_SECRET_KEYS[0]) or secrets.token_hex(16),
        _SECRET_KEYS[1]: values.get(_SECRET_KEYS[1]) or secrets.token_urlsafe(12),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o600)
    return values


def dev_settings(base: Settings, *, bootstrap: str, data_dir: Path) -> Settings:
    """``base`` (from the environment) completed for local use; env values still win."""
    overrides: dict[str, object] = {
        "kafka_bootstrap": bootstrap,
        "kafka_enable_idempotence": False,  # Tansu's memory storage does not support it
    }
    if ENV_PREFIX + "KAFKA_PARTITIONS" not in os.environ:
        # One process and, on SQLite, one writer: partitions buy no parallelism here, and
        # with 12 the worker's round wrote 12 small transactions one after another
        # (bench/e2e.py: p99 2.0 s at 1,000 webhooks/s; with one partition 170 ms).
        overrides["kafka_partitions"] = 1
    if ENV_PREFIX + "CONSUMER_FETCH_MAX_WAIT_MS" not in os.environ:
        # Tansu holds every fetch for the full wait instead of answering when data arrives:
        # 500 ms of it dominated receipt → CRM latency (bench/e2e.py)
        overrides["consumer_fetch_max_wait_ms"] = 50
    if ENV_PREFIX + "CONSUMER_SESSION_TIMEOUT_MS" not in os.environ:
        # Tansu makes a group join wait in step with the session timeout: at the default
        # 10 s the worker took its partition 5 s after the banner, and a `crm show` run
        # right after the README's curl found nothing; at 3 s, 2 s after. The group has
        # this one member, and a missed heartbeat only makes it rejoin (nothing is lost).
        overrides["consumer_session_timeout_ms"] = 3000
    if not base.app_secrets or not base.verify_token.get_secret_value():
        stored = load_dev_secrets(data_dir)
        if not base.app_secrets:
            overrides["app_secrets"] = [stored[_SECRET_KEYS[0]]]
        if not base.verify_token.get_secret_value():
            overrides["verify_token"] = stored[_SECRET_KEYS[1]]
    if base.database_url is None:
        overrides["database_url"] = f"sqlite+aiosqlite:///{(data_dir / 'wa-bridge.db').resolve()}"
    if ENV_PREFIX + "LOG_FORMAT" not in os.environ:
        overrides["log_format"] = "console"
    return settings_or_exit(**overrides)


def sample_webhook() -> bytes:
    """A small text-message webhook with invented data, for the printed curl command."""
    return orjson.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "100000000000001",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550000000",
                                    "phone_number_id": "100000000000002",
                                },
                                "contacts": [
                                    {"profile": {"name": "Dev"}, "wa_id": "5215500000000"}
                                ],
                                "messages": [
                                    {
                                        "from": "5215500000000",
                                        "id": "wamid.DEV0000000000000000000000001",
                                        "timestamp": "1781100000",
                                        "type": "text",
                                        "text": {"body": "hola"},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    )


def _banner(settings: Settings, url: str, data_dir: Path, *, with_worker: bool) -> str:
    secret = settings.app_secrets[0].get_secret_value()
    token = settings.verify_token.get_secret_value()
    body = sample_webhook().decode()
    q = shlex.quote
    return "\n".join(
        [
            "wa-bridge dev: receiver" + (" + worker" if with_worker else "") + " running",
            f"  webhook URL   {url}",
            f"  verify token  {token}",
            f"  app secret    {secret}   (kept in {data_dir / SECRETS_FILE})",
            f"  kafka         {settings.kafka_bootstrap} (embedded, memory storage)",
            f"  database      {settings.database_url}",
            "",
            "Send a signed test webhook:",
            f"  BODY={q(body)}",
            f"  SIG=$(printf '%s' \"$BODY\" | openssl dgst -sha256 -hmac {q(secret)} "
            "| sed 's/^.* //')",
            f"  curl -sS -X POST {q(url)} -H 'Content-Type: application/json' "
            '-H "X-Hub-Signature-256: sha256=$SIG" --data-binary "$BODY"',
            "",
            "Ctrl-C to stop (the worker first drains what the broker holds; Ctrl-C again "
            "to stop at once).",
        ]
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``dev`` stops the receiver and the worker."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


WorkerRunner = Callable[..., Coroutine[Any, Any, None]]


async def _guarded(name: str, coro: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``coro``; on return or failure ask everything else to stop. True if it failed."""
    try:
        await coro
    except (Exception, SystemExit):  # uvicorn exits when it cannot bind
        log.exception("component_failed", component_name=name)
        return True
    finally:
        stop.set()
    return False


class _Signals:
    """The first Ctrl-C (or SIGTERM) asks for a clean stop; the second forces it."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.force = asyncio.Event()

    def __call__(self) -> None:
        if not self.stop.is_set():
            self.stop.set()
        elif not self.force.is_set():
            typer.echo("wa-bridge dev: stopping now, without finishing the drain")
            self.force.set()


async def _serve(settings: Settings, server: _Server, runner: WorkerRunner | None) -> int:
    """Receiver and worker until a signal (or a part's end); then the receiver stops first,
    the worker drains and stops; a second signal forces both. Returns the exit code."""
    signals = _Signals()
    worker_stop = asyncio.Event()  # set once the receiver is down: nothing new comes in
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signals)
    async with asyncio.TaskGroup() as tasks:
        receiver = tasks.create_task(_guarded("receiver", server.serve(), signals.stop))
        worker = None
        if runner is not None:
            work = runner(settings, stop=worker_stop)
            worker = tasks.create_task(_guarded("worker", work, signals.stop))
        await signals.stop.wait()
        server.should_exit = True
        forced = tasks.create_task(signals.force.wait())
        await asyncio.wait({receiver, forced}, return_when=asyncio.FIRST_COMPLETED)
        server.force_exit = signals.force.is_set()
        worker_stop.set()
        if worker is not None and not worker.done():
            if receiver.done() and not signals.force.is_set():
                typer.echo("wa-bridge dev: applying what the broker holds (Ctrl-C to stop now)")
            await asyncio.wait({worker, forced}, return_when=asyncio.FIRST_COMPLETED)
            if not worker.done():
                worker.cancel()
        forced.cancel()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    parts = [receiver] + ([worker] if worker is not None else [])
    failed = any(not p.cancelled() and p.result() for p in parts) or not server.started
    return 1 if failed or signals.force.is_set() else 0


def dev(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port of the receiver.")] = 8080,
    data_dir: Annotated[
        Path, typer.Option(help="Where the dev secrets and the SQLite database live.")
    ] = DEV_DATA_DIR,
    worker: Annotated[bool, typer.Option(help="Run the worker beside the receiver.")] = True,
) -> None:
    """Run receiver + worker + an embedded Kafka broker locally (SQLite state)."""
    from wa_bridge.worker.assembly import load_event_mapper  # the worker's imports on use
    from wa_bridge.worker.runner import run_embedded_worker

    base = settings_or_exit()
    if worker:
        try:  # a bad mapping (or one for another connector) stops here, before anything runs
            load_event_mapper(base)
        except ConfigError as exc:
            raise exit_with(f"wa-bridge: configuration error: {exc}", 2) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(log_path=data_dir / "tansu.log")
    try:
        broker.start()
    except ConfigError as exc:
        raise exit_with(f"wa-bridge: cannot start the embedded broker: {exc}", 2) from exc
    try:
        settings = dev_settings(base, bootstrap=broker.bootstrap, data_dir=data_dir)
        configure_logging(fmt=settings.log_format, level=settings.log_level)
        readiness = Readiness()
        if worker:
            from wa_bridge.worker.quota_pause import quota_pause_reason

            readiness.watch("crm_quota", quota_pause_reason)
        app = build_receiver(settings, readiness=readiness)
        server = _Server(uvicorn_config(app, host=host, port=port, log_level=settings.log_level))

        def paused(reason: str) -> None:
            readiness.set_not_ready("worker", f"worker paused: {reason}")

        runner: WorkerRunner | None = (
            functools.partial(run_embedded_worker, on_pause=paused) if worker else None
        )
        url = f"http://{host}:{port}{WEBHOOK_PATH}"
        typer.echo(_banner(settings, url, data_dir, with_worker=runner is not None))
        tune_gc()
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop_runner:
            code = loop_runner.run(_serve(settings, server, runner))
    finally:
        broker.stop()
    typer.echo("wa-bridge dev: stopped")
    raise typer.Exit(code=code)


def register(app: typer.Typer) -> None:
    app.command(name="dev")(dev)
