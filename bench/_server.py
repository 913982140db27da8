"""Start one server process (one uvicorn worker), pinned to given CPUs, and stop it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServerProc", "pinned", "run_server", "uvicorn_cmd"]

ROOT = Path(__file__).resolve().parent.parent


def uvicorn_cmd(app: str, *, host: str, port: int) -> list[str]:
    """One uvicorn worker, uvloop + httptools, access log off."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Pin this process (and so the children it starts meanwhile) to ``cpus``."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@dataclass
class ServerProc:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _wait_listening(server: ServerProc, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if server.proc.poll() is not None:
            tail = server.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{tail}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((server.host, server.port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not listen on {server.base_url} in {timeout_s} s")
        time.sleep(0.05)


@contextlib.contextmanager
def run_server(
    cmd: Sequence[str],
    *,
    host: str,
    port: int,
    env: Mapping[str, str],
    cpus: set[int] | None,
    log_path: Path,
    start_timeout_s: float = 20.0,
) -> Iterator[ServerProc]:
    """Start ``cmd`` (stdout/stderr to ``log_path``), wait for its port, stop it on exit."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    with open(log_path, "ab") as log, pinned(cpus):
        proc = subprocess.Popen(list(cmd), cwd=ROOT, env=full_env, stdout=log, stderr=log)
    server = ServerProc(proc=proc, host=host, port=port, log_path=log_path)
    try:
        _wait_listening(server, start_timeout_s)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
