"""``wa-bridge dev`` as a subprocess: serves a signed webhook, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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
