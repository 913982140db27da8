"""Real processes for the scale-out proof, the fault table and ``bench/soak``.

``wa-bridge receiver`` and ``wa-bridge worker`` run as subprocesses (one broker, one
PostgreSQL); a :class:`Sender` posts signed webhooks to the receivers, as Meta does: in
turn to each receiver, again after any answer but 200 until it gets one. :func:`tally`
reads what took effect from the SQL CRM tables and the ``crm_write_log`` trigger (see
``worker/conftest.py``) and turns it into a fault-table row.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import secrets
import signal
import subprocess
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from wa_bridge.bus.embedded import free_port
from wa_bridge.settings import Settings
from wa_bridge.store import create_engine
from worker.sqlcrm import WA_BRIDGE, text_body, worker_env

__all__ = [
    "Receiver",
    "Sender",
    "Tally",
    "WorkerProc",
    "message_id",
    "poll",
    "receiver_process",
    "settle",
    "tally",
    "wait_applied",
    "worker_proc",
]

WEBHOOK_PATH = "/webhooks/whatsapp"
START_TIMEOUT_S = 60.0
RESEND_WAIT_S = 0.05  # Meta waits longer; a test cannot


def message_id(n: int, contacts: int) -> str:
    """The wamid of message ``n`` in a stream over ``contacts`` contacts (``text_body``)."""
    return f"wamid.T{n % contacts:06d}N{n:07d}"


def receiver_env(settings: Settings, app_secret: str) -> dict[str, str]:
    env = worker_env(settings)
    env.update(
        WA_BRIDGE_APP_SECRETS=app_secret,
        WA_BRIDGE_VERIFY_TOKEN="fleet-verify",
        WA_BRIDGE_PUBLISH_TIMEOUT_S="3",
        WA_BRIDGE_LOG_LEVEL="WARNING",
    )
    return env


@dataclass
class Receiver:
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def receiver_process(settings: Settings, app_secret: str, log_path: Path) -> Iterator[Receiver]:
    """``wa-bridge receiver`` on a free port; killed on exit. Wait with :func:`ready`."""
    port = free_port()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [WA_BRIDGE, "receiver", "--port", str(port)],
            env=receiver_env(settings, app_secret),
            stdout=log,
            stderr=log,
        )
    try:
        yield Receiver(port, proc, log_path)
    finally:
        stop(proc)


@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@contextmanager
def worker_proc(settings: Settings, log_path: Path) -> Iterator[WorkerProc]:
    """``wa-bridge worker`` in the settings' group; killed on exit if still running."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [WA_BRIDGE, "worker"], env=worker_env(settings), stdout=log, stderr=log
        )
    try:
        yield WorkerProc(proc, log_path)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


async def settle(
    engine: AsyncEngine, count: int, *, timeout_s: float, watch: Sequence[WorkerProc] = ()
) -> None:
    """:func:`wait_applied` that returns on a timeout instead of failing, so the caller
    counts (and records) what took effect before it asserts."""
    with contextlib.suppress(AssertionError):
        await wait_applied(engine, count, timeout_s=timeout_s, watch=watch)


def tail(log_path: Path, lines: int = 30) -> str:
    if not log_path.exists():
        return ""
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


async def ready(receivers: Sequence[Receiver], timeout_s: float = START_TIMEOUT_S) -> None:
    """Wait until every receiver answers ``/readyz`` with 200 (Kafka reachable)."""
    async with httpx.AsyncClient(timeout=2.0) as client:
        for receiver in receivers:
            async with asyncio.timeout(timeout_s):
                while True:
                    if receiver.proc.poll() is not None:
                        raise AssertionError(f"receiver exited:\n{tail(receiver.log_path)}")
                    try:
                        if (await client.get(f"{receiver.url}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)


@dataclass
class Sender:
    """Signed text webhooks, message ``n`` from contact ``n % contacts``, at ``rate`` per
    second, to the receivers in turn; each is resent until a receiver answers 200.

    A contact's next message goes out once its previous one was acknowledged (else two
    receivers could publish them in either order), so send order is each contact's
    order in Kafka, the order the CRM must show."""

    receivers: Sequence[Receiver]
    app_secret: str
    contacts: int
    rate: float
    sent: int = 0  # messages acknowledged (200)
    resent: int = 0  # answers other than 200 (or no answer), each followed by a resend
    statuses: Counter[int] = field(default_factory=Counter)
    max_in_flight: int = 64  # requests at once
    _turn: Iterator[int] = field(default_factory=lambda: itertools.count())
    _slots: asyncio.Semaphore | None = None

    def body(self, n: int) -> tuple[bytes, str]:
        raw = orjson.dumps(text_body(n, n % self.contacts))
        digest = hmac.new(self.app_secret.encode(), raw, hashlib.sha256).hexdigest()
        return raw, f"sha256={digest}"

    async def send_one(
        self, client: httpx.AsyncClient, n: int, after: asyncio.Task[None] | None
    ) -> None:
        if after is not None:
            await asyncio.shield(after)
        raw, signature = self.body(n)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        while True:
            receiver = self.receivers[next(self._turn) % len(self.receivers)]
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.max_in_flight)
            try:
                async with self._slots:
                    response = await client.post(
                        f"{receiver.url}{WEBHOOK_PATH}", content=raw, headers=headers
                    )
                status = response.status_code
            except httpx.TransportError:
                status = 0
            self.statuses[status] += 1
            if status == 200:
                self.sent += 1
                return
            self.resent += 1
            await asyncio.sleep(RESEND_WAIT_S)

    async def send(self, numbers: range) -> None:
        """Send ``numbers`` paced at ``rate``; returns when every one was acknowledged."""
        loop = asyncio.get_running_loop()
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with (
            httpx.AsyncClient(timeout=10.0, limits=limits) as client,
            asyncio.TaskGroup() as group,
        ):
            start = loop.time()
            last: dict[int, asyncio.Task[None]] = {}  # contact → its latest message
            for i, n in enumerate(numbers):
                due = start + i / self.rate
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                contact = n % self.contacts
                last[contact] = group.create_task(self.send_one(client, n, last.get(contact)))


def new_app_secret() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Tally:
    """What the SQL CRM holds for a stream of ``sent`` text messages."""

    sent: int
    applied: int  # distinct expected notes in crm_notes
    duplicated: int  # note writes beyond the first (crm_write_log)
    lost: int  # expected notes missing
    unexpected: int  # notes nobody sent
    dead_letters: int

    def row(self) -> tuple[int, int, int, int]:
        return self.sent, self.applied, self.duplicated, self.lost


async def tally(database_url: str, numbers: range, contacts: int) -> Tally:
    expected = {message_id(n, contacts) for n in numbers}
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            notes = set((await conn.execute(text("SELECT note_key FROM crm_notes"))).scalars())
            writes = (
                await conn.execute(
                    text("SELECT note_key, count(*) FROM crm_write_log GROUP BY note_key")
                )
            ).all()
            dead = (await conn.execute(text("SELECT count(*) FROM dead_letters"))).scalar_one()
    finally:
        await engine.dispose()
    return Tally(
        sent=len(expected),
        applied=len(notes & expected),
        duplicated=sum(int(c) - 1 for key, c in writes if key in expected),
        lost=len(expected - notes),
        unexpected=len(notes - expected),
        dead_letters=int(dead),
    )


async def poll(condition: Callable[[], Awaitable[bool]], *, timeout_s: float) -> None:
    """Check ``condition`` every 50 ms until it holds (TimeoutError after ``timeout_s``)."""
    async with asyncio.timeout(timeout_s):
        while not await condition():  # noqa: ASYNC110 - another process's state
            await asyncio.sleep(0.05)


async def applied_count(engine: AsyncEngine) -> int:
    """Notes in the SQL CRM (committed)."""
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM crm_notes"))).scalar_one())


async def wait_applied(
    engine: AsyncEngine,
    count: int,
    *,
    timeout_s: float,
    watch: Sequence[WorkerProc] = (),
) -> None:
    """Wait until ``count`` notes are in the CRM; fail early when a watched worker died."""
    try:
        async with asyncio.timeout(timeout_s):
            while await applied_count(engine) < count:
                for worker in watch:
                    if worker.proc.poll() is not None:
                        raise AssertionError(
                            f"worker exited with {worker.proc.returncode}:\n{tail(worker.log_path)}"
                        )
                await asyncio.sleep(0.1)
    except TimeoutError:
        logs = "\n".join(tail(w.log_path, 15) for w in watch)
        got = await applied_count(engine)
        raise AssertionError(f"{got}/{count} applied after {timeout_s}s:\n{logs}") from None
