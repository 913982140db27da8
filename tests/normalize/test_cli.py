"""``wa-bridge normalize`` through Typer's runner, on the real app."""

from __future__ import annotations

import orjson
from typer.testing import CliRunner

from wa_bridge.cli.main import app

from ._samples import SAMPLES_DIR

runner = CliRunner()


def test_prints_one_json_event_per_line() -> None:
    path = SAMPLES_DIR / "statuses_br.json"
    result = runner.invoke(app, ["normalize", str(path), "--received-at", "2026-06-12T09:30:00Z"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    events = [orjson.loads(line) for line in lines]
    assert [e["data"]["status"] for e in events] == [
        "sent",
        "delivered",
        "read",
        "played",
        "failed",
    ]
    assert {e["recvtime"] for e in events} == {"2026-06-12T09:30:00Z"}


def test_reads_stdin() -> None:
    body = (SAMPLES_DIR / "text_mx.json").read_bytes()
    result = runner.invoke(app, ["normalize", "-"], input=body)
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert orjson.loads(line)["type"] == "whatsapp.message.received"


def test_bad_body_exits_1_with_reason() -> None:
    result = runner.invoke(app, ["normalize", "-"], input=b'{"object": "page", "entry": []}')
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "'object' must be 'whatsapp_business_account'" in result.stderr


def test_bad_json_exits_1() -> None:
    result = runner.invoke(app, ["normalize", "-"], input=b"{nope")
    assert result.exit_code == 1
    assert "not valid JSON" in result.stderr


def test_all_named() -> None:
    named = {
        "a": orjson.loads((SAMPLES_DIR / "text_mx.json").read_bytes()),
        "b": orjson.loads((SAMPLES_DIR / "echo_co.json").read_bytes()),
    }
    result = runner.invoke(app, ["normalize", "--all-named", "-"], input=orjson.dumps(named))
    assert result.exit_code == 0, result.output
    types = [orjson.loads(line)["type"] for line in result.stdout.splitlines()]
    assert types == ["whatsapp.message.received", "whatsapp.message.echo"]
