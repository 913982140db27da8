"""``wa-bridge dev`` as a subprocess: serves a signed webhook, stops cleanly on SIGTERM,
keeps what the receiver acknowledged (drain on Ctrl-C, pause on a tripped DLQ guard)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

from wa_bridge.bus.embedded import free_port
from wa_bridge.cli.dev import load_dev_secrets, sample_webhook
from wa_bridge.receiver import WEBHOOK_PATH, sign

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WA_BRIDGE = Path(sys.executable).with_name("wa-bridge")
START_WAIT_S = 40.0
STOP_WAIT_S = 40.0


def wait_ready(proc: subprocess.Popen[bytes], base_url: str) -> None:
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:  # polled: a subprocess has no event to wait on
        assert proc.poll() is None, f"wa-bridge dev exited early with {proc.returncode}"
        try:
            if httpx.get(base_url + "/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("wa-bridge dev did not become ready")


@pytest.mark.parametrize("options", [["--no-worker"], []], ids=["receiver-only", "with-worker"])
def test_dev_serves_a_signed_webhook_and_stops_cleanly(tmp_path: Path, options: list[str]) -> None:
    if not WA_BRIDGE.exists():
        pytest.skip("the wa-bridge console script is not installed in this venv")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WA_BRIDGE_")}
    env["WA_BRIDGE_MAPPINGS_PATH"] = str(ROOT / "mappings" / "sql.yaml")
    data_dir = tmp_path / "data"
    command = [str(WA_BRIDGE), "dev", "--port", str(port), "--data-dir", str(data_dir), *options]
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=stderr
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base_url)
        stored = load_dev_secrets(data_dir)
        secret = stored["WA_BRIDGE_APP_SECRETS"].encode()
        body = sample_webhook()
        response = httpx.post(
            base_url + WEBHOOK_PATH,
            content=body,
            headers={"x-hub-signature-256": sign(body, secret)},
            timeout=10.0,
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"events": 1}
        handshake = httpx.get(
            base_url + WEBHOOK_PATH,
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": stored["WA_BRIDGE_VERIFY_TOKEN"],
                "hub.challenge": "8086",
            },
        )
        assert handshake.text == "8086"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            stdout, _ = proc.communicate(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    assert proc.returncode == 0, stderr_path.read_text()[-3000:]
    banner = stdout.decode()
    assert f"{base_url}{WEBHOOK_PATH}" in banner
    assert "openssl dgst -sha256 -hmac" in banner
    assert "wa-bridge dev: stopped" in banner


# --- keeping what was acknowledged -------------------------------------------------------


class Dev:
    """A running ``wa-bridge dev`` (worker included) with its data dir and signed sends."""

    def __init__(self, proc: subprocess.Popen[bytes], base_url: str, data_dir: Path) -> None:
        self.proc = proc
        self.base_url = base_url
        self.data_dir = data_dir
        self.secret = load_dev_secrets(data_dir)["WA_BRIDGE_APP_SECRETS"].encode()
        self.sent = 0

    def send(self, count: int) -> None:
        """``count`` signed webhooks, each a new message; every one must be acknowledged."""
        with httpx.Client(base_url=self.base_url, timeout=10.0) as client:
            for _ in range(count):
                body = sample_webhook().replace(b"wamid.DEV", b"wamid.K%05d" % self.sent)
                self.sent += 1
                answer = client.post(
                    WEBHOOK_PATH,
                    content=body,
                    headers={"x-hub-signature-256": sign(body, self.secret)},
                )
                assert answer.status_code == 200, answer.text

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def finish(self) -> tuple[int, str]:
        """Wait for the exit; the exit code and stdout."""
        stdout, _ = self.proc.communicate(timeout=STOP_WAIT_S * 2)
        return self.proc.returncode, stdout.decode()

    def count(self, table: str) -> int:
        with closing(sqlite3.connect(self.data_dir / "wa-bridge.db")) as db:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@contextmanager
def running_dev(tmp_path: Path, **env_extra: str) -> Iterator[Dev]:
    if not WA_BRIDGE.exists():
        pytest.skip("the wa-bridge console script is not installed in this venv")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WA_BRIDGE_")}
    env["WA_BRIDGE_MAPPINGS_PATH"] = str(ROOT / "mappings" / "sql.yaml")
    env["WA_BRIDGE_CONSUMER_SESSION_TIMEOUT_MS"] = "1000"  # Tansu: a join waits about this
    env.update(env_extra)
    data_dir = tmp_path / "data"
    command = [str(WA_BRIDGE), "dev", "--port", str(port), "--data-dir", str(data_dir)]
    with (tmp_path / "stderr.log").open("wb") as stderr:
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=stderr
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base_url)
        yield Dev(proc, base_url, data_dir)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_ctrl_c_drains_what_the_receiver_acknowledged_into_the_crm(tmp_path: Path) -> None:
    # The worker would wait 10 s before a batch: at Ctrl-C nothing is applied yet, and
    # the events are only in the in-memory broker.
    with running_dev(tmp_path, WA_BRIDGE_WORKER_LINGER_MS="10000") as dev:
        dev.send(30)
        dev.interrupt()
        code, stdout = dev.finish()
        stderr = (tmp_path / "stderr.log").read_text()
        assert code == 0, stderr[-3000:]
        assert "applying what the broker holds" in stdout
        assert "wa-bridge dev: stopped" in stdout
        assert dev.count("crm_notes") == 30  # every acknowledged webhook reached the CRM
        assert dev.count("dead_letters") == 0


def test_a_tripped_dlq_guard_pauses_the_worker_and_the_receiver_keeps_serving(
    tmp_path: Path,
) -> None:
    # Every event is for a number this deployment does not serve: all dead-lettered, so
    # the guard (half of the last 200 events) trips.
    with running_dev(tmp_path, WA_BRIDGE_PHONE_NUMBER_IDS="999") as dev:
        dev.send(260)
        deadline = time.monotonic() + START_WAIT_S
        while True:  # polled: a subprocess has no event to wait on
            ready = httpx.get(dev.base_url + "/readyz", timeout=2.0)
            if ready.status_code == 503:
                break
            assert time.monotonic() < deadline, "the guard never paused the worker"
            time.sleep(0.2)
        assert ready.json()["detail"].startswith("worker paused: ")
        assert dev.proc.poll() is None  # the process, and its receiver, keep running
        dev.send(10)  # still acknowledged while paused
        dev.interrupt()
        code, _ = dev.finish()
        stderr = (tmp_path / "stderr.log").read_text()
        assert code == 0, stderr[-3000:]
        assert stderr.count("dlq_limit_exceeded") == 1  # one CRITICAL line
        assert dev.count("dead_letters") == 270  # nothing acknowledged was lost


@contextmanager
def black_hole() -> Iterator[socket.socket]:
    """A CRM that accepts connections and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(START_WAIT_S)
    try:
        yield server
    finally:
        server.close()


def test_a_second_ctrl_c_stops_without_finishing_the_drain(tmp_path: Path) -> None:
    with black_hole() as crm:
        env = {
            "WA_BRIDGE_CONNECTOR": "rest",
            "WA_BRIDGE_CRM_BASE_URL": f"http://127.0.0.1:{crm.getsockname()[1]}",
            "WA_BRIDGE_CRM_TOKEN": "token",
            "WA_BRIDGE_CRM_TIMEOUT_S": "120",
            "WA_BRIDGE_MAPPINGS_PATH": str(ROOT / "mappings" / "rest.yaml"),
        }
        with running_dev(tmp_path, **env) as dev:
            dev.send(1)
            held, _ = crm.accept()  # the worker is in its CRM call, which never ends
            try:
                dev.interrupt()
                time.sleep(1.0)
                assert dev.proc.poll() is None  # draining: waiting for the CRM
                started = time.monotonic()
                dev.interrupt()
                code, stdout = dev.finish()
            finally:
                held.close()
        assert time.monotonic() - started < 15
        assert code == 1
        assert "stopping now, without finishing the drain" in stdout
        assert "wa-bridge dev: stopped" in stdout


def test_a_mapping_for_another_connector_stops_dev_before_it_starts(tmp_path: Path) -> None:
    if not WA_BRIDGE.exists():
        pytest.skip("the wa-bridge console script is not installed in this venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WA_BRIDGE_")}
    env |= {
        "WA_BRIDGE_MAPPINGS_PATH": str(ROOT / "mappings" / "sql.yaml"),
        "WA_BRIDGE_CONNECTOR": "rest",
        "WA_BRIDGE_CRM_BASE_URL": "http://127.0.0.1:9",
    }
    command = [str(WA_BRIDGE), "dev", "--port", str(free_port()), "--data-dir", str(tmp_path)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert done.returncode == 2, done.stderr.decode()[-2000:]
    assert "mappings/sql.yaml:11:1: connector:" in done.stderr.decode()
    assert not (tmp_path / "tansu.log").exists()  # nothing was started
