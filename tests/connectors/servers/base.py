"""ContractServer: a CRM stand-in that checks every request against the vendor's contract.

A subclass is a plain ASGI app that knows one vendor's routes, request schemas, error
shapes and state. This base runs it with uvicorn in a background thread on a free port
(as httpx's own tests do), records every request with the contract violations found in
it, keeps the CRM's records in memory, and plays scripted faults::

    server.script(status=429, retry_after_s=1, times=2)   # two rate-limited answers
    server.script(status=500)                              # one server error
    server.script(delay_s=2)                               # a slow answer (then applied)
    server.script(status=400, body={...})                  # a validation error

Faults are played in order, one per request, after the request was checked and before it
is applied (a delayed request is still applied: a timeout does not mean nothing happened).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
import uvicorn

Json = Any
Scope = dict[str, Any]


@dataclass
class Fault:
    status: int | None = None
    retry_after_s: float | None = None
    delay_s: float = 0.0
    body: Json = None
    headers: dict[str, str] = field(default_factory=dict)


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

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass
class Reply:
    status: int
    body: Json = None
    headers: dict[str, str] = field(default_factory=dict)


class ContractServer:
    """Base of the vendor contract servers; subclasses implement ``check`` and ``handle``."""

    vendor = "base"
    token = "test-token"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self.requests: list[RecordedRequest] = []
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
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
    ) -> None:
        """Queue ``times`` faulty answers for the next requests."""
        fault = Fault(status, retry_after_s, delay_s, body, dict(headers or {}))
        with self._lock:
            self._faults.extend([fault] * times)

    def reset(self) -> None:
        """Forget requests, records and pending faults (between tests)."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self.records.clear()

    @property
    def violations(self) -> list[RecordedRequest]:
        return [r for r in self.requests if not r.ok]

    def assert_contract_kept(self) -> None:
        """Fail if any request broke the vendor's contract."""
        bad = self.violations
        assert not bad, "requests broke the contract:\n" + "\n".join(
            f"{r.method} {r.path}: {'; '.join(r.violations)}" for r in bad
        )

    def collection(self, name: str) -> dict[str, dict[str, Any]]:
        return self.records.setdefault(name, {})

    # --- vendor hooks -----------------------------------------------------------------
    def check(self, request: RecordedRequest) -> list[str]:
        """Contract violations of ``request`` (empty when it is valid)."""
        raise NotImplementedError

    def handle(self, request: RecordedRequest) -> Reply:
        """Apply a valid request to the records; return the vendor's answer."""
        raise NotImplementedError

    def error_reply(self, status: int, message: str, *, field: str | None = None) -> Reply:
        """The vendor's error answer for ``status``."""
        raise NotImplementedError

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
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = self._parse(scope, raw)
        reply = await self._answer(request)
        request.status = reply.status
        payload = b"" if reply.body is None else orjson.dumps(reply.body)
        headers = [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
        if payload:
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _parse(self, scope: Scope, raw: bytes) -> RecordedRequest:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        request = RecordedRequest(scope["method"], scope["path"], query, headers, None)
        if raw:
            try:
                request.body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                request.violations.append("body is not JSON")
        if raw and "application/json" not in headers.get("content-type", ""):
            request.violations.append("Content-Type is not application/json")
        return request

    async def _answer(self, request: RecordedRequest) -> Reply:
        auth = request.headers.get("authorization", "")
        if not request.violations:
            request.violations.extend(self.check(request))
        with self._lock:
            self.requests.append(request)
            fault = self._faults.popleft() if self._faults else None
        if not auth.startswith("Bearer "):
            request.violations.append("no Authorization: Bearer header")
            return self.error_reply(401, "Authentication credentials not found.")
        if auth != f"Bearer {self.token}":
            return self.error_reply(401, "The access token is invalid or has expired.")
        if request.violations:
            return self.error_reply(400, "; ".join(request.violations))
        if fault is not None:
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.status is not None:
                return self.fault_reply(fault)
        with self._lock:
            return self.handle(request)

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
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
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)


def path_key(segment: str) -> str:
    return unquote(segment)
