"""A fault on each call of a batch that is more than new people: a known customer's
outbound message read, their conversation converted by the inbox (case closed, outcome,
value), and a new person writing, all in one worker batch. HubSpot and Salesforce, through
the whole pipeline (signed webhooks and signed inbox posts → receiver → Tansu → worker →
stand-in), judged on the stand-in: one contact and one case each, every note on its
contact and case, the note's status ``read`` (never back to ``sent`` or ``delivered``),
the case resolved with its outcome, nothing dead-lettered.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from connectors.conftest import checked
from connectors.servers import HubSpotServer, SalesforceServer
from connectors.servers.base import ContractServer
from e2e.test_conversations_to_crm import (
    CrmView,
    HubSpotView,
    Pipeline,
    SalesforceView,
    pipeline,
)
from faults.crm_pipeline import pipeline_settings
from faults.scenarios import HANG_S, RETRY_AFTER_S
from faults.table import record
from wa_bridge.bus.embedded import EmbeddedBroker
from worker.conversation_events import at, business_status, customer_text, inbox_post, wamid

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

_PEOPLE = itertools.count(1)
FAULTS: dict[str, dict[str, Any]] = {
    "429": {"status": 429, "retry_after_s": RETRY_AFTER_S},
    "503": {"status": 503, "retry_after_s": RETRY_AFTER_S},
    "accept then timeout": {"accept_then_hang_s": HANG_S},
}


@pytest.fixture(params=["hubspot", "salesforce"])
def server(request: pytest.FixtureRequest) -> Iterator[ContractServer]:
    session: ContractServer = request.getfixturevalue(f"{request.param}_session")
    for ready in checked(session):
        ready.enforce_retry_after = True
        yield ready


@dataclass
class Run(Pipeline):
    server: ContractServer

    async def apply(self, *items: tuple[str, dict[str, Any]]) -> None:
        for kind, body in items:
            await self.post(kind, body)
        await self.worker.run_until_idle()

    def view(self) -> CrmView:
        if isinstance(self.server, HubSpotServer):
            return HubSpotView(self.server)
        assert isinstance(self.server, SalesforceServer)
        return SalesforceView(self.server)


@asynccontextmanager
async def running(
    server: ContractServer, broker: EmbeddedBroker, topic: str, pg_url: str
) -> AsyncIterator[Run]:
    settings = pipeline_settings(server, broker.bootstrap, topic, pg_url)
    async with pipeline(settings) as run:  # the receiver app with the inbox, and a worker
        yield Run(run.client, run.worker, server)


def wa_id() -> str:
    return f"52155{next(_PEOPLE):08d}"


@dataclass
class Round:
    known: str
    new: str
    cases_before: int  # the CRM's cases before the round
    calls: int  # the requests the batch took (the warm-up's apart)


async def mixed_round(run: Run, fault: dict[str, Any] | None, call: int) -> Round:
    """A known customer (their message, the business's answer sent, an agent assigned),
    then, in one batch with ``fault`` on its ``call``-th request: that answer delivered
    and read, the conversation converted, a new person's first message."""
    cases_before = len(run.view().cases())
    known, new = wa_id(), wa_id()
    conversation = f"conv-{known}"
    await run.apply(
        ("webhook", customer_text(known, 1, at(0), "Hola, ¿tienen el sofá gris?")),
        ("webhook", business_status(known, 2, "sent", at(1))),
        ("inbox", inbox_post("assigned", f"a-{known}", at(1.5), known, agent="ana")),
    )
    before = run.server.total()
    if fault is not None:
        run.server.script(at=call, **fault)
    await run.apply(
        ("webhook", business_status(known, 2, "delivered", at(2))),
        ("webhook", business_status(known, 2, "read", at(3))),
        (
            "inbox",
            inbox_post(
                "converted",
                f"c-{known}",
                at(4),
                known,
                conversation_id=conversation,
                value="18999.00",
                currency="MXN",
            ),
        ),
        ("webhook", customer_text(new, 1, at(5), "Buenas, quiero una cotización")),
    )
    return Round(known, new, cases_before, run.server.total() - before)


def problems(run: Run, round_: Round) -> list[str]:
    """What an admin would find wrong with the round's records."""
    view = run.view()
    known, new = round_.known, round_.new
    found: list[str] = []
    phone_of = {"+52" + known[3:], "+52" + new[3:]}
    contacts = [c for c in view.contacts() if {c.get("phone"), c.get("MobilePhone")} & phone_of]
    if len(contacts) != 2:
        found.append(f"{len(contacts)} contacts for 2 people")
    cases = {c.key: c for c in view.cases()}
    inbound, answer, first = (
        view.note(wamid(known, 1)),
        view.note(wamid(known, 2)),
        view.note(wamid(new, 1)),
    )
    if answer.status != "read":
        found.append(f"the answer's note says {answer.status!r}, not 'read'")
    if not (inbound.case_key and inbound.case_key == answer.case_key):
        found.append("the known customer's notes are not on one case")
    case = cases.get(inbound.case_key or "")
    if case is None or (case.status, case.outcome, case.value) != (
        "resolved",
        "won",
        Decimal("18999"),
    ):
        found.append(f"the converted case reads {case}")
    elif case.agent != "ana":
        found.append(f"the converted case lost its agent: {case.agent!r}")
    if first.case_key is None or first.case_key == inbound.case_key:
        found.append("the new person's note is not on a case of theirs")
    if len(cases) != round_.cases_before + 2:
        found.append(f"{len(cases) - round_.cases_before} cases for 2 conversations")
    return found


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
async def test_a_fault_on_each_call_of_a_mixed_batch(
    fault: str,
    server: ContractServer,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    async with running(server, broker, topic_factory(f"mixed-{server.vendor}"), pg_url) as run:
        clean = await mixed_round(run, None, 0)
        assert problems(run, clean) == []
        assert clean.calls >= 1
        faulted = 0
        for call in range(1, clean.calls + 1):
            round_ = await mixed_round(run, FAULTS[fault], call)
            played = server.pending_faults == 0
            server.reset_faults()
            faulted += played
            found = problems(run, round_)
            label = f"on call {call}/{clean.calls}" if played else f"(call {call} never came)"
            record(f"{server.vendor}: {fault} {label} of a mixed batch", 4, 4 - len(found), 0, 0)
            assert (found, run.worker.stats.dead_lettered) == ([], 0), f"{fault} {label}"
        assert faulted >= 1
