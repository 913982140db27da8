"""Data files are found from the checkout and from an installed wheel's copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wa_bridge.mapping import load_mapping
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


def test_shipped_mapping_found_by_fallback_loads_with_its_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no mappings/ here
    for name in ("sql", "rest", "hubspot"):
        mapping = load_mapping(resolve_mappings_path(f"mappings/{name}.yaml"))
        assert mapping.connector == name
        assert [Path(p).name for p in mapping.extends] == ["base.yaml"]


def test_shipped_mappings_load_from_the_wheels_copy(tmp_path: Path) -> None:
    # The wheel carries mappings/ whole under wa_bridge/_data/ (pyproject force-include):
    # extends and include are relative to each file, so the copy loads on its own.
    copy = tmp_path / "wa_bridge/_data/mappings"
    shutil.copytree(data_path("mappings"), copy)
    loaded = {p.name: load_mapping(p, allow_base=True) for p in sorted(copy.glob("*.yaml"))}
    assert {name: m.connector for name, m in loaded.items()} == {
        "base.yaml": "",
        "hubspot.yaml": "hubspot",
        "rest.yaml": "rest",
        "sql.yaml": "sql",
    }
    assert loaded["rest.yaml"].extends == (str(copy / "base.yaml"),)
