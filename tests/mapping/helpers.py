"""Small builders shared by the mapping tests: YAML files in tmp_path, canonical events."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from wa_bridge.errors import MappingOutputInvalid
from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping import CompiledMapping, load_mapping

HEAD = "version: 1\nconnector: sql\n"


def write(dir_: Path, name: str, text: str) -> Path:
    path = dir_ / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def mapping_of(tmp_path: Path, body: str, *, head: str = HEAD) -> CompiledMapping:
    return load_mapping(write(tmp_path, "m.yaml", head + textwrap.dedent(body).lstrip("\n")))


def event(
    data: dict[str, Any], *, type_: str = "whatsapp.message.received", **attrs: Any
) -> CanonicalEvent:
    raw = {
        "id": "ev-1",
        "type": type_,
        "source": "whatsapp:1",
        "time": "2026-06-10T14:04:00Z",
        "data": data,
        **attrs,
    }
    return CanonicalEvent.from_dict(raw)


def fields_of(mapping: CompiledMapping, data: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    """The fields of the single operation the mapping emits for ``data``."""
    (op,) = mapping.apply(event(data, **attrs))
    return dict(op.fields)


def errors_of(path: Path, *, allow_base: bool = False) -> list[str]:
    """Every load error of ``path`` as text, with the temporary directory cut off."""
    from wa_bridge.mapping import MappingErrors

    try:
        load_mapping(path, allow_base=allow_base)
    except MappingErrors as exc:
        return [str(e).replace(f"{path.parent}/", "") for e in exc.errors]
    raise AssertionError(f"{path} loaded without errors")


def answer_of(apply: Any, ev: CanonicalEvent) -> Any:
    """Operations with each value's type beside it, or the refusal as the caller sees it."""
    try:
        ops = apply(ev)
    except MappingOutputInvalid as exc:
        return ("refused", str(exc), exc.location, exc.field)
    return [
        (
            op.kind,
            [(k, type(v).__name__, v) for k, v in op.fields.items()],
            op.event_id,
            op.index,
            op.contact_key,
            op.case_key,
            op.source,
            dict(op.write_modes),
        )
        for op in ops
    ]
