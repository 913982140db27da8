"""A bug that escapes a command: its traceback on stderr, without the data in its messages."""

from __future__ import annotations

import pytest
import typer

from wa_bridge.cli._common import run_cli

PHONE = "+5215550001234"
NAME = "Renata Olvera"


def _crashing_app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def write() -> None:
        """Meets a bug whose message carries the record."""
        record = {"phone_e164": PHONE, "name": NAME}
        raise RuntimeError(f"cannot write {record}")

    @app.command()
    def other() -> None:
        """A second command, so that Typer keeps command names."""

    return app


def test_a_crash_prints_a_log_safe_traceback_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(_crashing_app(), ["write"])
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert "Traceback (most recent call last)" in err and "in write" in err
    assert "RuntimeError: cannot write {'…': '…', '…': '…'}" in err
    assert "5550001234" not in err and NAME not in err


def test_a_command_that_exits_keeps_its_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(_crashing_app(), ["no-such-command"])
    assert exited.value.code == 2  # click's usage error, as before
    assert "No such command" in capsys.readouterr().err
