"""A/B of the worker: ``bench/worker.py`` for two versions of the code, alternating.

    .venv/bin/python -m bench.worker_ab [--base REV] [--variant REV] [--pairs 4]
                                        [--b-args "ARGS"] [-- ARGS FOR bench/worker.py]

Whole runs of ``bench/worker.py`` move by ±10–15 % on these VMs, more than most single
changes to the worker are worth, so one run of each side says little. This runs both sides
``--pairs`` times in ABBA order (A B B A A B B A …: a drift in the machine's speed during
the series falls on both sides alike) and prints each run, the medians, B/A of the medians,
and in how many pairs B did better.

A side is a git revision (``--base``, default ``HEAD``) or the working tree (``--variant``,
the default; ``--variant REV`` for another revision). A revision is exported with ``git
archive`` into a temporary folder and run from there whole: its ``src`` first on
``PYTHONPATH`` (the editable install would otherwise win), its own ``bench/worker.py`` and
its own ``mappings/``. Both sides use this checkout's ``.venv``.

The figures compared are the plain run's: events/s (wall clock, the target of #14), the
same to the last event applied (without the end of burst mode), events per worker
CPU-second (the less noisy one: it leaves out the time the worker waited), and
PostgreSQL's CPU µs per event. ``bench/worker.py``'s default arguments here are
``--skip-steps --log-level WARNING``; pass others after ``--``. ``--b-args`` adds arguments
to side B only: ``--base HEAD --b-args "--in-flight 3"`` compares a setting on one version
of the code. A run whose checks fail stops the series (exit 1).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARGS = ("--skip-steps", "--log-level", "WARNING")
_PLAIN = re.compile(r"1\. plain: ([\d,]+) events/s .*?, ([\d,]+) events per worker CPU-second")
_PG = re.compile(r"PostgreSQL backends .*?: [\d.]+ CPU-s, ([\d.]+) µs per event")
_APPLIED = re.compile(r"to the last event applied: ([\d,]+) events/s")


@dataclass(frozen=True)
class Run:
    side: str
    events_per_s: float
    per_cpu_s: float
    pg_us: float | None
    applied_per_s: float | None = None  # to the last event applied (newer bench/worker.py)


@dataclass(frozen=True)
class Side:
    label: str
    root: Path  # the tree whose bench/worker.py, src and mappings run


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def parse_output(side: str, out: str) -> Run:
    """The plain run's figures from ``bench/worker.py``'s output (ValueError if absent)."""
    plain = _PLAIN.search(out)
    if plain is None:
        raise ValueError("no '1. plain:' line in the output")
    pg = _PG.search(out)
    applied = _APPLIED.search(out)
    return Run(
        side,
        _number(plain.group(1)),
        _number(plain.group(2)),
        float(pg.group(1)) if pg else None,
        _number(applied.group(1)) if applied else None,
    )


def abba(pairs: int) -> list[str]:
    """A B B A A B B A …: ``pairs`` runs of each side."""
    order: list[str] = []
    for i in range(pairs):
        order += ["A", "B"] if i % 2 == 0 else ["B", "A"]
    return order


def export(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (``git archive``) under ``into``; returns its root."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev],
        check=True,
        capture_output=True,
    ).stdout
    target = into / re.sub(r"[^\w.-]", "_", rev)
    target.mkdir(parents=True)
    tar_path = into / f"{target.name}.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(target, filter="data")
    return target


def run_side(side: Side, worker_args: list[str]) -> str:
    env_path = str(side.root / "src")
    proc = subprocess.run(
        [sys.executable, str(side.root / "bench" / "worker.py"), *worker_args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": env_path},
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"{side.label}: bench/worker.py exited {proc.returncode}")
    return proc.stdout


def report(runs: list[Run], sides: dict[str, Side]) -> None:
    print(
        f"{'#':>3} {'side':<5} {'events/s':>10} {'to applied':>10} {'per CPU-s':>10} "
        f"{'PG µs/event':>12}"
    )
    for i, run in enumerate(runs, 1):
        pg = f"{run.pg_us:.1f}" if run.pg_us is not None else "-"
        applied = f"{run.applied_per_s:,.0f}" if run.applied_per_s is not None else "-"
        print(
            f"{i:>3} {run.side:<5} {run.events_per_s:>10,.0f} {applied:>10} "
            f"{run.per_cpu_s:>10,.0f} {pg:>12}"
        )
    a = [r for r in runs if r.side == "A"]
    b = [r for r in runs if r.side == "B"]
    figures: list[tuple[str, Callable[[Run], float]]] = [
        ("events/s", lambda r: r.events_per_s),
        ("events per worker CPU-second", lambda r: r.per_cpu_s),
    ]
    if all(r.applied_per_s is not None for r in runs):
        figures.insert(1, ("events/s to the last event applied", lambda r: r.applied_per_s or 0.0))
    for name, get in figures:
        ma, mb = statistics.median([get(r) for r in a]), statistics.median([get(r) for r in b])
        wins = sum(get(rb) > get(ra) for ra, rb in zip(a, b, strict=True))
        print(
            f"{name}: A {ma:,.0f}, B {mb:,.0f} (medians), B/A {mb / ma:.3f}; "
            f"B better in {wins} of {len(a)} pairs"
        )
    print(f"A = {sides['A'].label}, B = {sides['B'].label}")


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    if "--" in raw:
        cut = raw.index("--")
        ours, worker_args = raw[:cut], raw[cut + 1 :]
    else:
        ours, worker_args = raw, list(DEFAULT_ARGS)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="HEAD", help="side A: a git revision")
    parser.add_argument("--variant", default=None, help="side B: a revision (default: the tree)")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--b-args", default="", help="extra bench/worker.py arguments for B")
    args = parser.parse_args(ours)
    extra = {"A": [], "B": shlex.split(args.b_args)}
    with tempfile.TemporaryDirectory(prefix="worker-ab-") as tmp:
        sides = {"A": Side(args.base, export(args.base, Path(tmp)))}
        if args.variant is None:
            sides["B"] = Side("the working tree", ROOT)
        else:
            sides["B"] = Side(args.variant, export(args.variant, Path(tmp)))
        if args.b_args:
            sides["B"] = Side(f"{sides['B'].label} with {args.b_args}", sides["B"].root)
        runs: list[Run] = []
        for i, name in enumerate(abba(args.pairs), 1):
            out = run_side(sides[name], [*worker_args, *extra[name]])
            run = parse_output(name, out)
            runs.append(run)
            print(f"run {i}: {name} {run.events_per_s:,.0f} events/s", flush=True)
        report(runs, sides)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
