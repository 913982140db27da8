"""Data files are found from the checkout and from an installed wheel's copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from wa_bridge.resources import data_path, resolve_mappings_path


def test_schema_files_resolve() -> None:
    assert data_path("schemas/mapping.schema.json").is_file()
    assert data_path("schemas/whatsapp.message.received.json").is_file()


def test_relative_mapping_path_falls_back_to_shipped_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no mappings/ here
    found = resolve_mappings_path("mappings/sql.yaml")
    assert found.is_file()
    assert found.is_absolute()


def test_local_mapping_file_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mappings").mkdir()
    own = tmp_path / "mappings" / "sql.yaml"
    own.write_text("version: 1\n")
    assert resolve_mappings_path("mappings/sql.yaml").resolve() == own.resolve()
