"""A real ``wa-bridge worker`` subprocess, for kill and drain tests."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from wa_bridge.settings import Settings

from .sqlcrm import WA_BRIDGE, worker_env

POLL_S = 0.02


@contextmanager
def worker_process(
    settings: Settings, log_path: Path, args: Sequence[str] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """``wa-bridge worker`` with ``settings`` in its environment; killed if still running."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [WA_BRIDGE, "worker", *args], env=worker_env(settings), stdout=log, stderr=log
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    *,
    timeout_s: float = 30.0,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll ``condition`` until true; fail early if ``proc`` exited (with its log)."""
    try:
        async with asyncio.timeout(timeout_s):
            while not await condition():
                if proc is not None and proc.poll() is not None:
                    raise AssertionError(
                        f"worker exited with {proc.returncode}:\n{_tail(log_path)}"
                    )
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise AssertionError(f"condition not met in {timeout_s}s:\n{_tail(log_path)}") from None


def _tail(log_path: Path | None) -> str:
    if log_path is None or not log_path.exists():
        return ""
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])


async def wait_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    return await asyncio.to_thread(proc.wait, timeout_s)
