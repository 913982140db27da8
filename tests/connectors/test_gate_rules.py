"""The quota rules (pure) and each CRM's reading of its answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from wa_bridge.connectors.hubspot.dialect import HUBSPOT_ERRORS
from wa_bridge.connectors.quota import (
    QuotaReading,
    blocked_for_s,
    combine,
    fold,
    is_material,
    next_midnight,
    paused_until,
    standard_reading,
)
from wa_bridge.connectors.rest import REST_ERRORS
from wa_bridge.connectors.salesforce.dialect import SALESFORCE_ERRORS
from wa_bridge.store.crm_quota import CrmQuota

NOW = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 11, tzinfo=UTC)


def _headers(**values: str) -> httpx.Headers:
    return httpx.Headers({k.replace("_", "-"): v for k, v in values.items()})


def _hubspot(
    *, remaining: int = 150, daily: int | None = 640_000, secondly: int = 15
) -> httpx.Headers:
    headers = {
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Max": "190",
        "X-HubSpot-RateLimit-Remaining": str(remaining),
        "X-HubSpot-RateLimit-Secondly": "19",
        "X-HubSpot-RateLimit-Secondly-Remaining": str(secondly),
    }
    if daily is not None:
        headers["X-HubSpot-RateLimit-Daily"] = "650000"
        headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(daily)
    return httpx.Headers(headers)


# --- rules ----------------------------------------------------------------------------
def test_a_wait_moves_the_block_forward_never_back() -> None:
    state = fold(CrmQuota(), QuotaReading(wait_s=3), now=NOW, resets_at=None)
    assert state.blocked_until == NOW + timedelta(seconds=3)
    shorter = fold(state, QuotaReading(wait_s=1), now=NOW, resets_at=None)
    assert shorter.blocked_until == NOW + timedelta(seconds=3)
    assert blocked_for_s(shorter, NOW + timedelta(seconds=1)) == pytest.approx(2.0)
    assert blocked_for_s(shorter, NOW + timedelta(seconds=5)) == 0.0


def test_a_spent_daily_budget_pauses_until_it_resets() -> None:
    reading = QuotaReading(daily_remaining=0, daily_limit=100)
    state = fold(CrmQuota(), reading, now=NOW, resets_at=MIDNIGHT)
    assert paused_until(state, NOW) == MIDNIGHT
    assert paused_until(state, MIDNIGHT) is None
    left = fold(state, QuotaReading(daily_remaining=99), now=MIDNIGHT, resets_at=None)
    assert paused_until(left, MIDNIGHT) is None and left.daily_limit == 100


def test_combine_keeps_the_later_block_and_the_newest_daily_figures() -> None:
    older = CrmQuota(
        blocked_until=NOW + timedelta(seconds=9),
        daily_remaining=50,
        daily_limit=100,
        updated_at=NOW,
    )
    newer = CrmQuota(
        blocked_until=NOW + timedelta(seconds=2),
        daily_remaining=40,
        daily_limit=100,
        updated_at=NOW + timedelta(seconds=1),
    )
    for a, b in ((older, newer), (newer, older)):
        both = combine(a, b)
        assert both.blocked_until == NOW + timedelta(seconds=9)
        assert both.daily_remaining == 40
    no_daily = CrmQuota(blocked_until=NOW)
    assert combine(older, no_daily).daily_remaining == 50
    assert combine(no_daily, older).daily_remaining == 50


def test_only_material_changes_are_written() -> None:
    seen = CrmQuota(daily_remaining=600_000, daily_limit=650_000, updated_at=NOW)
    later = NOW + timedelta(seconds=5)
    assert not is_material(seen, CrmQuota(None, 599_000, 650_000, None, later))
    assert is_material(seen, CrmQuota(None, 593_000, 650_000, None, later))  # a percent
    minute = NOW + timedelta(seconds=61)
    assert is_material(seen, CrmQuota(None, 599_990, 650_000, None, minute))
    assert is_material(seen, CrmQuota(NOW + timedelta(seconds=1), 600_000, 650_000, None, NOW))
    assert is_material(seen, CrmQuota(None, 0, 650_000, MIDNIGHT, later))  # a pause
    assert is_material(CrmQuota(), seen)


def test_next_midnight_is_in_the_accounts_time_zone() -> None:
    assert next_midnight(NOW, "UTC") == MIDNIGHT
    # 22:30 UTC is 17:30 in Bogotá (UTC-5): midnight there is 05:00 UTC the next day
    assert next_midnight(NOW, "America/Bogota") == datetime(2026, 3, 11, 5, tzinfo=UTC)
    # 22:30 UTC is already the 11th in Tokyo (UTC+9): its next midnight is 15:00 UTC
    assert next_midnight(NOW, "Asia/Tokyo") == datetime(2026, 3, 11, 15, tzinfo=UTC)


# --- what each CRM's answers say --------------------------------------------------------
def test_standard_reading_is_retry_after_on_429_and_503() -> None:
    assert standard_reading(429, _headers(Retry_After="4"), None).wait_s == 4.0
    assert standard_reading(503, _headers(Retry_After="2"), None).wait_s == 2.0
    assert not standard_reading(200, _headers(Retry_After="2"), None).says_anything
    assert REST_ERRORS.quota(429, _headers(), None).wait_s is None


def test_hubspot_headers_are_read_on_every_answer() -> None:
    reading = HUBSPOT_ERRORS.quota(200, _hubspot(), None)
    assert reading.daily_remaining == 640_000 and reading.daily_limit == 650_000
    assert reading.remaining == {"daily": 640_000, "interval": 150, "secondly": 15}
    assert reading.wait_s is None and reading.window_wait_s is None
    spent_window = HUBSPOT_ERRORS.quota(200, _hubspot(remaining=0), None)
    assert spent_window.window_wait_s == 10.0  # the ten-second window is used up
    oauth = HUBSPOT_ERRORS.quota(200, _hubspot(daily=None), None)
    assert oauth.daily_remaining is None  # OAuth apps have no daily figures


def test_hubspot_429_policies() -> None:
    window = {"policyName": "TEN_SECONDLY_ROLLING", "errorType": "RATE_LIMIT"}
    headers = _hubspot(remaining=0)
    refused = HUBSPOT_ERRORS.quota(429, httpx.Headers({**headers, "Retry-After": "6"}), window)
    assert refused.wait_s == 6.0 and refused.window_wait_s is None and not refused.daily_spent
    no_header = HUBSPOT_ERRORS.quota(429, headers, window)
    assert no_header.wait_s == 10.0  # the interval HubSpot reports
    daily = {"policyName": "DAILY", "errorType": "RATE_LIMIT"}
    spent = HUBSPOT_ERRORS.quota(429, _hubspot(daily=0), daily)
    assert spent.daily_spent and spent.wait_s is None
    assert HUBSPOT_ERRORS.daily_reset == "midnight"


def test_salesforce_reads_api_usage() -> None:
    used = SALESFORCE_ERRORS.quota(200, _headers(Sforce_Limit_Info="api-usage=18/100"), None)
    assert (used.daily_remaining, used.daily_limit, used.daily_spent) == (82, 100, False)
    assert used.remaining == {"daily": 82}
    body = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    spent = SALESFORCE_ERRORS.quota(403, _headers(Sforce_Limit_Info="api-usage=100/100"), body)
    assert spent.daily_spent and spent.daily_remaining == 0
    # the same code with allocation left: the limit on concurrent long requests
    busy = SALESFORCE_ERRORS.quota(403, _headers(Sforce_Limit_Info="api-usage=3/100"), body)
    assert not busy.daily_spent
    assert SALESFORCE_ERRORS.daily_reset == "rolling"


def test_a_503_retry_after_binds_for_every_vendor() -> None:
    headers = _headers(Retry_After="3")
    for dialect in (HUBSPOT_ERRORS, SALESFORCE_ERRORS, REST_ERRORS):
        assert dialect.quota(503, headers, None).wait_s == 3.0, dialect.vendor
        assert dialect.quota(500, headers, None).wait_s is None, dialect.vendor
