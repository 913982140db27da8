"""The receiver's OpenAPI document, as served at ``/openapi.json`` and kept in openapi.yaml.

``python -m wa_bridge.ops.openapi > openapi.yaml`` regenerates the file;
``tests/test_openapi.py`` fails when the two differ.
"""

from __future__ import annotations

import io
import sys
from typing import Any

import orjson
from ruamel.yaml import YAML

from wa_bridge.receiver.app import ReceiverApp, create_app
from wa_bridge.settings import Settings

__all__ = ["documented_app", "openapi_document", "openapi_yaml"]


def documented_app() -> ReceiverApp:
    """The receiver as a deployment serves it, admin API, consents and inbox routes included
    (placeholder secrets; nothing is started or connected)."""
    from wa_bridge.bus.publishers import publisher_from_settings
    from wa_bridge.ops.backend import admin_api
    from wa_bridge.receiver.inbox import inbox_api

    settings = Settings(
        app_secrets=["placeholder-for-docs"],  # validated to SecretStr
        admin_tokens=["operator:placeholder-token-for-docs"],
    )
    publisher = publisher_from_settings(settings)
    routers, _closers = admin_api(settings, publisher)
    routers = [*routers, inbox_api(settings, publisher)]
    return create_app(settings, publisher=publisher, routers=routers)


def openapi_document(app: ReceiverApp | None = None) -> dict[str, Any]:
    """The OpenAPI document as plain JSON data."""
    schema = (app or documented_app()).api.openapi()
    document: dict[str, Any] = orjson.loads(orjson.dumps(schema))
    return document


def openapi_yaml(app: ReceiverApp | None = None) -> str:
    yaml = YAML(typ="rt", pure=True)
    yaml.width = 100
    yaml.default_flow_style = False
    out = io.StringIO()
    out.write("# Generated: python -m wa_bridge.ops.openapi > openapi.yaml\n")
    yaml.dump(openapi_document(app), out)
    return out.getvalue()


if __name__ == "__main__":
    sys.stdout.write(openapi_yaml())
