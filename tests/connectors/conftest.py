"""Contract-server fixtures, reusable by other test packages.

Other tests (the worker's fault tests) import them into their own conftest::

    from connectors.conftest import crm_server, rest_crm_server, hubspot_server  # noqa: F401

``crm_server`` is the REST CRM server, reset before each test; at teardown it fails the
test if the connector sent any request that broke the contract. Build a connector on it
with :func:`connector_for`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from connectors.servers import ContractServer, HubSpotServer, RestCrmServer, SalesforceServer
from wa_bridge.connectors import CrmConnector, build_connector
from wa_bridge.settings import Settings

S = TypeVar("S", bound=ContractServer)

# a scripted delay_s above this is a timeout; a call that should succeed gets this long, so
# a loaded 2-core VM stalling a local connect for 0.3 s does not fail it (seen once)
FAST_TIMEOUT_S = 0.6


def connector_for(
    server: ContractServer,
    *,
    timeout_s: float = FAST_TIMEOUT_S,
    token: str | None = None,
    **settings: object,
) -> CrmConnector:
    """A real connector (through ``build_connector``) pointed at ``server``."""
    config = Settings(
        connector=server.vendor,  # type: ignore[arg-type]
        crm_base_url=server.url,
        crm_token=token or server.token,  # type: ignore[arg-type]
        crm_timeout_s=timeout_s,
        **settings,  # type: ignore[arg-type]
    )
    return build_connector(config)


def serving(server: S) -> Iterator[S]:
    """Run ``server`` for a session; stop it afterwards."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


def checked(server: S) -> Iterator[S]:
    """``server`` emptied for one test; fails the test on a contract violation."""
    server.reset()
    yield server
    server.assert_contract_kept()


@pytest.fixture(scope="session")
def rest_crm_session() -> Iterator[RestCrmServer]:
    yield from serving(RestCrmServer())


@pytest.fixture(scope="session")
def hubspot_session() -> Iterator[HubSpotServer]:
    yield from serving(HubSpotServer())


@pytest.fixture(scope="session")
def salesforce_session() -> Iterator[SalesforceServer]:
    yield from serving(SalesforceServer())


@pytest.fixture
def salesforce_server(salesforce_session: SalesforceServer) -> Iterator[SalesforceServer]:
    """The Salesforce contract server, empty; fails the test on a contract violation."""
    yield from checked(salesforce_session)


@pytest.fixture
def rest_crm_server(rest_crm_session: RestCrmServer) -> Iterator[RestCrmServer]:
    """The REST CRM contract server, empty; fails the test on a contract violation."""
    yield from checked(rest_crm_session)


@pytest.fixture
def hubspot_server(hubspot_session: HubSpotServer) -> Iterator[HubSpotServer]:
    """The HubSpot contract server, empty; fails the test on a contract violation."""
    yield from checked(hubspot_session)


@pytest.fixture
def crm_server(rest_crm_server: RestCrmServer) -> RestCrmServer:
    """The default CRM for fault tests: the REST CRM contract server."""
    return rest_crm_server
