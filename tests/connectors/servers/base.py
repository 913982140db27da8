"""ContractServer: a CRM stand-in that checks every request against the vendor's contract.

A subclass is a plain ASGI app that knows one vendor's routes, request schemas, error
shapes and state. This base runs it with uvicorn in a background thread (on a free port,
as httpx's own tests do, or on a given one), records every request with the contract
violations found in it, keeps the CRM's records in memory, and plays scripted faults::

    server.script(status=429, retry_after_s=1, times=2)   # two rate-limited answers
    server.script(status=500)                              # one server error
    server.script(delay_s=2)                               # a slow answer (then applied)
    server.script(status=400, body={...})                  # a validation error
    server.script(status=500, match="/oauth")              # only for matching paths

Faults are played in order, one per request, after the request was checked,
authenticated and let through the vendor's own limits, and before it is applied (a
delayed request is still applied: a timeout does not mean nothing happened). A fault
without ``match`` applies to API requests only, never to a token endpoint. A ``match``
found in the path of one of a composite call's subrequests (Salesforce's ``POST
/composite``) plays on the whole call; with ``part=True`` an answer fault (``status``,
``body``) is that subrequest's answer instead, the call and its other subrequests going
on as the CRM would (``server.script(status=500, match="sobjects/Case", part=True)``).

More faults for the fault tests (``tests/faults``); none of them weakens a check::

    server.script(status=429, retry_after_s=0.5, at=3)     # the 3rd request from now
    server.script(accept_then_hang_s=2, match="/batch/create")  # applied, answered late
    server.script(action="expire_credentials", at=4)       # from the 4th request: 401
    server.script(action="spend_daily_budget", at=2)       # from the 2nd: over the day's
    server.renew_daily_budget()                            # midnight: the budget is back

``at=N`` plays the fault on the Nth matching request from now; each queued fault counts
on its own (an answer fault counts the requests that reach the fault stage, an action
the requests that arrive). ``accept_then_hang_s`` applies the request, then answers that
much later (a client with a shorter timeout sees a timeout for a write the CRM made).
An ``action`` changes the vendor's state as the request arrives, before it is
authenticated: ``expire_credentials`` expires every token issued so far (the vendor's
401 follows), ``spend_daily_budget`` uses up the daily allocation (the vendor's own
refusal follows, until :meth:`ContractServer.renew_daily_budget`).

Every answer carrying ``Retry-After`` starts a wait: a later request that arrives before
it ran out is recorded in :attr:`ContractServer.early`: on the same connection at once;
on another, each one after that connection's first, and its first too when it came after
:attr:`ContractServer.retry_after_grace_s` (the time one request already under way needs
to land), so a test can assert there were none. With
:attr:`ContractServer.enforce_retry_after` on (off by default and after ``reset()``:
today's worker does not hold every partition back, issue 10),
:meth:`ContractServer.assert_contract_kept` fails on them too.

Each request is named by its route (``RecordedRequest.endpoint``), so
:meth:`ContractServer.counts` tells how many calls each endpoint took.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

import orjson
import uvicorn

Json = Any
Scope = dict[str, Any]


class ManualClock:
    """A clock tests move by hand: ``server.clock = clock = ManualClock()`` (monotonic
    seconds; windows, token expiry and Retry-After then follow ``clock.advance``)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# What a fault may do to the vendor's state as a request arrives (see the module doc).
FaultAction = Literal["expire_credentials", "spend_daily_budget"]


@dataclass
class Fault:
    status: int | None = None
    retry_after_s: float | None = None
    delay_s: float = 0.0
    body: Json = None
    headers: dict[str, str] = field(default_factory=dict)
    match: str | None = None  # a substring of the path; None: any API request
    countdown: int = 0  # matching requests to let by before this one plays (``at`` - 1)
    accept_then_hang_s: float = 0.0  # apply the request, then answer this much later
    action: FaultAction | None = None  # done to the vendor's state on arrival
    part: bool = False  # the answer of one subrequest of a composite call, not the call's

    def matches(self, request: RecordedRequest) -> bool:
        if self.part:
            return False  # see ContractServer.take_part_fault
        if self.match is None:
            return not request.auth_endpoint
        return request.mentions(self.match)  # a composite call: any of its subrequests


@dataclass
class RecordedRequest:
    """One request as received, and what the contract check found wrong with it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Json
    violations: list[str] = field(default_factory=list)
    status: int = 0
    endpoint: str = ""  # the route it matched, e.g. "POST objects/contacts/batch/upsert"
    route_name: str = ""  # that route's template, e.g. "objects/{type}/batch/upsert"
    params: dict[str, str] = field(default_factory=dict)  # the route's path parameters
    client: str = ""  # "host:port" of the connection it came on
    arrived: float = 0.0  # on the server's clock
    form: bool = False  # the body was application/x-www-form-urlencoded
    early_s: float = 0.0  # > 0: it came this long before a Retry-After ran out
    auth_endpoint: bool = False  # a token endpoint (no Bearer needed, not an API call)
    caller: str = ""  # who authenticated: the vendor's kind of credential
    # the subrequests a composite call carries (Salesforce's POST /composite), in order
    parts: list[RecordedRequest] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def mentions(self, text: str) -> bool:
        """True when ``text`` is in the path of the request or of one of its parts."""
        return text in self.path or any(text in part.path for part in self.parts)


@dataclass
class Reply:
    status: int
    body: Json = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Wait:
    until: float
    since: float
    client: str
    # other connections whose one request already under way has been excused
    excused: set[str] = field(default_factory=set)


class ContractServer:
    """Base of the vendor contract servers; subclasses implement ``check`` and ``handle``."""

    vendor = "base"
    token = "test-token"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.early: list[RecordedRequest] = []
        self.enforce_retry_after = False
        self.retry_after_grace_s = 0.01
        self.clock: Callable[[], float] = time.monotonic
        self._wait: _Wait | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # --- test API ---------------------------------------------------------------------
    def script(
        self,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        delay_s: float = 0.0,
        body: Json = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        match: str | None = None,
        at: int = 1,
        accept_then_hang_s: float = 0.0,
        action: FaultAction | None = None,
        part: bool = False,
    ) -> None:
        """Queue ``times`` faulty answers for the next requests (whose path holds
        ``match``), the first on the ``at``-th such request from now (module doc)."""
        if at < 1:
            raise ValueError("at counts requests from 1")
        with self._lock:
            for _ in range(times):
                self._faults.append(
                    Fault(
                        status,
                        retry_after_s,
                        delay_s,
                        body,
                        dict(headers or {}),
                        match,
                        countdown=at - 1,
                        accept_then_hang_s=accept_then_hang_s,
                        action=action,
                        part=part,
                    )
                )

    def reset_faults(self) -> None:
        """Drop the scripted faults not played yet."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """Scripted faults not played yet."""
        with self._lock:
            return len(self._faults)

    def renew_daily_budget(self) -> None:
        """Midnight (or the rolling day moved on): the daily allocation is whole again,
        and a Retry-After that pointed there has run out."""
        raise NotImplementedError(f"{self.vendor} has no daily budget")

    def leave_daily_budget(self, requests: int) -> None:
        """Only ``requests`` more requests fit in today's allocation (the answers' quota
        headers count down to 0; the next request is refused)."""
        raise NotImplementedError(f"{self.vendor} has no daily budget")

    def _wait_ran_out(self) -> None:
        with self._lock:
            self._wait = None

    def expire_credentials(self) -> None:
        """Every access token issued so far expires now (the ``expire_credentials`` action)."""
        raise NotImplementedError(f"{self.vendor} issues no tokens that expire")

    def spend_daily_budget(self) -> None:
        """The daily allocation is used up now (the ``spend_daily_budget`` action)."""
        raise NotImplementedError(f"{self.vendor} has no daily budget")

    def reset(self) -> None:
        """Forget requests, records, pending faults and waits (between tests); back to
        the real clock."""
        with self._lock:
            self.clock = time.monotonic
            self.enforce_retry_after = False
            self._faults.clear()
            self.requests.clear()
            self.records.clear()
            self.early.clear()
            self._wait = None

    @property
    def violations(self) -> list[RecordedRequest]:
        return [r for r in self.requests if not r.ok]

    def assert_contract_kept(self) -> None:
        """Fail if any request broke the vendor's contract (or came before Retry-After)."""
        bad = self.violations
        lines = [f"{r.method} {r.path}: {'; '.join(r.violations)}" for r in bad]
        if self.enforce_retry_after:
            lines += [
                f"{r.method} {r.path}: sent {r.early_s:.3f} s before Retry-After ran out"
                for r in self.early
            ]
        assert not lines, "requests broke the contract:\n" + "\n".join(lines)

    def collection(self, name: str) -> dict[str, dict[str, Any]]:
        return self.records.setdefault(name, {})

    def counts(self, *, include_auth: bool = False) -> Counter[str]:
        """Requests per endpoint (``"POST objects/contacts/batch/upsert"``: n)."""
        with self._lock:
            return Counter(r.endpoint for r in self.requests if include_auth or not r.auth_endpoint)

    def total(self, *, include_auth: bool = False) -> int:
        """How many requests the CRM got (API calls; token calls with ``include_auth``)."""
        return sum(self.counts(include_auth=include_auth).values())

    def per_thousand(self, events: int) -> float:
        """API requests per 1,000 events, for benchmarks."""
        return 1000 * self.total() / events if events else 0.0

    # --- vendor hooks -----------------------------------------------------------------
    def route(self, request: RecordedRequest) -> None:
        """Name ``request.endpoint`` (and fill ``params``); mark token endpoints."""
        request.endpoint = f"{request.method} {request.path}"

    def check(self, request: RecordedRequest) -> list[str]:
        """Contract violations of ``request`` (empty when it is valid)."""
        raise NotImplementedError

    def handle(self, request: RecordedRequest) -> Reply:
        """Apply a valid request to the records; return the vendor's answer."""
        raise NotImplementedError

    def error_reply(self, status: int, message: str, *, field: str | None = None) -> Reply:
        """The vendor's error answer for ``status``."""
        raise NotImplementedError

    def violation_reply(self, request: RecordedRequest) -> Reply:
        """The answer to a request that broke the contract (the vendor's 400 by default)."""
        return self.error_reply(400, "; ".join(request.violations))

    def authenticate(self, request: RecordedRequest) -> Reply | None:
        """None if the request's Bearer token is good, else the vendor's 401."""
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self.error_reply(401, "The access token is invalid or has expired.")
        return None

    def throttle(self, request: RecordedRequest) -> Reply | None:
        """The vendor's own limits: None to let the request through, else the refusal."""
        return None

    def decorate(self, request: RecordedRequest, reply: Reply) -> None:
        """Add headers every answer carries (rate-limit headers)."""

    def fault_reply(self, fault: Fault) -> Reply:
        status = fault.status or 500
        reply = (
            Reply(status, fault.body)
            if fault.body is not None
            else self.error_reply(status, f"scripted {status}")
        )
        if fault.retry_after_s is not None:
            reply.headers["Retry-After"] = f"{fault.retry_after_s:g}"
        reply.headers.update(fault.headers)
        return reply

    # --- ASGI -------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        arrived = self.clock()
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = self._parse(scope, raw)
        request.arrived = arrived
        reply = await self._answer(request)
        request.status = reply.status
        payload = b"" if reply.body is None else orjson.dumps(reply.body)
        headers = [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
        if payload:
            headers.append((b"content-type", b"application/json"))
        self._note_retry_after(request, reply)
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _parse(self, scope: Scope, raw: bytes) -> RecordedRequest:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        client = scope.get("client") or ("", 0)
        request = RecordedRequest(scope["method"], scope["path"], query, headers, None)
        request.client = f"{client[0]}:{client[1]}"
        content_type = headers.get("content-type", "")
        if raw and "application/x-www-form-urlencoded" in content_type:
            request.form = True
            request.body = dict(parse_qsl(raw.decode(), keep_blank_values=True))
            return request
        if raw:
            try:
                request.body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                request.violations.append("body is not JSON")
        if raw and "application/json" not in content_type:
            request.violations.append("Content-Type is not application/json")
        return request

    def take_part_fault(self, part: RecordedRequest) -> Fault | None:
        """The ``part=True`` answer fault due on one subrequest of a composite call (its
        path holds the fault's ``match``); the others that match count it."""
        due = self._due(
            lambda f: f.part and f.status is not None and (f.match or "") in part.path,
            first_only=True,
        )
        return due[0] if due else None

    def _take_fault(self, request: RecordedRequest) -> Fault | None:
        """The first answer fault due on ``request``; the others that match count it."""
        due = self._due(lambda f: f.action is None and f.matches(request), first_only=True)
        return due[0] if due else None

    def _arrive(self, request: RecordedRequest) -> None:
        """Play the actions due on ``request`` (before it is authenticated)."""
        for fault in self._due(
            lambda f: f.action is not None and f.matches(request), first_only=False
        ):
            if fault.action == "expire_credentials":
                self.expire_credentials()
            elif fault.action == "spend_daily_budget":
                self.spend_daily_budget()

    def _due(self, wanted: Callable[[Fault], bool], *, first_only: bool) -> list[Fault]:
        """Take the ``wanted`` faults due now (the first only, with ``first_only``); each
        other ``wanted`` one counts this request down."""
        due: list[Fault] = []
        for fault in list(self._faults):
            if not wanted(fault):
                continue
            if fault.countdown > 0:
                fault.countdown -= 1
            elif not (first_only and due):
                due.append(fault)
                self._faults.remove(fault)
        return due

    def _check_early(self, request: RecordedRequest) -> None:
        wait = self._wait
        if wait is None or request.auth_endpoint or request.arrived >= wait.until:
            return
        under_way = (
            request.client != wait.client
            and request.client not in wait.excused
            and request.arrived < wait.since + self.retry_after_grace_s
        )
        if under_way:
            wait.excused.add(request.client)
        else:
            request.early_s = wait.until - request.arrived
            self.early.append(request)

    def _note_retry_after(self, request: RecordedRequest, reply: Reply) -> None:
        value = next((v for k, v in reply.headers.items() if k.lower() == "retry-after"), None)
        if value is None or request.auth_endpoint:
            return
        try:
            seconds = float(value)
        except ValueError:
            return
        now = self.clock()
        with self._lock:
            self._wait = _Wait(now + seconds, now, request.client)

    async def _answer(self, request: RecordedRequest) -> Reply:
        self.route(request)
        if not request.violations:
            request.violations.extend(self.check(request))
        with self._lock:
            self.requests.append(request)
            self._check_early(request)
            self._arrive(request)
        if not request.auth_endpoint:
            if not request.headers.get("authorization", "").startswith("Bearer "):
                request.violations.append("no Authorization: Bearer header")
                return self._decorated(request, self.error_reply(401, "no credentials"))
            with self._lock:
                refused = self.authenticate(request)
            if refused is not None:
                return self._decorated(request, refused)
        if request.violations:
            return self._decorated(request, self.violation_reply(request))
        with self._lock:
            refused = self.throttle(request)
            fault = None if refused is not None else self._take_fault(request)
        if refused is not None:
            return self._decorated(request, refused)
        if fault is not None:
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.status is not None:
                return self._decorated(request, self.fault_reply(fault))
        with self._lock:
            reply = self._decorated(request, self.handle(request))
        if fault is not None and fault.accept_then_hang_s:
            await asyncio.sleep(fault.accept_then_hang_s)  # written; the answer comes late
        return reply

    def _decorated(self, request: RecordedRequest, reply: Reply) -> Reply:
        with self._lock:
            self.decorate(request, reply)
        return reply

    # --- lifecycle --------------------------------------------------------------------
    def start(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self,
            lifespan="off",
            log_level="warning",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self.vendor} contract server did not start")
            time.sleep(0.01)
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)


def path_key(segment: str) -> str:
    return unquote(segment)
