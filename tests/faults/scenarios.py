"""CRM faults played through the whole pipeline, the same way for every vendor.

Each scenario sends a fresh batch of new people (contacts, cases, notes), plays one fault
on the stand-in, lets the worker finish, then judges the stand-in's end state
(:func:`~faults.crm_pipeline.audit`): exact records, 0 duplicates, 0 orphans, every event
applied once, nothing dead-lettered. Every scenario adds a row to the fault table.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from aiokafka.partitioner import DefaultPartitioner

from faults.crm_pipeline import PARTITIONS, Batch, Pipeline, audit, new_batch
from faults.table import record
from wa_bridge.bus.headers import record_key
from wa_bridge.connectors.gate import quota_key
from wa_bridge.connectors.quota import next_midnight
from wa_bridge.metrics import sample_values
from wa_bridge.normalize import normalize_webhook
from wa_bridge.ops.probes import probe_app
from wa_bridge.store.api import DeadLetterFilter
from wa_bridge.worker.assembly import DeadLetterReplayer, state_store
from wa_bridge.worker.loop import Worker
from wa_bridge.worker.quota_pause import quota_pause_reason

# Waits short enough for the suite's time budget; the CRM's own words, all the same.
RETRY_AFTER_S = 0.2
HANG_S = 1.3  # longer than the pipeline's crm_timeout_s (1 s)
ATTEMPTS_PER_INDEX = 3  # a batch split by the broker's timing takes more calls; try again


def one_webhook(batch: Batch) -> Batch:
    """``batch`` as a single webhook (one entry per message), so the worker most likely
    fetches it whole and applies it as one batch with a known number of calls."""
    bodies = [orjson.loads(b) for b in batch.bodies]
    merged = bodies[0]
    merged["entry"] = [entry for body in bodies for entry in body["entry"]]
    return Batch(batch.phones, batch.message_ids, (orjson.dumps(merged),), batch.owner)


def fresh_batch(people: int = 3, per_person: int = 2) -> Batch:
    return one_webhook(new_batch(people=people, per_person=per_person))


async def judge(run: Pipeline, batch: Batch, fault: str, *, replayed: bool = False) -> None:
    """Record ``batch``'s row and fail on any duplicate, loss, orphan or dead letter
    (``replayed``: or one left open after its replay)."""
    result = audit(run.server, batch)
    record(fault, result.sent, result.applied, result.duplicated, result.lost)
    assert result.problems == [], f"{fault}: {result.problems}"
    assert (result.applied, result.duplicated, result.lost) == (result.sent, 0, 0), result
    assert await run.dead_letters(open_only=replayed) == 0, f"{fault}: dead-lettered"


def vendor_of(run: Pipeline) -> str:
    return run.server.vendor


async def baseline(run: Pipeline) -> int:
    """A batch with no fault; returns how many API calls it took."""
    before = run.server.total()
    batch = fresh_batch()
    await run.send(batch)
    await judge(run, batch, f"{vendor_of(run)}: none (baseline)")
    return run.server.total() - before


async def fault_on_each_call(run: Pipeline, label: str, **fault: Any) -> int:
    """For i in 1..N (N: the calls of a clean batch), a batch whose i-th call meets
    ``fault``; returns N."""
    calls = await baseline(run)
    assert calls >= 1
    for index in range(1, calls + 1):
        for _ in range(ATTEMPTS_PER_INDEX):
            batch = fresh_batch()
            run.server.script(at=index, **fault)
            await run.send(batch)
            played = run.server.pending_faults == 0
            if not played:  # this batch took fewer calls: nothing was faulted
                run.server.reset_faults()
            await judge(
                run,
                batch,
                f"{vendor_of(run)}: {label} on call {index}/{calls}"
                if played
                else f"{vendor_of(run)}: none (call {index} never came)",
            )
            if played:
                break
        else:
            raise AssertionError(f"{label} on call {index} never played")
    return calls


async def retry_after_binds_another_worker(run: Pipeline, other: Worker) -> None:
    """Two workers of one group, one CRM: a 429 with Retry-After answered to one binds
    the other's requests too (through the quota row they share in the database)."""
    await run.worker.run_until_idle()  # the group settled: each holds its partitions
    await other.run_until_idle()
    mine = {tp.partition for tp in run.worker.consumer.assignment() if tp.topic == main_topic(run)}
    theirs = {tp.partition for tp in other.consumer.assignment() if tp.topic == main_topic(run)}
    assert mine and theirs, "the second worker got no partition"
    batch = one_webhook(batch_over(mine | theirs, PARTITIONS))
    before = (run.worker.stats.delivered, other.stats.delivered)
    run.server.script(status=429, retry_after_s=1.0)
    await run.post(batch)
    await asyncio.gather(run.worker.run_until_idle(), other.run_until_idle())
    assert run.server.pending_faults == 0
    assert run.worker.stats.delivered > before[0] and other.stats.delivered > before[1]
    refused = next(r for r in run.server.requests if r.status == 429)
    others = [r for r in run.server.requests if r.arrived > refused.arrived]
    assert {r.client for r in others} - {refused.client}, "one connection did it all"
    await judge(run, batch, f"{vendor_of(run)}: 429 to one of two workers")


def main_topic(run: Pipeline) -> str:
    return run.settings.kafka_topic


def batch_over(partitions: set[int], count: int) -> Batch:
    """New people, one message each, until every partition of ``partitions`` (of
    ``count``) has one (the receiver's partitioner: murmur2 of the contact key)."""
    partitioner = DefaultPartitioner()
    covered: set[int] = set()
    people: list[Batch] = []
    while not partitions <= covered or len(people) < 4:
        person = new_batch(people=1, per_person=1)
        [event] = normalize_webhook(orjson.loads(person.bodies[0]), received_at=datetime.now(UTC))
        covered.add(partitioner(record_key(event), list(range(count)), list(range(count))))
        people.append(person)
    return Batch(
        tuple(p.phones[0] for p in people),
        tuple(p.message_ids[0] for p in people),
        tuple(p.bodies[0] for p in people),
        {k: v for p in people for k, v in p.owner.items()},
    )


# More failing answers than any grouping of a scenario's batch can take in place.
_UNTIL_HEALED: Final = 1000


async def burst_past_the_in_place_budget(run: Pipeline, label: str, **fault: Any) -> None:
    """The CRM fails every call until the worker has sent an event to a retry topic: the
    batch's in-place tries are spent, it is split, its events go to a retry topic and are
    applied from there; a Retry-After binds every one of those later requests.

    A fixed number of failing answers cannot say that: whether the batch's events arrive
    in one worker batch or in two (the linger's timing) decides how many answers its
    in-place tries and halves take before an event moves on. So the CRM heals when the
    first event has gone to a retry topic."""
    await baseline(run)
    batch = fresh_batch()
    run.server.script(times=_UNTIL_HEALED, **fault)
    healer = asyncio.create_task(_heal_at_first_retry(run))
    try:
        await run.send(batch)
    finally:
        healer.cancel()
    played = await healer if healer.done() and not healer.cancelled() else 0
    assert run.worker.stats.retried > 0, "nothing went through a retry topic"
    # two tries in place, then both halves (or a single event) failing once more
    assert played >= 3, f"only {played} failing answer(s) before the retry topic"
    await judge(run, batch, f"{vendor_of(run)}: {label}")


async def _heal_at_first_retry(run: Pipeline) -> int:
    """Drop the CRM's fault once an event went to a retry topic; the failing answers
    played until then."""
    await wait_for(lambda: run.worker.stats.retried > 0, timeout_s=60.0)
    played = _UNTIL_HEALED - run.server.pending_faults
    run.server.reset_faults()
    return played


async def replay_meets_a_rate_limit(run: Pipeline, note_path: str) -> None:
    """The CRM refuses a batch's notes (dead letters); the fix made, ``dlq replay`` meets
    a 429: the replay waits its Retry-After (the stand-in enforces it) and applies
    every letter once."""
    await baseline(run)
    batch = fresh_batch(people=2, per_person=1)  # the search for failing events is long
    run.server.script(status=400, match=note_path, times=1000)
    await run.send(batch)
    run.server.reset_faults()  # the cause is fixed
    assert await run.dead_letters() > 0
    run.server.script(status=429, retry_after_s=RETRY_AFTER_S)
    async with (
        state_store(run.settings) as store,
        DeadLetterReplayer(run.settings, store) as replayer,
    ):
        results = await replayer.replay(flt=DeadLetterFilter(limit=1000), actor="fault-test")
    assert results and {r.status for r in results} == {"replayed"}, results
    assert run.server.pending_faults == 0
    await judge(run, batch, f"{vendor_of(run)}: 429 during dlq replay", replayed=True)


async def accept_then_timeout(run: Pipeline, create_paths: dict[str, str]) -> None:
    """The CRM writes the records of a create (an upsert that creates) and answers after
    the client gave up: the retry must find them, not write them again."""
    await baseline(run)
    for name, path in create_paths.items():
        batch = fresh_batch()
        run.server.script(accept_then_hang_s=HANG_S, match=path)
        await run.send(batch)
        assert run.server.pending_faults == 0, f"no {name} call"
        sent = [r for r in run.server.requests if r.mentions(path)]
        assert len(sent) >= 2, f"{name}: the write that timed out was not tried again"
        await judge(run, batch, f"{vendor_of(run)}: accept-then-timeout on {name}")


async def token_expiry(run: Pipeline, *, at: int = 3, token_path: str | None = None) -> None:
    """Every access token expires from the ``at``-th call of a batch on: the connector
    gets a new one and goes on. ``token_path``: the first request for the new token
    times out (the token endpoint issued one the client never got)."""
    await baseline(run)
    seen = len(run.server.requests)
    batch = fresh_batch()
    run.server.script(action="expire_credentials", at=at)
    if token_path is not None:
        run.server.script(accept_then_hang_s=HANG_S, match=token_path)
    await run.send(batch)
    assert run.server.pending_faults == 0
    assert any(r.status == 401 for r in run.server.requests), "no 401 was met"
    asked = [r for r in run.server.requests[seen:] if r.auth_endpoint]
    assert any(r.status == 200 for r in asked), "no new token"
    assert len(asked) >= 1 + (token_path is not None), "the timed-out token request was not retried"
    how = "; the token request timed out" if token_path else ""
    await judge(run, batch, f"{vendor_of(run)}: token expired mid-batch{how}")


class ShiftedClock:
    """The system clock with its wall time moved by a test (sleeps and monotonic stay
    real), so a daily budget's midnight can be a couple of seconds away."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def before_midnight(self, seconds: float) -> None:
        """From now on it is ``seconds`` before the next UTC midnight."""
        real = datetime.now(UTC)
        self.offset = next_midnight(real, "UTC") - timedelta(seconds=seconds) - real


async def wait_for(condition: Any, *, timeout_s: float = 20.0) -> None:
    """Poll ``condition()`` until true (a state change with no event to wait on)."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the state has no event to wait on
            await asyncio.sleep(0.01)


async def daily_limit_reached(
    run: Pipeline, *, clock: ShiftedClock | None = None, at: int = 3, refused: bool = True
) -> None:
    """The CRM's daily budget runs out on the ``at``-th call of a batch: the worker pauses
    (nothing dead-lettered, nothing routed to a retry topic, nothing sent), says so on
    ``/readyz``, Kafka holds what arrives meanwhile, and everything is applied once the
    budget is back. ``refused``: the CRM refuses the ``at``-th call (another app spent the
    budget); else the ``at``-th call is the budget's last, and its quota headers say so.
    ``clock``: the worker's, moved to just before midnight (a CRM whose budget comes back
    at midnight); without it the CRM's budget is rolling (probed)."""
    await baseline(run)
    if clock is not None:
        clock.before_midnight(2.5)
    first, backlog = fresh_batch(), fresh_batch()
    if refused:
        run.server.script(action="spend_daily_budget", at=at)
    else:
        run.server.leave_daily_budget(at)
    await run.post(first)
    quota = run.worker.processor.quota
    applying = asyncio.create_task(run.worker.run_until_idle(timeout_s=60))
    try:
        await wait_for(lambda: quota.is_paused or applying.done())
        assert quota.is_paused, "the worker never paused"
        assert run.server.pending_faults == 0
        if not refused:  # the gate stopped before the CRM had to refuse anything
            assert not any(r.status in (403, 429) for r in run.server.requests)
        paused_at = run.server.clock()
        reason = quota_pause_reason()
        assert reason is not None and "resumes at" in reason
        status, body = readyz()
        assert status.startswith("503") and "budget is spent" in body["detail"], body
        assert daily_left(run) == 0
        await run.post(backlog)  # while paused: Kafka holds it
        await asyncio.sleep(0.5)  # room to misbehave (send, dead-letter, route) if it would
        assert run.worker.stats.retried == 0 and run.worker.stats.dead_lettered == 0
        assert await run.dead_letters() == 0
        assert audit(run.server, backlog).applied == 0
        run.server.renew_daily_budget()  # the CRM's midnight (or the rolling day moved on)
        renewed_at = run.server.clock()
        await applying
    finally:
        if not applying.done():
            applying.cancel()
    sent_while_paused = [
        r for r in run.server.requests if not r.auth_endpoint and paused_at < r.arrived < renewed_at
    ]
    assert sent_while_paused == [], [r.endpoint for r in sent_while_paused]
    assert not quota.is_paused and quota_pause_reason() is None
    assert readyz()[0].startswith("200") or readyz()[1]["status"] == "not_ready"
    await run.worker.run_until_idle()  # whatever of the backlog is left
    how = f"daily limit ({'refused' if refused else 'headers at 0'}, call {at})"
    await judge(run, first, f"{vendor_of(run)}: {how}: paused, resumed")
    await judge(run, backlog, f"{vendor_of(run)}: {how}: backlog held in Kafka")
    assert run.worker.stats.retried == 0


async def drain_while_paused(run: Pipeline) -> None:
    """``wa-bridge dev`` stops (Ctrl-C: drain, then the in-memory broker is gone) while
    the budget is spent: every event ends in the dead-letter table (with the reason), none
    is lost, and ``dlq replay`` applies each once when the budget is back."""
    await baseline(run)
    batch = fresh_batch()
    run.server.script(action="spend_daily_budget", at=1)
    quota = run.worker.processor.quota
    stop = asyncio.Event()
    running = asyncio.create_task(run.worker.run(stop, drain_s=30))
    try:
        await run.post(batch)
        await wait_for(lambda: quota.is_paused or running.done())
        assert quota.is_paused, "the worker never paused"
        resume_at = quota.paused_until
        stop.set()
        await running
    finally:
        if not running.done():
            running.cancel()
    assert await run.dead_letters(open_only=True) == batch.events
    assert audit(run.server, batch).applied == 0
    run.server.renew_daily_budget()
    assert resume_at is not None
    await wait_for(lambda: datetime.now(UTC) > resume_at)  # the gate's probe time
    async with (
        state_store(run.settings) as store,
        DeadLetterReplayer(run.settings, store) as replayer,
    ):
        results = await replayer.replay(flt=DeadLetterFilter(limit=1000), actor="fault-test")
    assert {r.status for r in results} == {"replayed"}, results
    await judge(
        run,
        batch,
        f"{vendor_of(run)}: dev drain while paused (dead-lettered, replayed)",
        replayed=True,
    )


def readyz() -> tuple[str, dict[str, Any]]:
    """The worker's ``/readyz`` (its probe app, called as the probe server would)."""
    answer: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = status

    body = b"".join(probe_app()({"PATH_INFO": "/readyz"}, start_response))
    return answer["status"], orjson.loads(body)


def daily_left(run: Pipeline) -> float | None:
    """The gauge ``wa_bridge_crm_quota_remaining{window="daily"}`` of this pipeline's CRM."""
    crm = quota_key(run.settings)
    samples = sample_values(["wa_bridge_crm_quota_remaining"])["wa_bridge_crm_quota_remaining"]
    found = [v for labels, v in samples if labels == {"crm": crm, "window": "daily"}]
    return found[0] if found else None
