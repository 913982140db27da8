"""``wa-bridge worker``: consume canonical events and write them to the CRM until SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import typer

from wa_bridge.cli._common import exit_with, settings_or_exit, tune_gc
from wa_bridge.errors import ConfigError, DlqLimitExceeded, WaBridgeError
from wa_bridge.log import configure_logging

__all__ = ["register"]

EXIT_DLQ_LIMIT = 3


async def _main(metrics_port: int) -> None:
    from wa_bridge.worker.runner import run_worker

    settings = settings_or_exit()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    tune_gc()
    if metrics_port:
        from wa_bridge.ops.probes import start_probe_server

        # a daemon thread serving /healthz, /readyz and /metrics; never touches the loop
        start_probe_server(metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_worker(settings, stop=stop)


def worker(
    metrics_port: int = typer.Option(
        0, help="Serve /metrics, /healthz and /readyz on this port (0: off)", min=0, max=65535
    ),
) -> None:
    """Run a worker in the consumer group (stop with SIGTERM or Ctrl-C: it drains first)."""
    try:
        asyncio.run(_main(metrics_port))
    except DlqLimitExceeded as exc:
        raise exit_with(f"wa-bridge worker: stopped: {exc}", EXIT_DLQ_LIMIT) from exc
    except ConfigError as exc:
        raise exit_with(f"wa-bridge worker: configuration error: {exc}", 2) from exc
    except WaBridgeError as exc:
        raise exit_with(f"wa-bridge worker: {exc}", 1) from exc


def register(app: typer.Typer) -> None:
    app.command(name="worker")(worker)
