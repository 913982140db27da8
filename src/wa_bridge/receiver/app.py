"""The receiver application: the raw webhook endpoint beside a FastAPI app, one lifespan.

``create_app(settings)`` returns an ASGI app. Requests to ``/webhooks/whatsapp`` go
straight to :class:`~wa_bridge.receiver.webhook.WebhookEndpoint` (the hot path); every
other request, and the lifespan, goes to FastAPI (health, metrics, admin, OpenAPI docs).

The lifespan owns the Kafka publisher: it connects in the background (the receiver starts,
and answers 503, while the broker is down) and disconnects on shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from wa_bridge import __version__
from wa_bridge.bus.producer import EventPublisher
from wa_bridge.bus.publishers import publisher_from_settings
from wa_bridge.errors import ConfigError
from wa_bridge.receiver.health import Readiness, build_health_router
from wa_bridge.receiver.routes import build_webhook_docs_router
from wa_bridge.receiver.webhook import (
    WEBHOOK_PATH,
    Normalizer,
    Receive,
    Scope,
    Send,
    WebhookEndpoint,
)
from wa_bridge.settings import Settings

__all__ = ["ReceiverApp", "create_app"]


class ReceiverApp:
    """The ASGI app ``create_app`` returns; ``lifespan()`` also works without a server."""

    def __init__(
        self,
        *,
        api: FastAPI,
        webhook: WebhookEndpoint,
        publisher: EventPublisher,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
    ):
        self.api = api
        self.webhook = webhook
        self.publisher = publisher
        self.closers = tuple(closers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH:
            await self.webhook(scope, receive, send)
        else:
            await self.api(scope, receive, send)

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Keep the publisher connected while the context is open; stop it on exit."""
        async with asyncio.TaskGroup() as tasks:
            keeper = tasks.create_task(self.publisher.keep_connected(), name="bus-keeper")
            try:
                yield
            finally:
                keeper.cancel()
                await asyncio.wait([keeper])
                await self.publisher.stop()
                for close in self.closers:
                    await close()


def create_app(
    settings: Settings,
    *,
    publisher: EventPublisher | None = None,
    normalize: Normalizer | None = None,
    routers: Sequence[APIRouter] = (),
    closers: Sequence[Callable[[], Awaitable[None]]] = (),
    readiness: Readiness | None = None,
) -> ReceiverApp:
    """Build the receiver; raise ConfigError when no app secret is configured.

    ``publisher`` defaults to the one ``settings`` choose (``kafka_client``); ``normalize`` to
    :func:`wa_bridge.normalize.normalize_webhook`. ``routers`` (the admin API, say) are
    added to the FastAPI part; ``closers`` run at shutdown (the admin API's store);
    ``readiness`` holds what else keeps ``/readyz`` from 200 (a paused dev worker).
    """
    secrets = [s.get_secret_value().encode() for s in settings.app_secrets]
    secrets = [s for s in secrets if s]
    if not secrets:
        raise ConfigError(
            "WA_BRIDGE_APP_SECRETS is empty: the receiver cannot check webhook signatures "
            "(set the Meta app secret; `wa-bridge dev` generates one for local use)"
        )
    if normalize is None:
        from wa_bridge.normalize import normalize_webhook

        normalize = normalize_webhook
    bus: EventPublisher = publisher or publisher_from_settings(settings)
    webhook = WebhookEndpoint(
        app_secrets=secrets,
        verify_token=settings.verify_token.get_secret_value(),
        max_body_bytes=settings.max_body_bytes,
        publisher=bus,
        normalize=normalize,
        max_json_depth=settings.max_json_depth,
    )
    holder: list[ReceiverApp] = []

    @asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        async with holder[0].lifespan():
            yield

    api = FastAPI(
        title="wa-bridge",
        version=__version__,
        description="WhatsApp Business (Meta Cloud API) webhooks in, CRM records out.",
        lifespan=lifespan,
    )
    api.include_router(build_webhook_docs_router())
    api.include_router(build_health_router(lambda: bus.is_ready, readiness))
    for router in routers:
        api.include_router(router)
    app = ReceiverApp(api=api, webhook=webhook, publisher=bus, closers=closers)
    holder.append(app)
    return app
