"""Profile a running server with py-spy (raw collapsed stacks) and list the hot spots."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HotSpots", "print_hot_spots", "pyspy_path", "start_record", "summarize"]

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
    """Sample counts: by leaf frame (self), by our own frames (inclusive), by package."""

    samples: int
    self_top: list[tuple[str, int]]
    ours_inclusive_top: list[tuple[str, int]]
    by_package: list[tuple[str, int]]


def _frame_key(frame: str) -> str:
    # "WebhookEndpoint._post (wa_bridge/receiver/webhook.py:42)" -> drop the line number
    return _LINE_NO.sub(")", frame.strip())


def _package(frame: str) -> str:
    # "... (aiokafka/producer/producer.py)" -> "aiokafka"; "<frozen runpy>" stays as is
    inside = frame[frame.rfind("(") + 1 : -1] if frame.endswith(")") else frame
    return inside.split("/", 1)[0] if "/" in inside else inside


def summarize(raw_path: Path, *, own_prefix: str = "wa_bridge/", top: int = 15) -> HotSpots:
    """Aggregate py-spy's raw (collapsed) stacks: ``frame;frame;... count`` per line."""
    self_counts: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    samples = 0
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack.strip() or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_key(f) for f in stack.split(";")]
        samples += count
        self_counts[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for frame in set(frames):
            if own_prefix in frame:
                ours[frame] += count
    return HotSpots(
        samples,
        self_counts.most_common(top),
        ours.most_common(top),
        packages.most_common(top),
    )


def print_hot_spots(spots: HotSpots) -> None:
    """The three tables both benches print: leaf frames, packages, our functions."""
    for title, rows in (
        ("self time by function (leaf frame)", spots.self_top),
        ("self time by package", spots.by_package),
        ("inclusive time of wa_bridge functions", spots.ours_inclusive_top),
    ):
        print(f"  {title}:")
        for frame, n in rows:
            print(f"    {100 * n / max(1, spots.samples):5.1f}%  {frame}")
