"""HubSpot's own faults, through the whole pipeline: its daily budget (issue 10).

The faults every CRM meets are in ``test_crm_faults.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from faults import scenarios
from faults.vendors import vendors

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, vendors("hubspot")]


@pytest.mark.parametrize("refused", [True, False], ids=["refused", "headers_at_0"])
async def test_daily_limit_pauses_until_midnight(
    pipeline: Callable[..., Any], refused: bool
) -> None:
    """Refused: a 429 ``DAILY``; headers at 0: ``X-HubSpot-RateLimit-Daily-Remaining: 0``
    on a success, so the gate pauses before the CRM has to refuse."""
    clock = scenarios.ShiftedClock()
    async with pipeline(clock=clock) as run:
        await scenarios.daily_limit_reached(run, clock=clock, refused=refused)
