"""``wa-bridge mappings validate|test|dry-run`` through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from wa_bridge.cli.main import app

from .helpers import write

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
runner = CliRunner()

GOOD = """
version: 1
connector: rest
events:
  inbox.conversation.csat:
    - op: record_outcome
      fields:
        csat: {path: data.csat, type: int, required: true}
"""


def test_validate_ok_and_errors(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", GOOD)
    result = runner.invoke(app, ["mappings", "validate", str(good)])
    assert result.exit_code == 0, result.output
    assert f"ok: {good} (rest, 1 event types)" in result.output
    write(tmp_path, "bad.yaml", GOOD.replace("type: int", "type: integer"))
    result = runner.invoke(app, ["mappings", "validate", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path}/bad.yaml:7:39: events/inbox.conversation.csat/0/fields/csat/type:" in (
        result.output
    )
    assert f"ok: {good}" in result.output


def test_test_command_passes_and_prints_a_diff(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", GOOD)
    case = """
    mapping: ../m.yaml
    cases:
      - name: csat
        event: {type: inbox.conversation.csat, data: {csat: "4"}}
        expect:
          - op: record_outcome
            fields: {csat: %s}
      - name: bad csat
        event: {type: inbox.conversation.csat, data: {csat: "x"}}
        expect_error: "record_outcome.csat: expected an integer"
    """
    write(tmp_path, "tests/m.yaml", case % "4")
    result = runner.invoke(app, ["mappings", "test", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.output
    write(tmp_path, "tests/m.yaml", case % "5")
    result = runner.invoke(app, ["mappings", "test", str(tmp_path)])
    assert result.exit_code == 1
    assert f"FAIL {tmp_path}/tests/m.yaml:3 csat" in result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert '-"csat":5' in [line.replace(" ", "") for line in lines]
    assert '+"csat":4' in [line.replace(" ", "") for line in lines]


def test_dry_run_canonical_event(tmp_path: Path) -> None:
    mapping = write(tmp_path, "m.yaml", GOOD)
    ev = {
        "id": "e1",
        "type": "inbox.conversation.csat",
        "source": "inbox",
        "time": "2026-06-10T14:00:00Z",
    }
    good = write(tmp_path, "ev.json", json.dumps({**ev, "data": {"csat": 3}}))
    result = runner.invoke(app, ["mappings", "dry-run", str(good), "-m", str(mapping)])
    assert result.exit_code == 0, result.output
    assert '"csat": 3' in result.output and f'"source": "{mapping}:5"' in result.output
    bad = write(tmp_path, "bad.json", json.dumps({**ev, "data": {"csat": "great"}}))
    result = runner.invoke(app, ["mappings", "dry-run", str(bad), "-m", str(mapping)])
    assert result.exit_code == 1
    assert f"INVALID (would be dead-lettered): {mapping}:7: record_outcome.csat:" in result.output


def test_dry_run_raw_webhook_with_shipped_mapping() -> None:
    result = runner.invoke(
        app,
        [
            "mappings",
            "dry-run",
            str(DATA / "webhook_text.json"),
            "-m",
            str(ROOT / "mappings/sql.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "(whatsapp.message.received)" in result.output
    assert '"phone_e164": "+525512345678"' in result.output
    assert '"body": "hola"' in result.output


def test_dry_run_rejects_a_non_event(tmp_path: Path) -> None:
    junk = write(tmp_path, "junk.json", '{"hello": 1}')
    result = runner.invoke(
        app, ["mappings", "dry-run", str(junk), "-m", str(ROOT / "mappings/sql.yaml")]
    )
    assert result.exit_code == 1


def test_validate_shows_an_error_in_a_base_once_and_names_the_base(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", GOOD.replace("connector: rest\n", ""))
    for name in ("a.yaml", "b.yaml"):
        write(tmp_path, name, "extends: base.yaml\nconnector: sql\n")
    result = runner.invoke(app, ["mappings", "validate", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"ok: {base} (base mapping, 1 event types)" in result.output
    assert f"ok: {tmp_path}/a.yaml (sql, 1 event types, extends {base})" in result.output
    base.write_text(base.read_text().replace("type: int", "type: integer"))
    result = runner.invoke(app, ["mappings", "validate", str(tmp_path)])
    assert result.exit_code == 1
    error = f"{base}:6:39: events/inbox.conversation.csat/0/fields/csat/type:"
    assert result.output.count(error) == 1
    assert f"{tmp_path}/b.yaml: invalid, see the errors above" in result.output
    assert "3 of 3 mapping files have errors" in result.output


def test_a_test_file_may_run_against_several_mappings(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", GOOD.replace("connector: rest\n", ""))
    write(tmp_path, "small.yaml", SMALL_CSAT)
    case = """
    mappings: [../base.yaml, ../small.yaml]
    cases:
      - name: csat 7
        event: {type: inbox.conversation.csat, data: {csat: "7"}}
        expect:
          - op: record_outcome
            fields: {csat: 7}
    """
    write(tmp_path, "tests/base.yaml", case)
    result = runner.invoke(app, ["mappings", "test", str(tmp_path)])
    assert result.exit_code == 1
    assert f"PASS {tmp_path}/tests/base.yaml:3 [{tmp_path}/base.yaml] csat 7" in result.output
    assert f"FAIL {tmp_path}/tests/base.yaml:3 [{tmp_path}/small.yaml] csat 7" in result.output
    assert f"{tmp_path}/small.yaml:8: record_outcome.csat:" in result.output
    assert "1 passed, 1 failed" in result.output


SMALL_CSAT = """
version: 1
extends: base.yaml
connector: rest
overrides:
  inbox.conversation.csat:
    record_outcome:
      fields:
        csat: {type: enum, values: [1, 2, 3, 4, 5]}
"""


def _printed_ops(output: str) -> list[dict[str, object]]:
    """The JSON operations a dry-run printed (each after its ``# event`` line)."""
    decoder, ops, text = json.JSONDecoder(), [], output
    while (start := text.find("{")) >= 0:
        op, end = decoder.raw_decode(text, start)
        ops.append(op)
        text = text[end:]
    return ops


def test_dry_run_shows_the_write_mode_of_fields_not_written_always() -> None:
    args = ["mappings", "dry-run", str(DATA / "webhook_text.json")]
    result = runner.invoke(app, [*args, "-m", str(ROOT / "mappings/sql.yaml")])
    assert result.exit_code == 0, result.output
    ops = _printed_ops(result.output)
    assert [(op["op"], op.get("write")) for op in ops] == [
        ("upsert_contact", {"name": "if_empty", "country": "if_empty"}),
        ("add_note", None),  # the case: the worker's conversation.case.updated
    ]


def test_a_test_case_states_the_write_modes(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", GOOD.replace("required: true}", "required: true, write: if_empty}"))
    case = """
    mapping: ../m.yaml
    cases:
      - name: csat
        event: {type: inbox.conversation.csat, data: {csat: "4"}}
        expect:
          - op: record_outcome
            fields: {csat: 4}
            %s
    """
    write(tmp_path, "tests/m.yaml", case % "write: {csat: if_empty}")
    result = runner.invoke(app, ["mappings", "test", str(tmp_path)])
    assert result.exit_code == 0, result.output
    write(tmp_path, "tests/m.yaml", case % "")
    result = runner.invoke(app, ["mappings", "test", str(tmp_path)])
    assert result.exit_code == 1
    assert '+"write":{' in result.output.replace(" ", "")
