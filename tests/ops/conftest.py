"""Ops test fixtures: the worker tests' topic, group and REST CRM contract server."""

from worker.conftest import (  # noqa: F401 - fixtures
    crm,
    flaky_session,
    settings_factory,
    sql_crm_url,
    worker_factory,
)
