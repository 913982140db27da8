"""Drive wrk: a Lua script for the signed POST, and a JSON line out of wrk's ``done()``."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WrkResult", "require_wrk", "run_wrk", "write_lua"]

INSTALL_HINT = (
    "wrk is not installed. Install it (Debian/Ubuntu): apt-get update && apt-get install -y wrk"
)
_MARK = "BENCH_JSON "

# Lua string literals below come from our own values (paths, hex digests), never user input.
_LUA = """\
local f = assert(io.open("{body_path}", "rb"))
wrk.method = "POST"
wrk.path = "{path}"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Hub-Signature-256"] = "{signature}"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"non2xx":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run. ``non2xx`` is wrk's "Non-2xx or 3xx responses" count."""

    requests: int
    duration_s: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> int:
        return self.requests - self.non2xx

    @property
    def is_clean(self) -> bool:
        return self.non2xx == 0 and self.socket_errors == 0 and self.requests > 0


def require_wrk() -> str:
    """Path of wrk; raises SystemExit with the install command when it is missing."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(INSTALL_HINT)
    return path


def write_lua(dest: Path, *, body_path: Path, path: str, signature: str) -> Path:
    for value in (str(body_path), path, signature):
        if '"' in value or "\\" in value or "\n" in value:
            raise ValueError(f"unsafe value for the Lua script: {value!r}")
    dest.write_text(
        _LUA.format(body_path=body_path, path=path, signature=signature, mark=_MARK),
        encoding="utf-8",
    )
    return dest


def run_wrk(
    *,
    url: str,
    lua: Path,
    connections: int,
    threads: int,
    duration_s: float,
    cpus: set[int] | None,
) -> WrkResult:
    """Run wrk once (blocking) and parse the figures printed by the Lua ``done()``."""
    cmd = [
        require_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "5s",
        "-s",
        str(lua),
        url,
    ]
    if cpus and shutil.which("taskset"):
        cmd = ["taskset", "-c", ",".join(str(c) for c in sorted(cpus)), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            raw = json.loads(line[len(_MARK) :])
            break
    else:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {proc.stderr or proc.stdout}")
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        non2xx=raw["non2xx"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
    )
