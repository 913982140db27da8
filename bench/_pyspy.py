"""Profile a running server with py-spy (raw collapsed stacks) and list the hot spots."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HotSpots", "pyspy_path", "start_record", "summarize"]

_LINE_NO = re.compile(r":\d+\)$")


def pyspy_path() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_record(
    pid: int, *, out: Path, duration_s: float, rate_hz: int = 200
) -> subprocess.Popen[bytes]:
    """Start ``py-spy record`` on ``pid`` (raw format); the caller waits for it."""
    exe = pyspy_path()
    if exe is None:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(duration_s)))]
    cmd += ["--rate", str(rate_hz), "--format", "raw", "--nonblocking", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass(frozen=True)
class HotSpots:
    samples: int
    self_top: list[tuple[str, int]]
    inclusive_top: list[tuple[str, int]]


def _frame_key(frame: str) -> str:
    # "create_app.<locals>.handle (wa_bridge/receiver/app.py:42)" -> drop the line number
    frame = _LINE_NO.sub(")", frame.strip())
    return frame.replace(str(Path(sys.prefix)), "<venv>")


def summarize(raw_path: Path, *, top: int = 15) -> HotSpots:
    """Self time (leaf frames) and inclusive time per function, by sample count."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    samples = 0
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_key(f) for f in stack.split(";")]
        samples += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            incl_counts[frame] += count
    return HotSpots(samples, self_counts.most_common(top), incl_counts.most_common(top))
