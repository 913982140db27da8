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
        clock.advance(1)
        await second.get(LIST)
        assert len(hubspot_server.early) == 2
        clock.advance(4)
        await second.get(LIST)
        assert len(hubspot_server.early) == 2
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
