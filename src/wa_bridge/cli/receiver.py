"""``wa-bridge receiver``: serve the webhook receiver with uvicorn (one worker)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
import uvicorn

from wa_bridge.cli._common import exit_with, settings_or_exit, tune_gc
from wa_bridge.errors import BusUnavailable, ConfigError
from wa_bridge.log import configure_logging, get_logger
from wa_bridge.receiver import ReceiverApp, create_app
from wa_bridge.receiver.health import Readiness
from wa_bridge.receiver.protocol import OneWriteProtocol
from wa_bridge.settings import Settings

__all__ = ["build_receiver", "check_bus", "register", "uvicorn_config"]

log = get_logger("cli.receiver")


def uvicorn_config(app: ReceiverApp, *, host: str, port: int, log_level: str) -> uvicorn.Config:
    """The uvicorn settings of the receiver: uvloop, httptools writing each answer at once
    (:class:`OneWriteProtocol`), one worker, no access log."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=OneWriteProtocol,
        workers=1,
        access_log=False,
        lifespan="on",
        log_level=log_level.lower(),
        log_config=None,
        server_header=False,
        # No X-Forwarded-* rewriting: nothing here reads the client address, and the
        # middleware costs ~1.5% of the webhook hot path (py-spy, bench.receiver).
        proxy_headers=False,
    )


def build_receiver(settings: Settings, *, readiness: Readiness | None = None) -> ReceiverApp:
    """``create_app`` (with the admin API and POST /consents when admin tokens are set,
    and the inbox route);
    bad config → exit 2. ``readiness``: see :func:`~wa_bridge.receiver.create_app`."""
    from wa_bridge.bus.publishers import publisher_from_settings
    from wa_bridge.ops.backend import admin_api
    from wa_bridge.receiver.inbox import inbox_api

    try:
        publisher = publisher_from_settings(settings)  # webhook, inbox and consents
        routers, closers = admin_api(settings, publisher)
        routers = [*routers, inbox_api(settings, publisher)]
        return create_app(
            settings, publisher=publisher, routers=routers, closers=closers, readiness=readiness
        )
    except ConfigError as exc:
        raise exit_with(f"wa-bridge: configuration error: {exc}", 2) from exc


async def check_bus(settings: Settings) -> bool:
    """Connect once as the receiver will: topic created if absent, durability checked.

    True when the bus is ready; False when the broker cannot be reached now (the
    receiver still starts and answers 503 until it can). Raises ConfigError when the
    connection settings are wrong or the topic would keep an acknowledged event on one
    broker only (see ``WA_BRIDGE_KAFKA_DURABILITY_CHECK``).
    """
    from wa_bridge.bus.publishers import publisher_from_settings

    publisher = publisher_from_settings(settings)
    try:
        await publisher.start()
    except BusUnavailable as exc:
        log.warning("bus_unreachable_at_start", error=str(exc))
        return False
    finally:
        await publisher.stop()
    return True


def receiver(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8080,
) -> None:
    """Run the webhook receiver (needs WA_BRIDGE_APP_SECRETS and a Kafka broker)."""
    settings = settings_or_exit()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    app = build_receiver(settings)
    try:
        asyncio.run(check_bus(settings))
    except ConfigError as exc:
        raise exit_with(f"wa-bridge: refusing to start: {exc}", 2) from exc
    tune_gc()
    uvicorn.Server(uvicorn_config(app, host=host, port=port, log_level=settings.log_level)).run()


def register(app: typer.Typer) -> None:
    app.command(name="receiver")(receiver)
