"""openapi.yaml is exactly what the receiver serves, and documents every answer it gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML

from wa_bridge.ops.openapi import documented_app, openapi_document
from wa_bridge.receiver import WEBHOOK_PATH

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "python -m wa_bridge.ops.openapi > openapi.yaml"


def committed() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe", pure=True).load(ROOT / "openapi.yaml")
    return loaded


def test_openapi_yaml_matches_the_served_document() -> None:
    assert committed() == openapi_document(), f"openapi.yaml is stale: run `{REGENERATE}`"


async def test_the_app_serves_that_document() -> None:
    app = documented_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://d") as c:
        served = (await c.get("/openapi.json")).json()
        assert (await c.get("/docs")).status_code == 200
    assert served == committed()


def test_every_webhook_answer_is_documented() -> None:
    webhook = committed()["paths"][WEBHOOK_PATH]
    assert set(webhook["get"]["responses"]) == {"200", "403"}
    assert set(webhook["post"]["responses"]) == {"200", "400", "401", "405", "413", "503"}
    assert "Retry-After" in webhook["post"]["responses"]["503"]["headers"]
    params = {p["name"] for p in webhook["post"]["parameters"]}
    assert "X-Hub-Signature-256" in params
    paths = set(committed()["paths"])
    assert {"/healthz", "/readyz", "/metrics", WEBHOOK_PATH} <= paths
    assert {
        "/admin/dead-letters",
        "/admin/dead-letters/{dead_letter_id}",
        "/admin/dead-letters/{dead_letter_id}/replay",
        "/admin/dead-letters/{dead_letter_id}/discard",
    } <= paths
    assert "HTTPBearer" in committed()["components"]["securitySchemes"]
