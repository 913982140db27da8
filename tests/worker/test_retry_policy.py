"""The retry policy on its own: fate by error class; in-place retries wait on the clock."""

from __future__ import annotations

import asyncio

import pytest

from wa_bridge import errors
from wa_bridge.clock import ManualClock
from wa_bridge.errors import CrmRateLimited, CrmRejected, WaBridgeError
from wa_bridge.metrics import REGISTRY
from wa_bridge.worker.retry import (
    ERROR_CLASSES,
    Fate,
    ParkingLot,
    error_class_of,
    fate_of,
    retry_in_place,
)


async def test_in_place_retries_wait_retry_after_on_the_clock() -> None:
    clock = ManualClock()
    calls: list[float] = []

    async def call() -> str:
        calls.append(clock.monotonic())
        if len(calls) < 3:
            raise CrmRateLimited("429", retry_after_s=7)
        return "done"

    async with asyncio.timeout(5):
        task = asyncio.create_task(retry_in_place(call, attempts=3, clock=clock))
        await clock.sleeping()
        clock.advance(7)
        await clock.sleeping()
        clock.advance(7)
        assert await task == "done"
    assert calls == [0, 7, 14]


async def test_a_permanent_error_is_not_retried() -> None:
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise CrmRejected("400", status_code=400, crm_error="bad")

    with pytest.raises(CrmRejected):
        await retry_in_place(call, attempts=3, clock=ManualClock())
    assert calls == 1


def _branch(root: type[WaBridgeError]) -> list[type[WaBridgeError]]:
    """``root`` and its subclasses drawn in wa_bridge.errors (the tree's own classes)."""
    found = [root]
    for sub in root.__subclasses__():
        if sub.__module__ == errors.__name__:
            found += _branch(sub)
    return found


@pytest.mark.parametrize(
    "cls", _branch(errors.RetryableError) + _branch(errors.PermanentError), ids=lambda c: c.__name__
)
def test_every_retryable_and_permanent_class_is_recorded_by_its_own_name(
    cls: type[WaBridgeError],
) -> None:
    assert cls.__name__ in ERROR_CLASSES, f"add {cls.__name__} to worker.retry.ErrorClass"
    error = cls.__new__(cls)  # the name is all that matters here, not the arguments
    assert error_class_of(error) == cls.__name__


def test_anything_else_is_an_unexpected_error_and_decides_the_fate() -> None:
    assert error_class_of(KeyError("x")) == "UnexpectedError"
    assert fate_of(KeyError("x"), attempt=0, max_attempt=2) == Fate(
        "dead_letter", "UnexpectedError"
    )
    retryable = CrmRateLimited("429")
    assert fate_of(retryable, attempt=1, max_attempt=2) == Fate("retry", "CrmRateLimited")
    assert fate_of(retryable, attempt=2, max_attempt=2) == Fate("dead_letter", "CrmRateLimited")


def test_a_subclass_defined_elsewhere_is_recorded_as_its_nearest_named_class() -> None:
    class VendorSaidNo(errors.CrmRejected):
        pass

    error = VendorSaidNo("no", status_code=422, crm_error="no")
    assert error_class_of(error) == "CrmRejected"


def test_the_parked_contacts_gauge_follows_the_parking_lot() -> None:
    def gauge() -> float | None:
        return REGISTRY.get_sample_value("wa_bridge_worker_parked_contacts")

    lot = ParkingLot()
    lot.park(0, "K1", "ev-1", 1)
    lot.park(0, "K1", "ev-2", 1)  # the same contact twice: one parked contact
    lot.park(0, "K2", "ev-3", 2)
    lot.park(1, "K3", "ev-4", 1)
    assert (lot.contacts(), gauge()) == (3, 3)
    assert lot.level_ahead(0, "K2", "ev-9") == 2
    lot.release(0, "K1", "ev-1")
    assert gauge() == 3  # K1 still has ev-2 in retry
    lot.release(0, "K1", "ev-2")
    assert gauge() == 2
    lot.drop_partition(0)  # revoked: its retry records are the next owner's
    assert (lot.contacts(), gauge()) == (1, 1)
    lot.release(1, "K3", "ev-4")
    assert gauge() == 0
