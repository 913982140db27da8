"""Run every benchmark and the fault table; write one markdown report.

    .venv/bin/python -m bench.report                   # all, full length → bench/REPORT.md
    .venv/bin/python -m bench.report --quick           # shorter runs, same shape
    .venv/bin/python -m bench.report --only e2e-postgres,faults --out /tmp/report.md

Each benchmark runs as its own subprocess, one after the other (they pin CPUs and start
their own brokers: running two at once would measure the machine, not wa-bridge), with
the environment as given (``WA_BRIDGE_TEST_DATABASE_URL`` picks the PostgreSQL they use).
The report holds, per benchmark, the command, its exit code and time, and the end of
what it printed: the figures are each benchmark's own (see ``bench/README.md`` for what
they mean). The fault table is ``pytest tests/faults``'s own table. A benchmark whose
module is absent from this checkout (``bench.connectors`` until it lands) is listed as
not run; a failed one keeps its output in the report, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench._machine import describe as describe_machine

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "REPORT.md"
TAIL_LINES = 40
PY = sys.executable


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    module: str  # must be importable, else "not run"
    args: tuple[str, ...]
    quick_args: tuple[str, ...]
    timeout_s: float


BENCHES = (
    Bench(
        "receiver",
        "Receiver vs bare ASGI and pywa (req/s, p50/p99, ratios)",
        "bench.receiver",
        ("--rounds", "3", "--no-save"),
        ("--rounds", "1", "--duration", "5", "--warmup", "1", "--no-save"),
        1800,
    ),
    Bench(
        "worker",
        "Worker events/s (one worker, SQL CRM on PostgreSQL)",
        "bench.worker",
        ("--log-level", "WARNING"),
        ("--events", "20000", "--contacts", "1000", "--log-level", "WARNING", "--skip-steps"),
        1800,
    ),
    Bench(
        "e2e-sqlite",
        "End to end, `wa-bridge dev` on SQLite: send → CRM row p50/p99",
        "bench.e2e",
        (),
        ("--duration", "10", "--warmup", "2"),
        900,
    ),
    Bench(
        "e2e-postgres",
        "End to end on PostgreSQL, 12 partitions: send → CRM row p50/p99",
        "bench.e2e",
        ("--db", "postgres"),
        ("--db", "postgres", "--duration", "10", "--warmup", "2"),
        900,
    ),
    Bench(
        "connectors",
        "CRM requests per 1,000 events, per connector",
        "bench.connectors",
        (),
        (),
        1800,
    ),
)
FAULTS_CMD = (PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults")


@dataclass(frozen=True)
class Outcome:
    name: str
    title: str
    command: str
    exit_code: int | None  # None: not run
    duration_s: float
    output: str
    note: str = ""

    @property
    def status(self) -> str:
        if self.exit_code is None:
            return f"not run: {self.note}"
        word = "ok" if self.exit_code == 0 else f"exit {self.exit_code}"
        return f"{word}, {self.duration_s:.0f} s"


def run(name: str, title: str, argv: list[str], timeout_s: float) -> Outcome:
    command = " ".join(["python", *argv[1:]])
    print(f"[report] {name}: {command}", flush=True)
    start = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            cwd=ROOT,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            env=os.environ.copy(),
        )
        code, out = done.returncode, done.stdout
        if code != 0:
            out += "\n--- stderr (end) ---\n" + "\n".join(done.stderr.splitlines()[-TAIL_LINES:])
    except subprocess.TimeoutExpired as exc:
        code = -1
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        out += f"\n(timed out after {timeout_s:.0f} s)"
    return Outcome(name, title, command, code, time.monotonic() - start, out)


def run_bench(bench: Bench, *, quick: bool) -> Outcome:
    if importlib.util.find_spec(bench.module) is None:
        return Outcome(
            bench.name, bench.title, f"python -m {bench.module}", None, 0.0, "", "absent"
        )
    args = bench.quick_args if quick else bench.args
    return run(bench.name, bench.title, [PY, "-m", bench.module, *args], bench.timeout_s)


def fault_table(output: str) -> str:
    """The markdown table pytest's terminal summary printed under "fault table"."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if "fault table" in line and line.startswith("="):
            table = []
            for row in lines[i + 1 :]:
                if not row.startswith("|"):
                    break
                table.append(row)
            return "\n".join(table)
    return ""


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def render(outcomes: list[Outcome], *, quick: bool, started: str) -> str:
    host = platform.node() or "this machine"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    parts = [
        "# wa-bridge: benchmark and fault report",
        "",
        f"Written by `python -m bench.report{' --quick' if quick else ''}` on {started} UTC "
        f"({host}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
        f"at the end {load}). Figures are from one run each; on a shared machine they move "
        "by ±10 % or more between runs (see `bench/README.md` for how each is measured).",
        "",
        f"This {describe_machine()} (at the end; `bench/_machine.py`).",
        "",
        "| benchmark | command | result |",
        "| --- | --- | --- |",
    ]
    parts += [f"| {o.title} | `{o.command}` | {o.status} |" for o in outcomes]
    for o in outcomes:
        parts += ["", f"## {o.title}", ""]
        if o.exit_code is None:
            parts.append(f"Not run: `{o.command}` is {o.note} in this checkout.")
            continue
        if o.name == "faults":
            table = fault_table(o.output)
            parts += [
                "Every fault the worker survives, from `pytest tests/faults` (each row: "
                "events sent, applied, duplicated, lost; every row must read 0 and 0).",
                "",
                table or "(no table printed: see the output below)",
            ]
            if table and o.exit_code == 0:
                continue
        parts += ["```", tail(o.output), "```"]
    return "\n".join(parts) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = [b.name for b in BENCHES] + ["faults"]
    parser = argparse.ArgumentParser(description="Run every benchmark, write one report.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {names}")
    args = parser.parse_args(argv)
    args.names = [n for n in args.only.split(",") if n] or names
    unknown = set(args.names) - set(names)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    outcomes = [run_bench(b, quick=args.quick) for b in BENCHES if b.name in args.names]
    if "faults" in args.names:
        outcomes.append(
            run("faults", "Fault table", list(FAULTS_CMD), timeout_s=1800),
        )
    args.out.write_text(render(outcomes, quick=args.quick, started=started))
    print(f"[report] wrote {args.out}")
    return 0 if all(o.exit_code in (0, None) for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
