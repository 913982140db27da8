"""Salesforce's own faults, through the whole pipeline: its daily budget, and a failure
inside a composite call (issue 10).

The faults every CRM meets are in ``test_crm_faults.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from faults import scenarios
from faults.vendors import vendors

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, vendors("salesforce")]


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


async def test_a_500_inside_the_composite_call_on_each_subrequest(
    pipeline: Callable[..., Any],
) -> None:
    """A batch's upserts go in one ``POST /composite``; one subrequest answers 500 inside
    the call's 200 (the ones before it written): the batch is tried again whole and ends
    with exactly its records."""
    async with pipeline() as run:
        await scenarios.baseline(run)
        for sobject in ("Contact", "Case", "Task"):
            batch = scenarios.fresh_batch()
            run.server.script(status=500, match=f"composite/sobjects/{sobject}", part=True)
            await run.send(batch)
            assert run.server.pending_faults == 0, f"no {sobject} subrequest"
            label = f"salesforce: 500 inside the composite call, on its {sobject} upsert"
            await scenarios.judge(run, batch, label)
