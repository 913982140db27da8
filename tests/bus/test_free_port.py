"""free_port: below the OS's range for outgoing connections, and bindable."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from wa_bridge.bus import embedded
from wa_bridge.bus.embedded import free_port


def test_a_free_port_is_below_the_range_outgoing_connections_take() -> None:
    start = embedded._ephemeral_start()
    ports = {free_port() for _ in range(20)}
    assert all(embedded._LOWEST_PORT <= port < start for port in ports)
    assert len(ports) > 1  # random: parallel callers rarely pick the same one
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", ports.pop()))


def test_a_port_in_use_is_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(embedded.random, "randrange", lambda _lo, _hi: busy)
        port = free_port()
    assert port != busy  # every random pick was the taken port: the OS picked one


def test_without_the_range_file_linux_s_default_is_assumed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(embedded, "_PORT_RANGE_FILE", tmp_path / "absent")
    assert embedded._ephemeral_start() == 32768
