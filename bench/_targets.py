"""The three targets of the receiver benchmark: start, check once, load, check after."""

from __future__ import annotations

import contextlib
import importlib.util
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from bench._server import ServerProc, pinned, run_server, uvicorn_cmd

if TYPE_CHECKING:
    from bench.receiver import Outcome, Run

__all__ = ["NAMES", "bare", "pywa", "wa_bridge", "wa_bridge_variant"]

HOST = "127.0.0.1"
PYWA_PATH = "/webhook"
NAMES = {
    "a": "bare ASGI, 200",
    "b": "wa-bridge receiver (verify+normalize+Kafka)",
    "c": "pywa FastAPI route (verify+parse)",
    "d": "(b) with --variant-env",
}


def _free_port() -> int:
    from wa_bridge.bus.embedded import free_port

    return free_port(HOST)


def _expect(out: Outcome, what: str, status: int, expected: range) -> None:
    if status not in expected:
        raise RuntimeError(
            f"{what}: got HTTP {status}, expected {expected.start}–{expected.stop - 1}"
        )
    out.checks.append(f"{what} → {status}")


def _serve(
    run: Run, out: Outcome, cmd: list[str], port: int, env: dict[str, str]
) -> contextlib.AbstractContextManager[ServerProc]:
    log = run.workdir / f"{out.key}-server.log"
    return run_server(cmd, host=HOST, port=port, env=env, cpus=run.args.server_cpus, log_path=log)


def bare(run: Run, out: Outcome) -> None:
    port = _free_port()
    cmd = uvicorn_cmd("bench.apps.bare:app", host=HOST, port=port)
    log = run.workdir / "a-server.log"
    with run_server(
        cmd, host=HOST, port=port, env={}, cpus=run.args.server_cpus, log_path=log
    ) as s:
        _expect(out, "signed POST", run.post(s.base_url + "/").status_code, range(200, 201))
        run.warm_up(s, "/", out)
        out.result = run.measure(s, "/", out)


def pywa(run: Run, out: Outcome) -> None:
    port = _free_port()
    cmd = uvicorn_cmd("bench.apps.pywa_app:app", host=HOST, port=port)
    env = {
        "BENCH_APP_SECRET": run.secret,
        "BENCH_VERIFY_TOKEN": run.verify_token,
        "BENCH_WEBHOOK_PATH": PYWA_PATH,
    }
    log = run.workdir / "c-server.log"
    with run_server(
        cmd, host=HOST, port=port, env=env, cpus=run.args.server_cpus, log_path=log
    ) as s:
        url = s.base_url + PYWA_PATH
        _expect(out, "signed POST", run.post(url).status_code, range(200, 201))
        bad = run.post(url, signature="sha256=" + "0" * 64).status_code
        _expect(out, "wrongly signed POST", bad, range(400, 500))
        _pywa_settled(s.base_url, at_least=1)
        out.checks.append("handler ran for the signed POST (update parsed)")
        run.warm_up(s, PYWA_PATH, out)
        before = _pywa_settled(s.base_url, at_least=1)
        result = out.result = run.measure(s, PYWA_PATH, out)
        parsed = _pywa_settled(s.base_url, at_least=before + result.ok) - before
        if parsed < result.ok:
            out.problems.append(f"only {parsed} updates parsed for {result.ok} 200s")
        else:
            out.checks.append(f"{parsed} updates parsed ≥ {result.ok} 200s in the measured run")


def _pywa_settled(base_url: str, *, at_least: int, wait_s: float = 10.0) -> int:
    """pywa's handler count once its background parses have caught up (or the wait ends).

    pywa answers first and parses in a background task, so the count lags the 200s.
    """
    import httpx

    deadline = time.monotonic() + wait_s
    last = -1
    while True:
        count = int(httpx.get(base_url + "/bench/handled", timeout=5.0).text)
        if (count >= at_least and count == last) or time.monotonic() > deadline:
            return count
        last = count
        time.sleep(0.2)


def receiver_missing() -> str | None:
    """Why (b) cannot run yet, or None when ``wa-bridge receiver`` exists."""
    if importlib.util.find_spec("wa_bridge.cli.receiver") is None:
        return (
            "wa-bridge receiver is not built yet (no wa_bridge.cli.receiver module; "
            "src/wa_bridge/receiver/ is being written) — no figure, not faked"
        )
    if not Path(sys.executable).with_name("wa-bridge").exists():
        return "the wa-bridge console script is not installed in this venv (pip install -e .)"
    return None


def _receiver_cmd(template: str | None, port: int) -> list[str]:
    if template:
        return shlex.split(template.format(host=HOST, port=port))
    exe = str(Path(sys.executable).with_name("wa-bridge"))
    return [exe, "receiver", "--host", HOST, "--port", str(port)]


def _receiver_path() -> str:
    try:
        from wa_bridge.receiver.webhook import WEBHOOK_PATH
    except ImportError:
        return "/webhooks/whatsapp"
    return str(WEBHOOK_PATH)


def wa_bridge_variant(run: Run, out: Outcome) -> None:
    """(b) again, with ``--variant-env`` added to its environment (A/B in one run)."""
    wa_bridge(run, out, extra_env=run.args.variant_env)


def wa_bridge(run: Run, out: Outcome, extra_env: dict[str, str] | None = None) -> None:
    from bench import _kafka
    from wa_bridge.bus.embedded import EmbeddedBroker

    reason = None if run.args.receiver_cmd else receiver_missing()
    if reason is not None:
        out.skipped = reason
        return
    args = run.args
    topic = f"bench.wa.events.{uuid.uuid4().hex[:8]}"
    broker = EmbeddedBroker(host=HOST, log_path=run.workdir / "tansu.log")
    with pinned(args.client_cpus):  # Tansu shares the load generator's CPUs
        broker.start()
    try:
        _kafka.create_topic(broker.bootstrap, topic, partitions=12)
        port = _free_port()
        cmd = _receiver_cmd(run.args.receiver_cmd, port)
        env = {
            "WA_BRIDGE_APP_SECRETS": run.secret,
            "WA_BRIDGE_VERIFY_TOKEN": run.verify_token,
            "WA_BRIDGE_KAFKA_BOOTSTRAP": broker.bootstrap,
            "WA_BRIDGE_KAFKA_TOPIC": topic,
            "WA_BRIDGE_KAFKA_ENABLE_IDEMPOTENCE": "false",
            **(extra_env or {}),
        }
        log = run.workdir / "b-server.log"
        with run_server(
            cmd, host=HOST, port=port, env=env, cpus=args.server_cpus, log_path=log
        ) as s:
            _run_receiver(run, out, s, broker.bootstrap, topic)
    finally:
        broker.stop()


def _run_receiver(run: Run, out: Outcome, s: ServerProc, bootstrap: str, topic: str) -> None:
    from bench import _kafka

    path = run.args.receiver_path or _receiver_path()
    url = s.base_url + path
    _expect(out, "signed POST", _post_when_ready(run, url), range(200, 201))
    bad = run.post(url, signature="sha256=" + "0" * 64).status_code
    _expect(out, "wrongly signed POST", bad, range(400, 500))
    if _kafka.total_end_offset(bootstrap, topic) < 1:
        raise RuntimeError("the signed POST got 200 but no record reached the topic")
    out.checks.append("signed POST published its record")
    run.warm_up(s, path, out)
    time.sleep(0.5)  # let the warm-up's last in-flight requests publish
    before = _kafka.count_records(bootstrap, topic)
    result = out.result = run.measure(s, path, out)
    records = _kafka.count_records(bootstrap, topic) - before
    if records < result.ok:
        out.problems.append(f"only {records} records on the topic for {result.ok} 200s")
    else:
        out.checks.append(f"{records} records on the topic ≥ {result.ok} 200s in the measured run")
    if run.args.profile and out.key == "b":
        _profile(run, out, s)


def _post_when_ready(run: Run, url: str, timeout_s: float = 20.0) -> int:
    """The receiver answers 503 until its producer has connected: wait for that."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = run.post(url).status_code
        if status != 503 or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def _profile(run: Run, out: Outcome, s: ServerProc) -> None:
    from bench import _pyspy
    from bench._wrk import run_wrk

    args = run.args
    raw = run.workdir / "b-profile.txt"
    spy = _pyspy.start_record(s.pid, out=raw, duration_s=args.duration)
    time.sleep(0.5)  # let py-spy attach
    run_wrk(
        url=s.base_url,
        lua=run.workdir / f"{out.key}.lua",
        connections=args.connections,
        threads=args.threads,
        duration_s=args.duration,
        cpus=args.client_cpus,
    )
    _, err = spy.communicate(timeout=args.duration + 30)
    if spy.returncode != 0 or not raw.exists():
        out.problems.append(f"py-spy failed: {err.decode(errors='replace')[-300:]}")
        return
    spots = _pyspy.summarize(raw)
    print(f"\n(b) py-spy profile under load: {spots.samples} samples, raw stacks in {raw}")
    _pyspy.print_hot_spots(spots)
