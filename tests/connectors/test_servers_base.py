"""What every contract server shares: the Retry-After detector and the command-line runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from connectors.servers import HubSpotServer, ManualClock

ROOT = Path(__file__).resolve().parents[2]
LIST = "/crm/v3/objects/contacts"


async def test_retry_after_binds_every_connection_after_a_grace(
    hubspot_server: HubSpotServer,
) -> None:
    clock = ManualClock()
    hubspot_server.clock = clock
    headers = {"Authorization": f"Bearer {hubspot_server.token}"}
    hubspot_server.script(status=429, retry_after_s=5)
    async with (
        httpx.AsyncClient(base_url=hubspot_server.url, headers=headers) as first,
        httpx.AsyncClient(base_url=hubspot_server.url, headers=headers) as second,
    ):
        assert (await first.get(LIST)).status_code == 429
        clock.advance(0.001)
        await second.get(LIST)  # another connection: could have been under way already
        assert hubspot_server.early == []
        await first.get(LIST)  # the connection that was told to wait
        assert [round(r.early_s, 3) for r in hubspot_server.early] == [4.999]
        await second.get(LIST)  # its one request under way was excused, not a second one
        assert [round(r.early_s, 3) for r in hubspot_server.early] == [4.999, 4.999]
        clock.advance(1)
        await second.get(LIST)
        assert len(hubspot_server.early) == 3
        clock.advance(4)
        await second.get(LIST)
        assert len(hubspot_server.early) == 3
    hubspot_server.assert_contract_kept()  # recorded; a failure only when enforced
    hubspot_server.reset()


def test_runner_serves_a_stand_in_from_the_repo_root() -> None:
    command = [sys.executable, "-m", "tests.connectors.servers", "hubspot", "--provisioned"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        _check_runner(process)


def _check_runner(process: subprocess.Popen[str]) -> None:
    try:
        assert process.stdout is not None
        first = process.stdout.readline().split()
        assert first[:3] == ["hubspot", "stand-in", "at"]
        url = first[3]
        printed = [process.stdout.readline() for _ in range(4)]
        assert any("private-app token:  test-token" in line for line in printed)
        answer = httpx.get(
            f"{url}/crm/v3/properties/contacts/email",
            headers={"Authorization": "Bearer test-token"},
        )
        assert answer.status_code == 200 and answer.json()["hasUniqueValue"] is True
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_fault_hooks_play_on_the_nth_request_and_keep_the_checks(
    hubspot_server: HubSpotServer,
) -> None:
    headers = {"Authorization": f"Bearer {hubspot_server.token}"}
    hubspot_server.script(status=503, at=2)
    hubspot_server.script(status=429, retry_after_s=0.01, at=2)  # counts on its own
    hubspot_server.script(action="spend_daily_budget", at=4)
    async with httpx.AsyncClient(base_url=hubspot_server.url, headers=headers) as client:
        assert (await client.get(LIST)).status_code == 200
        assert (await client.get(LIST)).status_code == 503  # both due: the first plays
        assert (await client.get(LIST)).status_code == 429  # the next one
        daily = await client.get(LIST)
        assert daily.status_code == 429 and daily.json()["policyName"] == "DAILY"
        assert hubspot_server.pending_faults == 0
        hubspot_server.renew_daily_budget()
        # a request that breaks the contract is still refused, fault or not
        hubspot_server.script(accept_then_hang_s=0.01)
        bad = await client.post("/crm/v3/objects/contacts/batch/create", json={"inputs": 1})
        assert bad.status_code == 400 and hubspot_server.pending_faults == 1
        hubspot_server.requests.clear()  # the bad request was sent on purpose
        made = await client.post(
            "/crm/v3/objects/contacts", json={"properties": {"email": "a@example.com"}}
        )
        assert made.status_code == 201  # applied, then answered late
        assert [c["properties"]["email"] for c in hubspot_server.objects("contacts")] == [
            "a@example.com"
        ]
    hubspot_server.early.clear()  # the 429's wait was not honoured here on purpose


async def test_expire_credentials_turns_the_oauth_token_away_from_the_nth_request(
    hubspot_server: HubSpotServer,
) -> None:
    app = hubspot_server.oauth
    form = {
        "grant_type": "refresh_token",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "refresh_token": app.refresh_token,
    }
    async with httpx.AsyncClient(base_url=hubspot_server.url) as client:
        token = (await client.post("/oauth/v1/token", data=form)).json()["access_token"]
        hubspot_server.script(action="expire_credentials", at=2)
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client.get(LIST, headers=headers)).status_code == 200
        assert (await client.get(LIST, headers=headers)).status_code == 401
        assert (await client.get(LIST, headers=headers)).status_code == 401
