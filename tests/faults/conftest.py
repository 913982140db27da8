"""Fault tests: the CRM stand-in and pipeline per vendor. The fault table (``table.py``) is
printed at the end of the session by ``tests/conftest.py``, which also gathers the rows
from pytest-xdist's workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.conftest import (  # noqa: F401 - fixtures
    checked,
    hubspot_session,
    rest_crm_session,
    salesforce_session,
)
from connectors.servers.base import ContractServer
from faults.crm_pipeline import crm_pipeline
from faults.vendors import VENDORS, Vendor
from wa_bridge.bus.embedded import EmbeddedBroker


@pytest.fixture
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return VENDORS[request.param]


@pytest.fixture
def server(request: pytest.FixtureRequest, vendor: Vendor) -> Iterator[ContractServer]:
    session: ContractServer = request.getfixturevalue(vendor.session)
    for server in checked(session):
        server.enforce_retry_after = True
        yield server


@pytest.fixture
def pipeline(
    server: ContractServer,
    vendor: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> Callable[..., Any]:
    def make(**overrides: Any) -> Any:
        topic = topic_factory(vendor.name)
        return crm_pipeline(server, broker.bootstrap, topic, pg_url, **overrides)

    return make
