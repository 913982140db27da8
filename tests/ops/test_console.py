"""The console's pages through the ASGI app: sign-in cookie, roles, CSRF, masking, audit."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from ops.test_admin_api import OPERATOR, VIEWER, _seed, _settings
from wa_bridge.ops.backend import admin_api
from wa_bridge.ops.console import COOKIE
from wa_bridge.settings import Settings
from wa_bridge.store.tables import audit_log, dead_letters

Console = tuple[httpx.AsyncClient, Settings, list[int]]


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    settings = _settings(tmp_path)
    assert settings.database_url is not None
    ids = await _seed(settings.database_url)
    routers, closers = admin_api(settings)
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        yield client, settings, ids
    for close in closers:
        await close()


async def _sign_in(client: httpx.AsyncClient, token: str) -> str:
    """Sign in; return the session's CSRF token (read from a page's form)."""
    answer = await client.post("/admin/sign-in", data={"token": token, "next": "/admin/letters"})
    assert answer.status_code == 303, answer.text
    page = await client.get("/admin/letters")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def _audit(settings: Settings) -> list[tuple[str, str, str]]:
    assert settings.database_url is not None
    engine = sa.ext.asyncio.create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.select(audit_log).order_by(audit_log.c.id))
            return [(r.action, r.role, r.target) for r in rows]
    finally:
        await engine.dispose()


async def test_pages_need_a_sign_in_and_a_console_role(console: Console) -> None:
    client, _, _ = console
    answer = await client.get("/admin/letters")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/admin/sign-in?next=")
    bad = await client.post("/admin/sign-in", data={"token": "x" * 30})
    assert bad.status_code == 401
    assert COOKIE not in bad.cookies
    forged = await client.get("/admin/letters", headers={"cookie": f"{COOKIE}=e30.AAAA"})
    assert forged.status_code == 303


async def test_cookie_is_httponly_strict_and_scoped(console: Console) -> None:
    client, _, _ = console
    answer = await client.post("/admin/sign-in", data={"token": VIEWER})
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/admin" in cookie
    assert "max-age=" in cookie
    assert "secure" not in cookie  # plain HTTP here; "auto" sets it on HTTPS
    assert VIEWER not in answer.headers["set-cookie"]


async def test_viewer_reads_masked_and_cannot_act(console: Console) -> None:
    client, settings, ids = console
    csrf = await _sign_in(client, VIEWER)
    listing = await client.get("/admin/letters")
    assert listing.status_code == 200
    assert "CrmRejected" in listing.text
    assert "5550001234" not in listing.text  # the contact's phone, masked
    page = await client.get(f"/admin/letters/{ids[0]}")
    assert page.status_code == 200
    assert 'id="replay"' not in page.text
    assert "Property values were not valid" in page.text  # the CRM's own message
    assert "5550001234" not in page.text and "•••" in page.text
    refused = await client.post(f"/admin/letters/{ids[0]}/replay", data={"csrf": csrf})
    assert refused.status_code == 403
    actions = await _audit(settings)
    assert ("console.sign_in", "viewer", "console") in actions
    assert ("dlq.show", "viewer", f"dead_letter:{ids[0]}") in actions


async def test_operator_replays_with_csrf_only(console: Console) -> None:
    client, settings, ids = console
    csrf = await _sign_in(client, OPERATOR)
    page = await client.get(f"/admin/letters/{ids[0]}")
    assert 'id="replay"' in page.text
    assert 'id="preview-ok"' in page.text  # the shipped mapping maps it
    no_token = await client.post(f"/admin/letters/{ids[0]}/replay", data={})
    assert no_token.status_code == 403
    foreign = await client.post(
        f"/admin/letters/{ids[0]}/replay",
        data={"csrf": csrf},
        headers={"origin": "http://evil.example"},
    )
    assert foreign.status_code == 403
    done = await client.post(f"/admin/letters/{ids[0]}/replay", data={"csrf": csrf})
    assert done.status_code == 303
    shown = await client.get(done.headers["location"])
    assert "replayed" in shown.text
    discarded = await client.post(
        f"/admin/letters/{ids[1]}/discard", data={"csrf": csrf, "reason": "duplicate test"}
    )
    assert discarded.status_code == 303
    assert settings.database_url is not None
    engine = sa.ext.asyncio.create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            statuses = dict(
                (await conn.execute(sa.select(dead_letters.c.id, dead_letters.c.status))).all()
            )
    finally:
        await engine.dispose()
    assert statuses == {ids[0]: "replayed", ids[1]: "discarded"}
    actions = await _audit(settings)
    assert ("dlq.replay", "operator", f"dead_letter:{ids[0]}") in actions
    assert ("dlq.discard", "operator", f"dead_letter:{ids[1]}") in actions
    signed_out = await client.post("/admin/sign-out", data={"csrf": csrf})
    assert signed_out.status_code == 303


async def test_trace_figures_and_audit_pages_render(console: Console) -> None:
    client, _, _ = console
    await _sign_in(client, VIEWER)
    for path in ("/admin/trace?q=%2B525550001234", "/admin/figures", "/admin/audit"):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert "5550001234" not in answer.text
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
