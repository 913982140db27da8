"""Salesforce under CRM faults, through the whole pipeline (issue 10; fault table of 13).

Receiver → Tansu → worker → the strict Salesforce stand-in; each fault ends with exactly
the Contacts, Cases and Tasks (notes) of the batch, each Task on its Contact (WhoId) and
Case (WhatId), each Case on its Contact, 0 duplicates, nothing dead-lettered.
Retry-After is enforced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.conftest import checked, salesforce_session  # noqa: F401 - fixture
from connectors.servers import SalesforceServer
from faults import scenarios
from faults.crm_pipeline import crm_pipeline
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.worker.runner import open_worker

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

CREATES = {
    "Contact upsert": "composite/sobjects/Contact",
    "Case upsert": "composite/sobjects/Case",
    "Task upsert": "composite/sobjects/Task",
}


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Any:
    session: SalesforceServer = request.getfixturevalue("salesforce_session")
    for server in checked(session):
        server.enforce_retry_after = True
        yield server


@pytest.fixture
def pipeline(
    server: SalesforceServer,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> Callable[..., Any]:
    def make(**overrides: Any) -> Any:
        return crm_pipeline(server, broker.bootstrap, topic_factory("sf"), pg_url, **overrides)

    return make


async def test_429_on_each_call_of_a_batch(pipeline: Callable[..., Any]) -> None:
    async with pipeline() as run:
        await scenarios.fault_on_each_call(
            run, "429", status=429, retry_after_s=scenarios.RETRY_AFTER_S
        )


async def test_5xx_on_each_call_of_a_batch(pipeline: Callable[..., Any]) -> None:
    async with pipeline() as run:
        await scenarios.fault_on_each_call(
            run, "503", status=503, retry_after_s=scenarios.RETRY_AFTER_S
        )


async def test_503_burst_past_the_in_place_budget(pipeline: Callable[..., Any]) -> None:
    async with pipeline() as run:
        await scenarios.burst_past_the_in_place_budget(
            run,
            "503 x4 (in-place tries spent, retry topic)",
            status=503,
            retry_after_s=scenarios.RETRY_AFTER_S,
            times=4,
        )


async def test_dlq_replay_waits_out_a_rate_limit(pipeline: Callable[..., Any]) -> None:
    async with pipeline() as run:
        await scenarios.replay_meets_a_rate_limit(run, "composite/sobjects/Task")


async def test_retry_after_binds_every_worker_of_the_group(
    pipeline: Callable[..., Any], server: SalesforceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one interpreter for both workers and the stand-in: 50 ms for a request under way
    # (see the HubSpot test of the same name)
    monkeypatch.setattr(server, "retry_after_grace_s", 0.05)
    async with pipeline() as run, open_worker(run.settings) as other:
        await scenarios.retry_after_binds_another_worker(run, other)


async def test_accept_then_timeout_on_each_create(pipeline: Callable[..., Any]) -> None:
    async with pipeline() as run:
        await scenarios.accept_then_timeout(run, CREATES)


@pytest.mark.parametrize("token_times_out", [False, True], ids=["refreshed", "refresh_times_out"])
async def test_session_expires_mid_batch(
    pipeline: Callable[..., Any], token_times_out: bool, server: SalesforceServer
) -> None:
    """Client-credentials sign-in; INVALID_SESSION_ID mid-batch gets a new session."""
    app = server.oauth
    async with pipeline(
        crm_token=None,
        crm_base_url=None,
        crm_auth="client_credentials",
        crm_login_url=server.url,
        crm_client_id=app.client_id,
        crm_client_secret=app.client_secret,
    ) as run:
        await scenarios.token_expiry(
            run, token_path="/services/oauth2/token" if token_times_out else None
        )


@pytest.mark.parametrize("refused", [True, False], ids=["refused", "headers_at_0"])
async def test_daily_allocation_spent_pauses_until_it_is_back(
    pipeline: Callable[..., Any], refused: bool
) -> None:
    """Salesforce's allocation is a rolling 24 hours: the worker probes every
    ``crm_quota_probe_s`` until the CRM takes requests again. Refused: 403
    ``REQUEST_LIMIT_EXCEEDED``; headers at 0: ``Sforce-Limit-Info: api-usage=M/M`` on a
    success."""
    async with pipeline(crm_quota_probe_s=1.0) as run:
        await scenarios.daily_limit_reached(run, refused=refused)


async def test_a_drain_while_paused_dead_letters_instead_of_losing(
    pipeline: Callable[..., Any],
) -> None:
    async with pipeline(crm_quota_probe_s=1.0) as run:
        await scenarios.drain_while_paused(run)
