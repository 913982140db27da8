"""The admin API against a real store (SQLite) and the real replay path into the SQL CRM."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from wa_bridge.normalize import normalize_webhook
from wa_bridge.ops.backend import admin_api
from wa_bridge.settings import Settings
from wa_bridge.store import open_store
from wa_bridge.store.api import NewDeadLetter
from wa_bridge.store.tables import audit_log, crm_contacts

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "meta"
OPERATOR = "operator-token-for-tests-0001"
VIEWER = "viewer-token-for-tests-000001"


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'state.db'}",
        admin_tokens=[f"operator:{OPERATOR}", f"viewer:{VIEWER}"],
        connector="sql",
    )


async def _seed(url: str) -> list[int]:
    """Two dead letters holding real canonical events (as a rejected CRM write leaves them)."""
    body = orjson.loads((SAMPLES / "text_mx.json").read_bytes())
    events = normalize_webhook(body, received_at=datetime.now(UTC))
    store = await open_store(url, create=True)
    try:
        async with store.transaction() as tx:
            return await tx.add_dead_letters(
                [
                    NewDeadLetter(
                        event_id=event.id + suffix,
                        event_type=event.type,
                        contact_key=event.subject,
                        payload=event.to_json(),
                        error_class="CrmRejected",
                        error_message="CRM rejected the contact",
                        crm_error="Property values were not valid",
                        attempts=1,
                        failed_at=datetime.now(UTC),
                    )
                    for suffix in ("", "-copy")
                    for event in events[:1]
                ]
            )
    finally:
        await store.aclose()


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Settings, list[int]]]:
    settings = _settings(tmp_path)
    assert settings.database_url is not None
    ids = await _seed(settings.database_url)
    routers, closers = admin_api(settings)
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        yield client, settings, ids
    for close in closers:
        await close()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_no_token_no_admin(admin: tuple[httpx.AsyncClient, Settings, list[int]]) -> None:
    client, _, _ = admin
    response = await client.get("/admin/dead-letters")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    wrong = await client.get("/admin/dead-letters", headers=_auth("x" * 30))
    assert wrong.status_code == 401


async def test_viewer_lists_and_shows_but_cannot_replay(
    admin: tuple[httpx.AsyncClient, Settings, list[int]],
) -> None:
    client, _, ids = admin
    listed = await client.get("/admin/dead-letters", headers=_auth(VIEWER))
    assert listed.status_code == 200
    assert sorted(d["id"] for d in listed.json()) == sorted(ids)
    assert listed.json()[0]["crm_error"] == "Property values were not valid"
    shown = await client.get(f"/admin/dead-letters/{ids[0]}", headers=_auth(VIEWER))
    assert shown.status_code == 200
    assert orjson.loads(shown.json()["event"])["type"] == "whatsapp.message.received"
    refused = await client.post(f"/admin/dead-letters/{ids[0]}/replay", headers=_auth(VIEWER))
    assert refused.status_code == 403
    missing = await client.get("/admin/dead-letters/99999", headers=_auth(VIEWER))
    assert missing.status_code == 404


async def test_operator_replays_once_and_every_call_is_audited(
    admin: tuple[httpx.AsyncClient, Settings, list[int]],
) -> None:
    client, settings, ids = admin
    dry = await client.post(
        f"/admin/dead-letters/{ids[0]}/replay", params={"dry_run": "true"}, headers=_auth(OPERATOR)
    )
    assert dry.json()["result"] == "would_replay"
    first = await client.post(f"/admin/dead-letters/{ids[0]}/replay", headers=_auth(OPERATOR))
    assert first.status_code == 200, first.text
    assert first.json()["result"] == "replayed"
    second = await client.post(f"/admin/dead-letters/{ids[0]}/replay", headers=_auth(OPERATOR))
    assert second.json()["result"] == "skipped"
    discarded = await client.post(f"/admin/dead-letters/{ids[1]}/discard", headers=_auth(OPERATOR))
    assert discarded.json()["status"] == "discarded"

    assert settings.database_url is not None
    engine = sa.ext.asyncio.create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            contacts = (
                await conn.execute(sa.select(sa.func.count()).select_from(crm_contacts))
            ).scalar_one()
            actions = [
                (row.action, row.role)
                for row in await conn.execute(sa.select(audit_log).order_by(audit_log.c.id))
            ]
    finally:
        await engine.dispose()
    assert contacts == 1  # replayed once, the second replay changed nothing
    assert ("dlq.replay.dry_run", "operator") in actions
    assert ("dlq.replay", "operator") in actions
    # one row per replay call: the dry run, the replay, the skipped second replay
    assert actions.count(("dlq.replay.dry_run", "operator")) == 1
    assert actions.count(("dlq.replay", "operator")) == 2
    assert ("dlq.discard", "operator") in actions
    assert all(OPERATOR not in str(row) for row in actions)
