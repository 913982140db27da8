"""The receiver's HTTP protocol writes each answer at once, and stays HTTP/1.1 on the wire:
pipelined requests answered in order, a streamed answer sent as it is made, a closing
connection sending all it owes first (real sockets, real uvicorn)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from wa_bridge.bus.embedded import free_port
from wa_bridge.receiver.protocol import CoalescingTransport, OneWriteProtocol

STREAM_GO = threading.Event()


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body", False):
        pass
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first;", "more_body": True})
        # the rest only once the client has seen the first part
        await asyncio.to_thread(STREAM_GO.wait, 10)
        await send({"type": "http.response.body", "body": b"second"})
        return
    body = scope["path"].encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def _serving() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        _app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http=OneWriteProtocol,
        log_config=None,
        log_level="error",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # polled: uvicorn has no started event to wait on
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def _read_until(conn: socket.socket, wanted: bytes, got: bytes = b"") -> bytes:
    conn.settimeout(5)
    while wanted not in got:
        chunk = conn.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with _serving() as serving:
        yield serving


def test_pipelined_requests_are_answered_in_order(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"".join(f"GET /r{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(3)))
        got = _read_until(conn, b"\r\n\r\n/r2")
    answers = got.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert [a.rsplit(b"\r\n\r\n", 1)[1] for a in answers] == [b"/r0", b"/r1", b"/r2"]
    assert all(b"content-length: 3\r\n" in a for a in answers)


def test_a_streamed_answer_goes_out_as_it_is_made(port: int) -> None:
    STREAM_GO.clear()
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        # the app holds the rest until the first part has arrived: coalescing must not
        # wait for the end of the answer
        head = _read_until(conn, b"first;")
        assert b"first;" in head
        STREAM_GO.set()
        got = _read_until(conn, b"0\r\n\r\n", head)
    assert b"transfer-encoding: chunked" in got
    assert got.endswith(b"6\r\nsecond\r\n0\r\n\r\n")


def test_a_closing_connection_sends_its_answer_first(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = _read_until(conn, b"\x00never")  # read to EOF
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")
    assert got.endswith(b"\r\n\r\n/bye")


async def test_writes_of_one_step_are_one_write_and_close_flushes() -> None:
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    written: list[bytes] = []
    real_write = transport.write

    def spy(data: bytes | bytearray | memoryview) -> None:
        written.append(bytes(data))
        real_write(data)

    transport.write = spy  # type: ignore[method-assign]
    coalescing = CoalescingTransport(transport, loop)  # type: ignore[arg-type]
    coalescing.write(b"HTTP/1.1 200 OK\r\n\r\n")
    coalescing.write(b"ok")
    assert written == []  # not before the step ends
    await asyncio.sleep(0)
    assert written == [b"HTTP/1.1 200 OK\r\n\r\nok"]
    coalescing.write(b"later")
    await asyncio.sleep(0)
    coalescing.write(b"last")
    coalescing.close()
    assert written[1:] == [b"later", b"last"]
    await asyncio.sleep(0.05)
    peer.settimeout(5)
    received = b""
    while chunk := peer.recv(65536):
        received += chunk
    peer.close()
    assert received == b"HTTP/1.1 200 OK\r\n\r\noklaterlast"
