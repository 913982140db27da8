"""A Kafka broker reachable only over TLS: Tansu behind a TLS-terminating proxy.

Tansu 0.6's TLS options do not start a TLS listener (``--cert`` and ``--key`` refuse each
other, and either alone serves plain TCP), so the test broker is a plain Tansu that
advertises the address of a small asyncio proxy; the proxy speaks TLS with a throwaway CA
(trustme), can demand a client certificate, and pipes the bytes to Tansu. Every Kafka
connection of the client under test (bootstrap and the advertised broker alike) goes
through the proxy, so the client's TLS settings are exercised for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import trustme

from wa_bridge.bus.embedded import free_port, tansu_binary


@dataclass(frozen=True)
class TlsFiles:
    """PEM files a client needs: the CA it trusts and its own certificate and key."""

    ca: Path
    client_cert: Path
    client_key: Path


def write_client_files(ca: trustme.CA, directory: Path, name: str = "client") -> TlsFiles:
    """The CA certificate and a client certificate issued by ``ca``, as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    leaf = ca.issue_cert(f"{name}.wa-bridge.test")
    files = TlsFiles(directory / "ca.pem", directory / f"{name}.pem", directory / f"{name}.key")
    ca.cert_pem.write_to_path(str(files.ca))
    leaf.cert_chain_pems[0].write_to_path(str(files.client_cert))
    leaf.private_key_pem.write_to_path(str(files.client_key))
    return files


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, ssl.SSLError, RuntimeError):
            writer.close()


@contextlib.asynccontextmanager
async def tls_broker(ca: trustme.CA, *, require_client_cert: bool = True) -> AsyncIterator[str]:
    """Start Tansu and the TLS proxy; yield the bootstrap address (``127.0.0.1:port``)."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    if require_client_cert:
        server_context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(server_context)
    inner_port, outer_port = free_port(), free_port()
    pipes: set[asyncio.Task[None]] = set()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection("127.0.0.1", inner_port)
        except OSError:
            client_w.close()
            return
        for task in (
            asyncio.create_task(_pipe(client_r, broker_w)),
            asyncio.create_task(_pipe(broker_r, client_w)),
        ):
            pipes.add(task)
            task.add_done_callback(pipes.discard)

    proc = await asyncio.create_subprocess_exec(
        tansu_binary(),
        "broker",
        "--listener-url",
        f"tcp://127.0.0.1:{inner_port}",
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{outer_port}",
        "--storage-engine",
        "memory://tansu/",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = await asyncio.start_server(handle, "127.0.0.1", outer_port, ssl=server_context)
    try:
        await _wait_for_port(inner_port)
        yield f"127.0.0.1:{outer_port}"
    finally:
        server.close()
        for task in list(pipes):
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await server.wait_closed()
        proc.kill()
        await proc.wait()


async def _wait_for_port(port: int) -> None:
    async with asyncio.timeout(15):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
