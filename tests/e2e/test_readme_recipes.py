"""The README's CRM recipes, run as written: stand-in, settings, ``crm setup``, ``dev``, the
first webhook, and the contact in the CRM.

Each recipe is read from README.md (between ``<!-- recipe: NAME -->`` and
``<!-- /recipe -->``): its ``export`` lines are the environment, its commands run as
subprocesses (the stand-in and ``wa-bridge dev`` in the background), and its ``curl`` line
is the check, asked until the contact is there. Only the ports change (free ones), and the
state database goes to a temporary directory. A README that drifts from the code fails here.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from wa_bridge.bus.embedded import free_port
from wa_bridge.cli.dev import load_dev_secrets
from wa_bridge.receiver import WEBHOOK_PATH, sign

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
WEBHOOK = ROOT / "tests" / "samples" / "meta" / "text_mx.json"
WA_BRIDGE = Path(sys.executable).with_name("wa-bridge")
START_WAIT_S = 60.0
SYNC_WAIT_S = 60.0


@dataclass
class Recipe:
    stand_in: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)
    check: list[str] = field(default_factory=list)


def read_recipe(name: str, port: int) -> Recipe:
    """The recipe ``name`` of README.md, with its stand-in's port replaced by ``port``."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- recipe: {name} -->(.*?)<!-- /recipe -->", text, re.S)
    assert found, f"README.md has no recipe {name!r}"
    blocks = re.findall(r"```sh\n(.*?)```", found.group(1), re.S)
    readme_port = re.search(r"--port (\d+)", found.group(1))
    assert readme_port, "the recipe starts its stand-in on a port"
    recipe = Recipe()
    for raw in "\n".join(blocks).splitlines():
        line = raw.split("  #", 1)[0].strip().replace(readme_port.group(1), str(port))
        if not line:
            continue
        words = shlex.split(line)
        if words[:3] == ["python", "-m", "tests.connectors.servers"]:
            recipe.stand_in = [sys.executable, *words[1:]]
        elif words[0] == "export":
            key, _, value = words[1].partition("=")
            recipe.env[key] = value
        elif words[0] == ".venv/bin/wa-bridge":
            recipe.commands.append([str(WA_BRIDGE), *words[1:]])
        elif words[0] == "curl":
            recipe.check = words
        else:
            raise AssertionError(f"the test does not know how to run {line!r}")
    return recipe


def _env(recipe: Recipe, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WA_BRIDGE_")}
    env.update(recipe.env)
    env["WA_BRIDGE_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    return env


@contextmanager
def running(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def dev_running(argv: list[str], env: dict[str, str], data_dir: Path, log: Path) -> Iterator[str]:
    """``wa-bridge dev`` on a free port, ready; yields its base URL. A port found free can
    be taken by another process before dev binds it (the suite runs in parallel): then dev
    exits saying so, and it is started again on another port (at most 3 tries)."""
    for _ in range(3):
        port = free_port()
        command = [*argv, "--port", str(port), "--data-dir", str(data_dir)]
        with running(command, env, log) as proc:
            base = f"http://127.0.0.1:{port}"
            try:
                _poll("wa-bridge dev", proc, log, functools.partial(_ready, base))
            except AssertionError:
                if proc.poll() is not None and "address already in use" in log.read_text():
                    continue
                raise
            yield base
            return
    raise AssertionError(f"wa-bridge dev found no free port in 3 tries: {log.read_text()[-3000:]}")


def _poll(what: str, proc: subprocess.Popen[bytes], log: Path, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:  # polled: a subprocess has no event to wait on
        assert proc.poll() is None, f"{what} exited: {log.read_text()[-3000:]}"
        try:
            if ready():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not come up: {log.read_text()[-3000:]}")


def _curl(words: list[str]) -> httpx.Response:
    """The recipe's ``curl -s -H 'K: V' URL`` as an httpx GET."""
    headers = {}
    for flag, value in itertools.pairwise(words):
        if flag == "-H":
            key, _, val = value.partition(": ")
            headers[key] = val
    return httpx.get(words[-1], headers=headers, timeout=5)


def _hubspot_contacts(body: Any) -> list[str]:
    return [r["properties"].get("wa_contact_key") for r in body.get("results", [])]


def _salesforce_contacts(body: Any) -> list[str]:
    return [r.get("WA_Contact_Key__c") for r in body.get("records", [])]


@pytest.mark.parametrize(
    ("name", "contacts"),
    [("hubspot", _hubspot_contacts), ("salesforce", _salesforce_contacts)],
)
def test_a_readme_recipe_reaches_a_synced_contact(
    name: str, contacts: Callable[[Any], list[str]], tmp_path: Path
) -> None:
    if not WA_BRIDGE.exists():
        pytest.skip("the wa-bridge console script is not installed in this venv")
    crm_port = free_port()
    recipe = read_recipe(name, crm_port)
    assert [c[1:3] for c in recipe.commands] == [["crm", "setup"], ["dev"]]
    env = _env(recipe, tmp_path)
    with running(recipe.stand_in, env, tmp_path / "stand-in.log") as stand_in:
        crm = f"http://127.0.0.1:{crm_port}"
        _poll("the stand-in", stand_in, tmp_path / "stand-in.log", lambda: _up(crm))

        setup = subprocess.run(
            recipe.commands[0], cwd=ROOT, env=env, capture_output=True, timeout=120
        )
        output = setup.stdout.decode() + setup.stderr.decode()
        assert setup.returncode == 0, output
        assert " created" in output and "HTTP Request" not in output

        data_dir = tmp_path / "dev"
        with dev_running(recipe.commands[1], env, data_dir, tmp_path / "dev.log") as base:
            secret = load_dev_secrets(data_dir)["WA_BRIDGE_APP_SECRETS"].encode()
            body = WEBHOOK.read_bytes()
            sent = httpx.post(
                base + WEBHOOK_PATH,
                content=body,
                headers={"x-hub-signature-256": sign(body, secret)},
                timeout=10,
            )
            assert sent.status_code == 200, sent.text
            synced = _wait_for_contact(recipe.check, contacts)
        dev_log = (tmp_path / "dev.log").read_text()
    assert synced and all(key and key.startswith("c_") for key in synced), dev_log[-3000:]
    assert "HTTP Request" not in dev_log


def _up(url: str) -> bool:
    return httpx.get(url + "/", timeout=1).status_code < 500


def _ready(base: str) -> bool:
    return httpx.get(base + "/readyz", timeout=1).status_code == 200


def _wait_for_contact(check: list[str], contacts: Callable[[Any], list[str]]) -> list[str]:
    deadline = time.monotonic() + SYNC_WAIT_S
    while time.monotonic() < deadline:  # polled: the worker runs in another process
        answer = _curl(check)
        assert answer.status_code == 200, answer.text
        found = contacts(answer.json())
        if found:
            return found
        time.sleep(0.25)
    return []
