"""Receiver benchmark: bare ASGI (a) vs wa-bridge's receiver (b) vs pywa's FastAPI route (c).

One command, one run on this machine::

    .venv/bin/python -m bench.receiver            # 10 s per target, wrk -t1 -c64
    .venv/bin/python -m bench.receiver --duration 5 --targets a,c --profile
    .venv/bin/python -m bench.receiver --targets a,b --syscalls   # kernel entries a request

Each server runs alone in its own process (one uvicorn worker, uvloop + httptools, access
log off) pinned to ``--server-cpus``; wrk (and the Tansu broker for (b)) run pinned to
``--client-cpus``. All targets get the same signed ~700-byte text webhook. Prints req/s,
p50/p99 latency and non-2xx per target, then the ratios b/a and b/c against their targets.
Not a test: it prints figures. Needs wrk (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from bench._cpu import CpuSnapshot, Shares
from bench._machine import describe as describe_machine
from bench._server import ServerProc
from bench._syscalls import count_kernel_entries
from bench._wrk import WrkResult, require_wrk, run_wrk, write_lua

HERE = Path(__file__).resolve().parent
BODY_PATH = HERE / "data" / "text_webhook.json"
RESULTS = HERE / "results"
HOST = "127.0.0.1"
TARGET_B_OVER_A = 0.50
TARGET_B_OVER_C = 7.0
OTHERS_MAX = 0.10  # flag a run when others took more than this share of a CPU set


@dataclass
class Outcome:
    key: str
    name: str
    result: WrkResult | None = None
    skipped: str | None = None
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    cpu: Shares | None = None


@dataclass(frozen=True)
class Run:
    args: argparse.Namespace
    body: bytes
    secret: str
    verify_token: str
    workdir: Path

    def signature(self, body: bytes | None = None) -> str:
        digest = hmac.new(self.secret.encode(), body or self.body, hashlib.sha256)
        return "sha256=" + digest.hexdigest()

    def post(self, url: str, *, signature: str | None = None) -> httpx.Response:
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature or self.signature(),
        }
        return httpx.post(url, content=self.body, headers=headers, timeout=10.0)

    def warm_up(self, server: ServerProc, path: str, out: Outcome) -> None:
        """Unmeasured load first (JIT-free Python still warms caches, pools, batches)."""
        if self.args.warmup > 0:
            self._wrk(server, path, out, self.args.warmup)

    def measure(self, server: ServerProc, path: str, out: Outcome) -> WrkResult:
        """The measured wrk run; flags non-2xx answers and socket errors on ``out``."""
        everything = set(os.sched_getaffinity(0))
        server_cpus = self.args.server_cpus or everything
        client_cpus = self.args.client_cpus or everything
        before = CpuSnapshot.take(server_cpus, client_cpus, server.pid)
        if self.args.syscalls:
            with count_kernel_entries(server.pid) as kernel:
                result = self._wrk(server, path, out, self.args.duration)
            out.checks.append(kernel.describe(result.requests))
        else:
            result = self._wrk(server, path, out, self.args.duration)
        after = CpuSnapshot.take(server_cpus, client_cpus, server.pid)
        out.cpu = before.shares_until(after, len(server_cpus), len(client_cpus))
        out.checks.append(out.cpu.describe())
        worst = max(out.cpu.server_others, out.cpu.client_others)
        if server_cpus & client_cpus:
            out.checks.append("server and client share CPUs: 'others' figures are not exact")
        elif worst > OTHERS_MAX:
            out.problems.append(f"other processes took {worst:.0%} of a CPU set: figure too low")
        if result.non2xx:
            out.problems.append(f"{result.non2xx} non-2xx responses")
        if result.socket_errors:
            out.problems.append(f"{result.socket_errors} socket errors/timeouts")
        return result

    def _wrk(self, server: ServerProc, path: str, out: Outcome, duration_s: float) -> WrkResult:
        lua = write_lua(
            self.workdir / f"{out.key}.lua",
            body_path=BODY_PATH,
            path=path,
            signature=self.signature(),
        )
        return run_wrk(
            url=server.base_url,
            lua=lua,
            connections=self.args.connections,
            threads=self.args.threads,
            duration_s=duration_s,
            cpus=self.args.client_cpus,
        )


def _cpus(text: str) -> set[int] | None:
    return {int(c) for c in text.split(",") if c.strip()} or None


def _env_pairs(text: str) -> dict[str, str]:
    pairs = dict(item.split("=", 1) for item in text.split(",") if item.strip())
    return {k.strip(): v.strip() for k, v in pairs.items()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.receiver", description=__doc__.split("\n")[0])
    p.add_argument("--targets", default="a,b,c", help="comma-separated subset of a,b,c")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load per target")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first")
    p.add_argument("--rounds", type=int, default=1, help="repeat a,b,c; report medians")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--server-cpus", type=_cpus, default="0", help="CPUs for the server")
    p.add_argument("--client-cpus", type=_cpus, default="1", help="CPUs for wrk and Tansu")
    p.add_argument(
        "--receiver-path", default=None, help="wa-bridge webhook path (default: WEBHOOK_PATH)"
    )
    p.add_argument(
        "--receiver-cmd",
        default=None,
        help="command for (b) instead of `wa-bridge receiver` ({host}, {port} filled in)",
    )
    p.add_argument(
        "--variant-env",
        type=_env_pairs,
        default=None,
        help="K=V,K=V: also run (d), the receiver with this environment added, right after "
        "(b) in each round (A/B in one run: WA_BRIDGE_KAFKA_CLIENT=aiokafka, or "
        "PYTHONPATH=<an export of another commit>/src)",
    )
    p.add_argument("--profile", action="store_true", help="profile (b) with py-spy afterwards")
    p.add_argument(
        "--syscalls",
        action="store_true",
        help="count each server's system calls and context switches a request (perf stat)",
    )
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    return p.parse_args(argv)


def _print_table(outcomes: list[Outcome]) -> None:
    print()
    head = ("req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "non-2xx", "CPU µs/r")
    print(f"{'target':<46}" + "".join(f"{h:>9}" for h in head))
    for o in outcomes:
        label = f"({o.key}) {o.name}"
        if o.result is None:
            print(f"{label:<46} not measured: {o.skipped}")
            continue
        r = o.result
        cells = (f"{r.rps:.0f}", *(f"{v:.2f}" for v in (r.p50_ms, r.p90_ms, r.p99_ms)))
        cells += (f"{r.max_ms:.0f}", str(r.non2xx), _cpu_per_request(o))
        print(f"{label:<46}" + "".join(f"{c:>9}" for c in cells))
    for o in outcomes:
        for check in o.checks:
            print(f"  ({o.key}) ok: {check}")
        for problem in o.problems:
            print(f"  ({o.key}) FLAGGED: {problem}")


def _cpu_per_request(o: Outcome) -> str:
    """The server's own CPU time per request (steadier than req/s on a shared machine)."""
    if o.cpu is None or o.result is None or not o.result.requests:
        return "-"
    return f"{o.cpu.server_cpu_s * 1e6 / o.result.requests:.0f}"


def _cpu_ratio(num: Outcome, den: Outcome) -> None:
    """den's CPU per request over num's: what b/a would be if both had a core each."""
    if num.cpu is None or den.cpu is None or num.result is None or den.result is None:
        return
    if not num.result.requests or not den.result.requests or not num.cpu.server_cpu_s:
        return
    per_num = num.cpu.server_cpu_s / num.result.requests
    per_den = den.cpu.server_cpu_s / den.result.requests
    print(f"{num.key}/{den.key} by server CPU per request: {per_den / per_num:.2f}×")


def _ratio(num: Outcome, den: Outcome, target: float) -> dict[str, object]:
    label = f"{num.key}/{den.key}"
    if num.result is None or den.result is None or not den.result.rps:
        print(f"{label}: n/a (target ≥ {target:g})")
        return {"ratio": None, "target": target, "met": None}
    value = num.result.rps / den.result.rps
    trusted = not num.problems and not den.problems
    verdict = "MET" if value >= target else "NOT MET"
    note = "" if trusted else "  (a run was flagged: do not trust this figure)"
    print(f"{label}: {value:.2f}× (target ≥ {target:g}×) {verdict}{note}")
    return {"ratio": round(value, 3), "target": target, "met": value >= target, "trusted": trusted}


def _median_round(outs: list[Outcome]) -> Outcome:
    """The round with the median req/s; problems of every round are kept."""
    measured = sorted((o for o in outs if o.result), key=lambda o: o.result.rps if o.result else 0)
    chosen = measured[len(measured) // 2] if measured else outs[-1]
    if len(outs) > 1:
        chosen.problems = [f"round {i}: {p}" for i, o in enumerate(outs, 1) for p in o.problems]
        all_rps = ", ".join(f"{o.result.rps:.0f}" for o in outs if o.result)
        if all_rps:
            chosen.checks.append(f"req/s per round: {all_rps} (median shown)")
    return chosen


def main(argv: list[str] | None = None) -> int:
    from bench import _targets  # imported late: keeps --help fast

    args = parse_args(argv)
    require_wrk()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = RESULTS / f"receiver-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    run = Run(
        args=args,
        body=BODY_PATH.read_bytes(),
        secret=secrets.token_hex(16),
        verify_token=secrets.token_hex(8),
        workdir=workdir,
    )
    wanted = {t.strip() for t in args.targets.split(",")}
    print(
        f"body {len(run.body)} B; wrk -t{args.threads} -c{args.connections} "
        f"{args.duration:g} s (+{args.warmup:g} s warm-up); server CPUs {args.server_cpus}, "
        f"client CPUs {args.client_cpus}; logs in {workdir}"
    )
    print(describe_machine())
    runners = {
        "a": _targets.bare,
        "b": _targets.wa_bridge,
        "d": _targets.wa_bridge_variant,
        "c": _targets.pywa,
    }
    keys = ("a", "b", "d", "c") if args.variant_env else ("a", "b", "c")
    if args.variant_env:
        wanted.add("d")
        print(f"(d) is (b) with {args.variant_env}")
    rounds: dict[str, list[Outcome]] = {k: [] for k in keys}
    max_load = 0.0
    want_profile = args.profile
    for n in range(1, args.rounds + 1):
        args.profile = want_profile and n == args.rounds  # profile (b) once, in the last round
        for key in keys:
            out = Outcome(key, _targets.NAMES[key])
            rounds[key].append(out)
            if key not in wanted:
                out.skipped = "not selected (--targets)"
                continue
            started = time.monotonic()
            load_1m = os.getloadavg()[0]
            max_load = max(max_load, load_1m)
            print(f"[{key}] round {n}: {out.name} (load avg {load_1m:.2f}) …", flush=True)
            try:
                runners[key](run, out)
            except Exception as exc:  # report and go on with the other targets
                out.result = None
                out.skipped = out.skipped or f"failed: {exc}"
            rps = f"{out.result.rps:.0f} req/s" if out.result else out.skipped
            print(f"[{key}] {rps} ({time.monotonic() - started:.0f} s)", flush=True)
    by_key = {key: _median_round(outs) for key, outs in rounds.items()}

    outcomes = [by_key[k] for k in keys]
    _print_table(outcomes)
    print()
    ratios = {
        "b/a": _ratio(by_key["b"], by_key["a"], TARGET_B_OVER_A),
        "b/c": _ratio(by_key["b"], by_key["c"], TARGET_B_OVER_C),
    }
    if "d" in by_key:
        ratios["d/a"] = _ratio(by_key["d"], by_key["a"], TARGET_B_OVER_A)
        ratios["d/c"] = _ratio(by_key["d"], by_key["c"], TARGET_B_OVER_C)
    for num, den in (("b", "a"), ("b", "c"), ("d", "a"), ("d", "c")):
        if num in by_key and den in by_key:
            _cpu_ratio(by_key[num], by_key[den])
    if any(o.problems for o in outcomes):
        print(
            "NOTE: flagged rows are not clean figures (see FLAGGED above); when other "
            "processes took CPU, rerun on a quiet machine or with --rounds 3."
        )
    if not args.no_save:
        report = {
            "when": stamp,
            "argv": sys.argv[1:],
            "body_bytes": len(run.body),
            "targets": {
                o.key: {
                    "name": o.name,
                    "result": asdict(o.result) | {"rps": o.result.rps} if o.result else None,
                    "skipped": o.skipped,
                    "checks": o.checks,
                    "problems": o.problems,
                    "cpu_shares": asdict(o.cpu) if o.cpu else None,
                }
                for o in outcomes
            },
            "ratios": ratios,
            "max_load_avg_1m": max_load,
        }
        path = RESULTS / f"receiver-{stamp}.json"
        path.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nsaved {path.relative_to(HERE.parent)}")
    flagged = any(o.problems for o in outcomes)
    return 1 if flagged else 0


if __name__ == "__main__":
    raise SystemExit(main())
