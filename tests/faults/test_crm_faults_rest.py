"""The generic REST CRM under CRM faults, through the whole pipeline (issue 10).

Receiver → Tansu → worker → the REST CRM stand-in (checked against our published
contract); each fault ends with exactly the contacts, cases and notes of the batch, each
note on its contact and case, each case on its contact, 0 duplicates, nothing
dead-lettered. Retry-After is enforced. The REST CRM signs in with a static token and
reports no daily budget, so token expiry and the daily limit are HubSpot's and
Salesforce's tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.conftest import checked, rest_crm_session  # noqa: F401 - fixture
from connectors.servers import RestCrmServer
from faults import scenarios
from faults.crm_pipeline import crm_pipeline
from wa_bridge.bus.embedded import EmbeddedBroker

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Any:
    session: RestCrmServer = request.getfixturevalue("rest_crm_session")
    for server in checked(session):
        server.enforce_retry_after = True
        yield server


@pytest.fixture
def pipeline(
    server: RestCrmServer,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> Callable[..., Any]:
    def make(**overrides: Any) -> Any:
        return crm_pipeline(server, broker.bootstrap, topic_factory("rest"), pg_url, **overrides)

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
        await scenarios.replay_meets_a_rate_limit(run, "/batch")


async def test_accept_then_timeout_on_the_batch(pipeline: Callable[..., Any]) -> None:
    async with pipeline() as run:
        await scenarios.accept_then_timeout(run, {"batch": "/batch"})
