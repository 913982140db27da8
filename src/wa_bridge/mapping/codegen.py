"""Each event type's rules as one generated Python function: the mapping's hot path.

:mod:`wa_bridge.mapping.engine` compiles every field to a closure (when → source →
default/required → checks) and every path to a getter; applying a rule then costs a call
per field and per getter, a loop, and the event's attributes copied into a dict for the
getters. Here the rules of one event type become the source of one function, compiled
once at load: the rules and fields unrolled in file order, plain dotted paths
(``data.contact.wa_id``), the common conditions (``exists``, ``missing``, ``in``), and
``coalesce`` of such paths and ``upper`` / ``lower`` of one written inline, reading the
event's attributes directly. What is not written inline (JMESPath, ``concat``,
``lookup``, a field's type and catalog checks, …) calls the engine's own closures,
unchanged.

The generated function covers the path an event takes when every value is valid. Where the
engine would record a problem (a required field without a value, a value its check refuses,
an expression that cannot compute), the function stops, and the engine applies the event
again through its closures, which name every problem with its file and line: the answer,
operations or error, is the same either way (``tests/mapping/test_mapping_codegen.py``
compares both on the shipped mappings and on generated events).

Nothing from a mapping file becomes code: path steps, field names and values reach the
source only as ``repr`` of a ``str`` (a literal), or as names bound to the objects in the
function's namespace. The source is registered with :mod:`linecache` under a name that
says which mapping and event type it is, so a traceback through it shows its lines.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping.expressions import Condition, Getter, dotted_steps, member, source_of
from wa_bridge.operations import CrmOperation, FieldValue, WriteMode

__all__ = ["Applier", "FieldPlan", "NotInline", "RulePlan", "generate", "root_of"]

Applier = Callable[[CanonicalEvent], list[CrmOperation]]
ModesOf = Callable[[Mapping[str, WriteMode], Mapping[str, FieldValue]], Mapping[str, WriteMode]]


def root_of(event: CanonicalEvent) -> dict[str, Any]:
    """What a mapping's paths start from: the event's attributes, by their own names (the
    generated code reads a path's first step as ``event.<step>`` when it is one of them)."""
    return {
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "time": event.time,
        "subject": event.subject,
        "recvtime": event.recvtime,
        "wabaid": event.wabaid,
        "data": event.data,
    }


_ROOT_KEYS: Final = frozenset(root_of(CanonicalEvent("", "whatsapp.unknown", "", "", {})))
# A coalesce nests one block per item: longer ones call the engine's closure (Python's
# parser allows 100 levels of indentation).
_MAX_INLINE_COALESCE: Final = 16


class NotInline(Exception):
    """Raised by a generated function where the engine would record a problem: the
    engine's closures then apply the event and say what it is."""


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """One compiled field, as the generator needs it (built by the engine)."""

    name: str
    spec: Mapping[str, Any]  # the field's mapping data (source keys, ``when``)
    getter: Getter
    when: Condition | None
    constant: bool  # folded at load: ``value`` is the field's value for every event
    value: FieldValue
    default: FieldValue
    required: bool
    fast_text: tuple[int, int] | None  # (min, max) length of plain text needing no check
    check: Callable[[Any], FieldValue]  # a present raw value → the checked value (or raises)


@dataclass(frozen=True, slots=True)
class RulePlan:
    """One compiled rule: ``kind`` None for ``op: none``."""

    kind: str | None
    source: str
    when_spec: Any
    when: Condition | None
    fields: tuple[FieldPlan, ...]
    modes: Mapping[str, WriteMode]


def _simple_path(spec: Any) -> list[str] | None:
    """The steps of ``{path: a.b.c}`` when it is a plain dotted path, else None."""
    if isinstance(spec, dict) and spec.keys() == {"path"}:
        return dotted_steps(spec["path"])
    return None


class _Writer:
    """Lines of source, and the namespace the names in them refer to."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.lines: list[str] = []
        self.namespace = namespace
        self.needs_root = False
        # data's keys read further (``data.contact.wa_id``): each read once, at the top,
        # into a local named here (key → name)
        self.prefixes: dict[str, str] = {}

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def bind(self, value: object, prefix: str) -> str:
        """A name for ``value`` in the namespace (a str as its literal)."""
        if type(value) is str:
            return repr(value)
        name = f"_{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def root(self, indent: int) -> str:
        """The engine's root mapping, built at most once per call (for a closure)."""
        self.needs_root = True
        self.emit(indent, "if root is None:")
        self.emit(indent + 1, "root = _root(event)")
        return "root"

    def path(self, indent: int, steps: list[str], target: str) -> None:
        """``target`` = the value at ``steps`` (None when anything is absent), as the
        engine's dotted getter finds it."""
        first, rest = steps[0], steps[1:]
        if first == "data" and len(rest) > 1:  # data.<key>.…: that key read once, at the top
            name = self.prefixes.setdefault(rest[0], f"d{len(self.prefixes)}")
            key = repr(rest[1])
            self.emit(indent, f"{target} = {name}.get({key}) if isinstance({name}, dict) else None")
            rest = rest[2:]
        elif first == "data" and rest:  # data.<key>
            self.emit(indent, f"{target} = data.get({rest[0]!r})")
            rest = rest[1:]
        elif first in _ROOT_KEYS:
            self.emit(indent, f"{target} = event.{first}")
        else:
            self.emit(indent, f"{target} = None")
        for step in rest:
            key = repr(step)
            self.emit(
                indent, f"{target} = {target}.get({key}) if isinstance({target}, dict) else None"
            )

    def source(self, indent: int, field: FieldPlan, target: str) -> None:
        """``target`` = the field's raw value."""
        spec = source_of(field.spec)
        steps = _simple_path(spec)
        if steps is not None:
            self.path(indent, steps, target)
            return
        case = next(iter(spec)) if len(spec) == 1 else None
        if case in ("upper", "lower") and (steps := _simple_path(spec[case])) is not None:
            self.path(indent, steps, target)  # text in another case; anything else as it is
            self.emit(indent, f"if isinstance({target}, str):")
            self.emit(indent + 1, f"{target} = {target}.{case}()")
            return
        items = spec.get("coalesce") if spec.keys() == {"coalesce"} else None
        if (
            type(items) is list
            and 0 < len(items) <= _MAX_INLINE_COALESCE
            and all(_simple_path(i) is not None or not isinstance(i, dict) for i in items)
        ):
            self._coalesce(indent, items, target)
            return
        getter = self.bind(field.getter, "get")
        root = self.root(indent)
        self.emit(indent, f"{target} = {getter}({root})")

    def _coalesce(self, indent: int, items: list[Any], target: str) -> None:
        """The first of ``items`` that is neither None nor empty text (else the last one:
        a field takes empty text as no value, as it takes None)."""
        for depth, item in enumerate(items):
            level = indent + depth
            steps = _simple_path(item)
            if steps is not None:
                self.path(level, steps, target)
            else:
                self.emit(level, f"{target} = {self.bind(item, 'lit')}")
            if depth + 1 < len(items):
                self.emit(level, f'if {target} is None or {target} == "":')

    def condition(self, indent: int, spec: Any, compiled: Condition) -> str:
        """An expression that is the condition's value (after lines computing it)."""
        if isinstance(spec, dict) and len(spec) == 1:
            ((op, arg),) = spec.items()
            steps = dotted_steps(arg)
            if op in ("exists", "missing") and steps is not None:
                self.path(indent, steps, "c")
                return "c is not None" if op == "exists" else "c is None"
            if op == "in" and type(arg) is list and len(arg) == 2 and type(arg[1]) is list:
                steps = _simple_path(arg[0])
                if steps is not None:
                    self.path(indent, steps, "c")
                    # member() over text: exactly membership among the text values
                    texts = self.bind(frozenset(v for v in arg[1] if isinstance(v, str)), "in")
                    allowed = self.bind(list(arg[1]), "in")
                    return f"(c in {texts} if type(c) is str else _member(c, {allowed}))"
        root = self.root(indent)
        return f"{self.bind(compiled, 'when')}({root})"

    def field(self, indent: int, field: FieldPlan) -> None:
        name = repr(field.name)
        if field.constant:
            if field.value is not None:
                self.emit(indent, f"f[{name}] = {self.bind(field.value, 'const')}")
            return
        if field.when is not None:
            test = self.condition(indent, field.spec.get("when"), field.when)
            self.emit(indent, f"if {test}:")
            indent += 1
        self.source(indent, field, "v")
        self.emit(indent, 'if v is None or v == "" or (type(v) is list and not v):')
        if field.default is not None:
            self.emit(indent + 1, f"f[{name}] = {self.bind(field.default, 'default')}")
        elif field.required:
            self.emit(indent + 1, "raise _NotInline")
        else:
            self.emit(indent + 1, "pass")
        if field.fast_text is not None:
            lo, hi = field.fast_text
            self.emit(indent, f"elif type(v) is str and {lo:d} <= len(v) <= {hi:d}:")
            self.emit(indent + 1, f"f[{name}] = v")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"v = {self.bind(field.check, 'check')}(v)")
        self.emit(indent + 1, "if v is not None:")
        self.emit(indent + 2, f"f[{name}] = v")

    def rule(self, rule: RulePlan) -> None:
        indent = 1
        self.emit(indent, f"# {rule.kind or 'none'} ({rule.source})")
        if rule.when is not None:
            test = self.condition(indent, rule.when_spec, rule.when)
            self.emit(indent, f"if {test}:")
            indent += 1
        self.emit(indent, "f = {}")
        for field in rule.fields:
            self.field(indent, field)
        if rule.kind is not None:
            modes = self.bind(rule.modes, "modes")
            if rule.modes:
                modes = f"_modes_of({modes}, f)"
            kind, source = repr(rule.kind), self.bind(rule.source, "src")
            self.emit(
                indent,
                f"ops.append(_Op({kind}, f, event.id, len(ops), event.subject, None, "
                f"{source}, {modes}))",
            )


def generate(
    label: str,
    rules: Sequence[RulePlan],
    *,
    modes_of: ModesOf,
) -> Applier:
    """The function applying ``rules`` (one event type's, in file order) to an event.

    ``label`` names the source in tracebacks (the mapping file and event type);
    ``modes_of`` is the engine's choice of a rule's write modes for the fields emitted.
    """
    namespace: dict[str, Any] = {
        "_Op": CrmOperation,
        "_NotInline": NotInline,
        "_member": member,
        "_modes_of": modes_of,
        "_root": root_of,
    }
    writer = _Writer(namespace)
    for rule in rules:
        writer.rule(rule)
    body = writer.lines
    # the event's data as a dict (a path into anything else finds nothing, as the
    # engine's getters find), and the keys read further, each once
    head = ["def apply(event):", "    ops = []", "    data = event.data"]
    head.append("    if not isinstance(data, dict):")
    head.append("        data = {}")
    head += [f"    {name} = data.get({key!r})" for key, name in writer.prefixes.items()]
    if writer.needs_root:
        head.append("    root = None")
    source = "\n".join([*head, *body, "    return ops", ""])
    filename = f"<mapping {label}>"
    code = compile(source, filename, "exec")
    exec(code, namespace)  # our own generated source, nothing of the file as code (see above)
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    applier: Applier = namespace["apply"]
    return applier
