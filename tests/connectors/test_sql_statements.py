"""The SQL CRM's grouping of a batch's rows into statements by their write modes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wa_bridge.connectors.sql import _statements
from wa_bridge.operations import WriteMode

NAMES = ("name", "email", "country", "tier")
MODES: tuple[WriteMode, ...] = ("always", "if_empty", "on_create")

# a row: some present fields (a value, or None for a field left out), some as attributes,
# and a mode for some of its fields
_rows = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(NAMES[:2]), st.one_of(st.none(), st.just("v"))),
        st.dictionaries(st.sampled_from(NAMES[2:]), st.just("a")),
        st.dictionaries(st.sampled_from(NAMES), st.sampled_from(MODES)),
    ),
    max_size=12,
)


def _row(i: int, columns: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
    return {"key": f"k{i}", **columns, "attributes": attributes or None}


def _reference(rows: list[tuple[dict[str, Any], dict[str, WriteMode]]]) -> list[Any]:
    """Each row into the first group its modes fit, one row at a time."""
    groups: list[tuple[dict[str, WriteMode], list[dict[str, Any]]]] = []
    for row, modes in rows:
        present = [k for k, v in row.items() if v is not None and k != "attributes"]
        wants = {n: modes.get(n, "always") for n in [*present, *(row["attributes"] or {})]}
        for fixed, members in groups:
            if all(fixed.get(n, m) == m for n, m in wants.items()):
                fixed.update(wants)
                members.append(row)
                break
        else:
            groups.append((wants, [row]))
    return [(tuple(sorted((n, m) for n, m in f.items() if m != "always")), ms) for f, ms in groups]


@settings(max_examples=300, deadline=None)
@given(_rows)
def test_every_row_is_written_by_the_modes_it_asks_for(shapes: list[Any]) -> None:
    rows = [(_row(i, c, a), m) for i, (c, a, m) in enumerate(shapes)]
    statements = _statements(rows)
    written = [row["key"] for _, members in statements for row in members]
    assert sorted(written) == sorted(row["key"] for row, _ in rows)  # each row once
    by_key = {row["key"]: modes for row, modes in rows}
    for fixed, members in statements:
        modes = dict(fixed)
        for row in members:
            present = [k for k, v in row.items() if v is not None and k not in ("attributes",)]
            for name in [*present, *(row["attributes"] or {})]:
                assert modes.get(name, "always") == by_key[row["key"]].get(name, "always")
    if any(m for _, m in rows):
        assert statements == _reference(rows)  # as few statements as row by row


def test_rows_of_one_shape_share_a_statement() -> None:
    rows = [
        (_row(0, {"name": "a"}, {}), {"name": "if_empty"}),
        (_row(1, {"name": "b"}, {}), {}),  # name "always": cannot join the first
        (_row(2, {"name": "c"}, {}), {"name": "if_empty"}),
        (_row(3, {"email": "e"}, {}), {}),  # fits the first: it leaves name out
    ]
    assert [(f, [r["key"] for r in ms]) for f, ms in _statements(rows)] == [
        ((("name", "if_empty"),), ["k0", "k2", "k3"]),
        ((), ["k1"]),
    ]
