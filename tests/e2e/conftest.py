"""End-to-end fixtures: the worker tests' SQL CRM schema with its per-note write log."""

from worker.conftest import sql_crm_url  # noqa: F401 - fixture
