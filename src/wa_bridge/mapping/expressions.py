"""The small, safe expression language of mapping files, compiled once into closures.

A source is a JMESPath ``path`` or one of a few operators (``const``, ``concat``, ``join``,
``coalesce``, ``lookup``, ``query_param``, ``format_date``, ``lower``, ``upper``); a
condition is a JMESPath string or one of ``exists``, ``missing``, ``equals``, ``in``,
``jmespath``, ``all``, ``any``, ``not``. Nothing is evaluated with ``eval``: each node
becomes a Python closure at load time, and plain dotted paths (``data.contact.wa_id``)
skip JMESPath entirely (they are the common case and dict lookups are ~10x faster).

Inside operator lists, a bare scalar is a literal (``concat: ["WA-", {path: id}]``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import jmespath
from jmespath.exceptions import JMESPathError

from wa_bridge.mapping._node import Node
from wa_bridge.mapping.catalogs import Catalog

__all__ = [
    "OPTION_KEYS",
    "SOURCE_KEYS",
    "Condition",
    "ExpressionFailed",
    "Getter",
    "Root",
    "compile_condition",
    "compile_source",
    "dotted_steps",
    "member",
    "parse_time",
    "source_of",
]

Root = Mapping[str, Any]
Getter = Callable[[Root], Any]
Condition = Callable[[Root], bool]

SOURCE_KEYS = (
    "path",
    "query_param",
    "const",
    "concat",
    "join",
    "coalesce",
    "lookup",
    "format_date",
    "lower",
    "upper",
)
_OPTION_OF = {"from": ("lookup", "query_param"), "format": ("format_date",), "sep": ("join",)}
OPTION_KEYS = tuple(_OPTION_OF)  # keys that only qualify a source: they go with it
_SIMPLE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_INDEXED_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[-?\d+\])*$")
_STEP = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\[-?\d+\]")
_EPOCH = re.compile(r"^\d{9,11}(\.\d+)?$")
_NUMBERS: Final = (int, float)  # a tuple: ``int | float`` builds a union at every call


class ExpressionFailed(Exception):
    """An expression could not compute a value for this event (reason is user-facing)."""


class _Ctx:
    """What compiling needs: the catalogs and a sink for problems."""

    def __init__(self, catalogs: Mapping[str, Catalog], issues: list[Any]) -> None:
        self.catalogs = catalogs
        self.issues = issues


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 text or epoch seconds (number or digit text) → aware UTC-or-offset datetime."""
    if isinstance(value, str):  # the usual case first: one check, not four
        if _EPOCH.match(value):
            return _from_epoch(value)
        if 10 <= len(value) <= 40:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                return None
            return parsed if parsed.tzinfo is not None else None
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, bool):
        return None
    if isinstance(value, _NUMBERS):
        return _from_epoch(value)
    return None


def _from_epoch(value: str | int | float) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def truthy(value: Any) -> bool:
    """JMESPath truthiness: null, false, empty text, [] and {} are false; 0 is true."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


def dotted_steps(expr: object) -> list[str] | None:
    """The steps of a plain dotted path (``data.contact.wa_id``), else None."""
    if type(expr) is str and _SIMPLE_PATH.match(expr):
        return expr.split(".")
    return None


def source_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """A field spec's own source keys (the operator and its options)."""
    return {k: v for k, v in data.items() if k in SOURCE_KEYS or k in _OPTION_OF}


def _path_getter(expr: str) -> Getter:
    steps = dotted_steps(expr)
    if steps is not None:
        return _dotted_getter(steps)
    compiled = jmespath.compile(expr)  # also checks the syntax of the fast path below
    if _INDEXED_PATH.match(expr):
        return _indexed_getter(expr)

    def search(root: Root) -> Any:
        try:
            return compiled.search(root)
        except JMESPathError as exc:
            raise ExpressionFailed(f"path {expr!r} failed: {type(exc).__name__}") from exc

    return search


def _dotted_getter(parts: list[str]) -> Getter:
    """``data.contact.wa_id`` as plain dict lookups (the common case, ~10x JMESPath's speed)."""
    if len(parts) == 1:
        (a,) = parts
        return lambda root: root.get(a)
    if len(parts) == 2:
        a, b = parts

        def get2(root: Root) -> Any:
            x = root.get(a)
            return x.get(b) if isinstance(x, dict) else None

        return get2
    if len(parts) == 3:
        a, b, c = parts

        def get3(root: Root) -> Any:
            x = root.get(a)
            x = x.get(b) if isinstance(x, dict) else None
            return x.get(c) if isinstance(x, dict) else None

        return get3

    def get_n(root: Root) -> Any:
        x: Any = root
        for part in parts:
            if not isinstance(x, dict):
                return None
            x = x.get(part)
        return x

    return get_n


def _indexed_getter(expr: str) -> Getter:
    """``data.errors[0].code`` without JMESPath: same result (null when anything is absent)."""
    steps: list[str | int] = [
        int(tok[1:-1]) if tok.startswith("[") else tok for tok in _STEP.findall(expr)
    ]

    def get(root: Root) -> Any:
        x: Any = root
        for step in steps:
            if type(step) is int:
                if not isinstance(x, list):
                    return None
                try:
                    x = x[step]
                except IndexError:
                    return None
            elif isinstance(x, dict):
                x = x.get(step)
            else:
                return None
        return x

    return get


def _compile_path(expr: str, node: Node, ctx: _Ctx) -> Getter | None:
    try:
        return _path_getter(expr)
    except JMESPathError as exc:
        reason = str(exc).splitlines()[0].strip().rstrip(":") if str(exc) else type(exc).__name__
        ctx.issues.append(node.issue(f"bad path {expr!r}: {reason}"))
        return None


def _const(value: Any) -> Getter:
    return lambda _root: value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _compile_args(items: list[Any], node: Node, ctx: _Ctx) -> list[tuple[Getter, bool]]:
    out = []
    for i, item in enumerate(items):
        getter = compile_expr(item, node.child(i), ctx)
        out.append((getter or _const(None), not isinstance(item, dict)))
    return out


def _concat(parts: list[tuple[Getter, bool]]) -> Getter:
    def run(root: Root) -> Any:
        pieces = []
        for getter, _literal in parts:
            value = getter(root)
            if value is None:
                return None
            pieces.append(_text(value))
        return "".join(pieces)

    return run


def _join(parts: list[tuple[Getter, bool]], sep: str) -> Getter:
    def run(root: Root) -> Any:
        pieces: list[str] = []
        for getter, _literal in parts:
            value = getter(root)
            values = value if isinstance(value, list) else [value]
            pieces.extend(_text(v) for v in values if v is not None and v != "")
        return sep.join(pieces) if pieces else None

    return run


def _coalesce(parts: list[tuple[Getter, bool]]) -> Getter:
    def run(root: Root) -> Any:
        for getter, _literal in parts:
            value = getter(root)
            if value is not None and value != "":
                return value
        return None

    return run


def _format_date(inner: Getter, fmt: str) -> Getter:
    def run(root: Root) -> Any:
        value = inner(root)
        if value is None:
            return None
        moment = parse_time(value)
        if moment is None:
            raise ExpressionFailed("format_date needs an RFC 3339 time or epoch seconds")
        return moment.astimezone(UTC).strftime(fmt)

    return run


def _case(inner: Getter, upper: bool) -> Getter:
    def run(root: Root) -> Any:
        value = inner(root)
        if not isinstance(value, str):
            return value
        return value.upper() if upper else value.lower()

    return run


def _operator(data: dict[str, Any], node: Node, ctx: _Ctx) -> Getter | None:
    sources = [k for k in SOURCE_KEYS if k in data]
    if len(sources) != 1:
        got = ", ".join(sources) if sources else "none"
        ctx.issues.append(
            node.issue(f"expected exactly one of {', '.join(SOURCE_KEYS)}; got {got}")
        )
        return None
    op = sources[0]
    for option, owners in _OPTION_OF.items():
        if option in data and op not in owners:
            msg = f"{option!r} only goes with {' or '.join(owners)}"
            ctx.issues.append(node.issue(msg, option, at="key"))
    sub = node.child(op)
    arg = data[op]
    if op == "path":
        return _compile_path(arg, sub, ctx)
    if op == "const":
        return _const(arg)
    if op in {"concat", "join", "coalesce"}:
        parts = _compile_args(arg, sub, ctx)
        if op == "concat":
            return _concat(parts)
        if op == "join":
            return _join(parts, data.get("sep", " "))
        return _coalesce(parts)
    if op in {"lookup", "query_param"}:
        return _lookup(data, node, ctx) if op == "lookup" else _query_param(data, node, ctx)
    inner = compile_expr(arg, sub, ctx) or _const(None)
    if op == "format_date":
        fmt = data.get("format", "%Y-%m-%d")
        try:
            datetime(2000, 1, 2, tzinfo=UTC).strftime(fmt)
        except ValueError:
            ctx.issues.append(node.issue(f"bad date format {fmt!r}", "format"))
        return _format_date(inner, fmt)
    return _case(inner, upper=op == "upper")


def _compile_from(data: dict[str, Any], node: Node, ctx: _Ctx, op: str, what: str) -> Getter | None:
    """The getter of operator ``op``'s ``from`` (``what`` it must give); None, with an
    issue, when it is missing or does not compile."""
    if "from" not in data:
        ctx.issues.append(node.issue(f"'{op}' needs 'from': {what}", op))
        return None
    return compile_expr(data["from"], node.child("from"), ctx)


def _lookup(data: dict[str, Any], node: Node, ctx: _Ctx) -> Getter | None:
    name = data["lookup"]
    catalog = ctx.catalogs.get(name)
    if catalog is None:
        known = ", ".join(ctx.catalogs) or "none defined"
        ctx.issues.append(node.issue(f"unknown catalog {name!r}; known: {known}", "lookup"))
        return None
    inner = _compile_from(data, node, ctx, "lookup", "the value to translate")
    if inner is None:
        return None
    translate = catalog.lookup
    return lambda root: translate(inner(root))


def _query_param(data: dict[str, Any], node: Node, ctx: _Ctx) -> Getter | None:
    name = data["query_param"]
    inner = _compile_from(data, node, ctx, "query_param", "the URL")
    if inner is None:
        return None

    def run(root: Root) -> Any:
        url = inner(root)
        if not isinstance(url, str) or "?" not in url:
            return None
        found = parse_qs(urlsplit(url).query).get(name)
        return found[0] if found else None

    return run


def compile_expr(data: Any, node: Node, ctx: _Ctx) -> Getter | None:
    """A getter for one expression node (a literal, or an operator mapping); None on error."""
    if isinstance(data, dict):
        return _operator(data, node, ctx)
    return _const(data)


def compile_source(
    data: dict[str, Any], node: Node, catalogs: Mapping[str, Catalog], issues: list[Any]
) -> Getter | None:
    """The getter of a field spec (the field's own source keys; other keys are ignored)."""
    return _operator(source_of(data), node, _Ctx(catalogs, issues))


def _cond_path(op: str, expr: str, node: Node, ctx: _Ctx) -> Condition | None:
    getter = _compile_path(expr, node, ctx)
    if getter is None:
        return None
    if op == "exists":
        return lambda root: getter(root) is not None
    if op == "missing":
        return lambda root: getter(root) is None
    return lambda root: truthy(getter(root))


def _cond_logic(op: str, arg: Any, node: Node, ctx: _Ctx) -> Condition | None:
    if op == "not":
        inner = _cond(arg, node, ctx)
        return None if inner is None else (lambda root: not inner(root))
    parts = [_cond(c, node.child(i), ctx) for i, c in enumerate(arg)]
    conds = [p for p in parts if p is not None]
    if len(conds) != len(parts):
        return None
    if op == "all":
        return lambda root: all(c(root) for c in conds)
    return lambda root: any(c(root) for c in conds)


def _cond_compare(op: str, arg: Any, node: Node, ctx: _Ctx) -> Condition | None:
    left = compile_expr(arg[0], node.child(0), ctx)
    if left is None:
        return None
    if op == "in":
        allowed = list(arg[1])
        return lambda root: member(left(root), allowed)
    right = compile_expr(arg[1], node.child(1), ctx)
    if right is None:
        return None
    return lambda root: _same(left(root), right(root))


def _cond(data: Any, node: Node, ctx: _Ctx) -> Condition | None:
    if isinstance(data, str):
        return _cond_path("jmespath", data, node, ctx)
    ((op, arg),) = data.items()
    sub = node.child(op)
    if op in {"exists", "missing", "jmespath"}:
        return _cond_path(op, arg, sub, ctx)
    if op in {"all", "any", "not"}:
        return _cond_logic(op, arg, sub, ctx)
    return _cond_compare(op, arg, sub, ctx)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def member(value: Any, allowed: list[Any]) -> bool:
    """``in``: ``value`` is one of ``allowed`` (a boolean only ever equals a boolean)."""
    return any(_same(value, x) for x in allowed)


def compile_condition(
    data: Any, node: Node, catalogs: Mapping[str, Catalog], issues: list[Any]
) -> Condition | None:
    """A predicate for a ``when`` node; None (and an issue) when it does not compile."""
    return _cond(data, node, _Ctx(catalogs, issues))
