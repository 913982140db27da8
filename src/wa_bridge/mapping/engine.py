"""The compiled mapping: canonical event → validated CRM operations.

Everything that can be decided once is decided at load: paths are compiled, catalogs
resolved, defaults checked against their type, and each field becomes a (getter, check)
pair. Each event type's rules then become one generated function
(:mod:`wa_bridge.mapping.codegen`), which :meth:`CompiledMapping.apply` calls; the
closures, walked field by field (:meth:`CompiledMapping.apply_by_rules`), are the
reference it is tested against and the path that explains a refused event.

Output is validated before it leaves: a value that fails its type, catalog, length or
``required`` check makes ``apply`` raise :class:`MappingOutputInvalid` naming the mapping
file and line, the operation and field, and the offending value (truncated, with phone
numbers masked to their last 4 digits). No operation of that event is returned, so the
CRM never sees a half-filled event. In a mapping that extends another, the file and line
named are those of the file that set the failing check: an override's when it changed
it, else the base's.

Each operation carries the ``write`` mode of its fields that are not written ``always``
(``CrmOperation.write_modes``, one shared mapping per rule); the connector honours them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, InitVar, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, cast

from wa_bridge.errors import MappingOutputInvalid
from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping._node import Node
from wa_bridge.mapping.catalogs import MISSING, Catalog
from wa_bridge.mapping.codegen import Applier, FieldPlan, NotInline, RulePlan, generate, root_of
from wa_bridge.mapping.expressions import (
    OPTION_KEYS,
    SOURCE_KEYS,
    Condition,
    ExpressionFailed,
    Getter,
    compile_condition,
    compile_source,
)
from wa_bridge.mapping.fieldtypes import BadValue, Coercer, make_coercer
from wa_bridge.mapping.issues import Loc, MappingErrors, MappingIssue
from wa_bridge.mapping.spec import FieldSpec, MappingSpec, RuleSpec, load_spec
from wa_bridge.operations import (
    DEFAULT_MATCH_ORDER,
    CrmOperation,
    FieldValue,
    MatchRule,
    OperationKind,
    WriteMode,
)

__all__ = ["CompiledMapping", "compile_spec", "load_mapping", "mask"]

_MAX_SHOWN: Final = 40
_DIGIT_RUN = re.compile(r"\d[\d\s().-]{5,}\d")
_LENGTH_TYPES: Final = frozenset({"string", "email", "enum", "phone"})
_CONTAINERS: Final = (dict, list)  # a tuple: ``dict | list`` builds a union at every call
# A field's keys by what they decide; a problem names where its group was last set.
_VALUE_KEYS: Final = (*SOURCE_KEYS, *OPTION_KEYS, "when", "required", "default")
_CHECK_KEYS: Final = ("type", "max_length", "min_length", "values", "list")


def mask(value: Any) -> str:
    """A short, safe rendering of an offending value for error messages and dead letters."""
    text = repr(value)
    if len(text) > 4 * _MAX_SHOWN:
        text = text[: 4 * _MAX_SHOWN]

    def hide(match: re.Match[str]) -> str:
        run = match.group(0)
        digits = sum(ch.isdigit() for ch in run)
        if digits < 7:
            return run
        keep, out = 4, []
        for ch in reversed(run):
            if ch.isdigit():
                out.append(ch if keep > 0 else "*")
                keep -= 1
            else:
                out.append(ch)
        return "".join(reversed(out))

    text = _DIGIT_RUN.sub(hide, text)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    location: str  # file:line of the field as its source, when, required or default was set
    check_location: str  # ... as its type or length/value limits were set
    catalog_location: str  # ... as its catalog was set
    getter: Getter
    check: Coercer
    catalog: Catalog | None
    is_list: bool
    required: bool
    default: FieldValue
    when: Condition | None
    fast_text: tuple[int, int] | None  # (min, max) length when plain text needs no more checks
    write: WriteMode
    spec: Mapping[str, Any]  # the field's mapping data (for the generated code)
    constant: bool  # a ``const`` without ``when``: folded at load


Runner = Callable[[Mapping[str, Any]], FieldValue]


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: OperationKind | None  # None: op "none"
    source: str
    when_spec: Any
    when: Condition | None
    fields: tuple[_Field, ...]
    runners: tuple[tuple[str, Runner], ...]  # the fields as single closures (the reference)
    write_modes: Mapping[str, WriteMode]  # the fields whose mode is not "always"


class _Problem(Exception):
    def __init__(self, field: _Field, kind: str, reason: str, location: str) -> None:
        super().__init__(f"{location}: {kind}.{field.name}: {reason}")
        self.field = field
        self.location = location


@dataclass(eq=False, repr=False)
class CompiledMapping:
    """A mapping ready to apply; build it with :func:`load_mapping`.

    ``connector`` is ``""`` for a base mapping (loaded with ``allow_base``), and
    ``connector_loc`` where its ``connector:`` key is; ``extends`` lists the files it
    inherits from, the nearest first. ``match_order`` is the mapping's ``match:`` setting:
    the rules, in order, by which a connector looks for an existing CRM record before it
    creates a contact.
    """

    path: str
    connector: str
    rules: InitVar[Mapping[str, tuple[_Rule, ...]]]
    _: KW_ONLY
    extends: tuple[str, ...] = ()
    connector_loc: Loc | None = None
    match_order: tuple[MatchRule, ...] = DEFAULT_MATCH_ORDER
    _rules: dict[str, tuple[_Rule, ...]] = field(init=False)
    _appliers: dict[str, Applier] = field(init=False)

    def __post_init__(self, rules: Mapping[str, tuple[_Rule, ...]]) -> None:
        self._rules = dict(rules)
        self._appliers = {
            event_type: generate(
                f"{self.path}: {event_type}",
                [_plan(rule) for rule in type_rules],
                modes_of=_modes_of,
            )
            for event_type, type_rules in self._rules.items()
        }

    def __repr__(self) -> str:
        return f"CompiledMapping(path={self.path!r}, connector={self.connector!r})"

    @property
    def event_types(self) -> frozenset[str]:
        """Event types with at least one rule (``none`` counts: it is an explicit no-op)."""
        return frozenset(self._rules)

    def operation_fields(self) -> dict[OperationKind, dict[str, FieldValue]]:
        """Per operation kind, every field name the mapping can emit, with the field's
        value when it is known without an event (a ``const`` or a default), else None.

        For connectors' setup (which CRM properties to create); not a hot path.
        """
        out: dict[OperationKind, dict[str, FieldValue]] = {}
        for rules in self._rules.values():
            for rule in rules:
                if rule.kind is None:
                    continue
                fields = out.setdefault(rule.kind, {})
                for f in rule.fields:
                    try:
                        known = None if f.when is not None else _runner(f, rule.kind)({})
                    except _Problem:
                        known = None
                    if fields.get(f.name) is None:
                        fields[f.name] = known
        return out

    def apply(self, event: CanonicalEvent) -> list[CrmOperation]:
        """The operations for ``event``, in file order; [] when its type has no rule.

        Raises MappingOutputInvalid (and nothing else) when any emitted value is invalid.
        Pure and thread-safe: no I/O, no state.

        The event type's generated function (:mod:`wa_bridge.mapping.codegen`) maps it;
        where it stops (a value the engine would refuse), the rules' closures map the event
        again and name every problem.
        """
        applier = self._appliers.get(event.type)
        if applier is None:
            return []
        try:
            return applier(event)
        except (NotInline, _Problem, ExpressionFailed):
            return self.apply_by_rules(event)

    def apply_by_rules(self, event: CanonicalEvent) -> list[CrmOperation]:
        """:meth:`apply` through the rules' closures, field by field: the reference the
        generated functions are checked against, and the path that explains a refusal."""
        rules = self._rules.get(event.type)
        if not rules:
            return []
        root = root_of(event)
        ops: list[CrmOperation] = []
        problems: list[_Problem] = []
        for rule in rules:
            try:
                if rule.when is not None and not rule.when(root):
                    continue
            except ExpressionFailed as exc:
                raise MappingOutputInvalid(
                    f"{rule.source}: when: {exc}", location=rule.source
                ) from exc
            fields: dict[str, FieldValue] = {}
            try:
                for name, run in rule.runners:
                    value = run(root)
                    if value is not None:
                        fields[name] = value
            except _Problem:
                problems.extend(_all_problems(rule, root))
            if rule.kind is not None:
                # positional (kind, fields, event_id, index, contact_key, case_key, source,
                # write_modes): once or twice per event, keywords cost more than the rest
                ops.append(
                    CrmOperation(
                        rule.kind,
                        fields,
                        event.id,
                        len(ops),
                        event.subject,
                        None,
                        rule.source,
                        _modes_of(rule.write_modes, fields),
                    )
                )
        if problems:
            first = problems[0]
            message = "; ".join(str(p) for p in problems)
            raise MappingOutputInvalid(message, location=first.location, field=first.field.name)
        return ops


def _plan(rule: _Rule) -> RulePlan:
    """A compiled rule as :func:`~wa_bridge.mapping.codegen.generate` takes it."""
    kind = rule.kind or "none"
    fields = tuple(
        FieldPlan(
            name=f.name,
            spec=f.spec,
            getter=f.getter,
            when=f.when,
            constant=f.constant,
            value=run({}) if f.constant else None,  # a folded field ignores its root
            default=f.default,
            required=f.required,
            fast_text=f.fast_text,
            check=_checker(f, kind),
        )
        for f, (_name, run) in zip(rule.fields, rule.runners, strict=True)
    )
    return RulePlan(rule.kind, rule.source, rule.when_spec, rule.when, fields, rule.write_modes)


def _modes_of(
    modes: Mapping[str, WriteMode], fields: Mapping[str, FieldValue]
) -> Mapping[str, WriteMode]:
    """The rule's write modes of the fields this operation carries (usually all of them:
    the rule's own mapping is then shared, not copied)."""
    if not modes or modes.keys() <= fields.keys():
        return modes
    return {name: mode for name, mode in modes.items() if name in fields}


def _all_problems(rule: _Rule, root: Mapping[str, Any]) -> list[_Problem]:
    """Every invalid field of a rule (the slow path, taken only when one failed)."""
    problems = []
    for _name, run in rule.runners:
        try:
            run(root)
        except _Problem as exc:
            problems.append(exc)
    return problems


def _runner(f: _Field, kind: str) -> Runner:
    """One closure per field: when → source → default/required → checks."""
    when, getter, default, required = f.when, f.getter, f.default, f.required
    lo, hi = f.fast_text if f.fast_text is not None else (0, -1)
    check = _checker(f, kind)

    def run(root: Mapping[str, Any]) -> FieldValue:
        try:
            if when is not None and not when(root):
                return None
            raw = getter(root)
        except ExpressionFailed as exc:
            raise _Problem(f, kind, str(exc), f.location) from exc
        if raw is None or raw == "" or (type(raw) is list and not raw):
            if default is None and required:
                raise _Problem(f, kind, "required, but the source gave no value", f.location)
            return default
        if type(raw) is str and lo <= len(raw) <= hi:
            return raw
        return check(raw)

    return run


def _checker(f: _Field, kind: str) -> Callable[[Any], FieldValue]:
    """A field's checks of a present raw value: catalog, type and limits, item by item
    for a list field (raises ``_Problem``)."""
    if not f.is_list:
        return lambda raw: _check(f, kind, raw)

    def check_items(raw: Any) -> FieldValue:
        items = raw if isinstance(raw, list) else [raw]
        return tuple(cast(Any, _check(f, kind, item)) for item in items if item is not None)

    return check_items


def _folded(f: _Field, kind: str, issues: list[Any], node: Any) -> Runner:
    """A constant field is computed (and checked) once, at load."""
    try:
        value = _runner(f, kind)({})
    except _Problem as exc:
        issues.append(node.issue(str(exc).split(": ", 1)[1], "const"))
        value = None
    return lambda _root: value


def _check(f: _Field, kind: str, raw: Any) -> FieldValue:
    value = raw
    if f.catalog is not None:
        value = f.catalog.translate(raw)
        if value is MISSING:
            reason = f"{mask(raw)} is not in {f.catalog.describe()}"
            raise _Problem(f, kind, reason, f.catalog_location)
        if value is None:
            return None
    if isinstance(value, _CONTAINERS):
        raise _Problem(f, kind, f"expected a single value, got {mask(value)}", f.check_location)
    try:
        return f.check(value)
    except BadValue as exc:
        raise _Problem(f, kind, f"{exc}; got {mask(value)}", f.check_location) from exc


def _compile_field(
    spec: FieldSpec, catalogs: Mapping[str, Catalog], issues: list[Any]
) -> _Field | None:
    data, node = spec.data, spec.node
    before = len(issues)
    getter = compile_source(data, node, catalogs, issues)
    type_name = data.get("type", "string")
    if type_name == "enum" and "values" not in data and "catalog" not in data:
        issues.append(node.issue("type 'enum' needs 'values' (or a 'catalog')", "type"))
    if "values" in data and type_name != "enum":
        issues.append(node.issue("'values' only goes with type 'enum'", "values", at="key"))
    for opt in ("max_length", "min_length"):
        if opt in data and type_name not in _LENGTH_TYPES:
            issues.append(
                node.issue(f"{opt!r} does not apply to type {type_name!r}", opt, at="key")
            )
    catalog = None
    if "catalog" in data:
        catalog = catalogs.get(data["catalog"])
        if catalog is None:
            known = ", ".join(catalogs) or "none defined"
            issues.append(
                node.issue(f"unknown catalog {data['catalog']!r}; known: {known}", "catalog")
            )
    values = data.get("values")
    if type_name == "enum" and values is None and catalog is not None:
        values = sorted(set(catalog.values.values()) | ({catalog.default} - {None}))
    check = make_coercer(
        type_name,
        max_length=data.get("max_length"),
        min_length=data.get("min_length"),
        values=values,
    )
    default: FieldValue = None
    if data.get("default") is not None:
        try:
            default = check(data["default"])
        except BadValue as exc:
            issues.append(node.issue(f"default does not fit type {type_name!r}: {exc}", "default"))
    when = None
    if "when" in data:
        when = compile_condition(data["when"], node.child("when"), catalogs, issues)
    if getter is None or len(issues) > before:
        return None
    return _Field(
        name=spec.name,
        location=_where(node, _VALUE_KEYS),
        check_location=_where(node, _CHECK_KEYS),
        catalog_location=_where(node, ("catalog",)),
        getter=getter,
        check=check,
        catalog=catalog,
        is_list=bool(data.get("list", False)),
        required=bool(data.get("required", False)),
        default=default,
        when=when,
        fast_text=_fast_text(type_name, catalog, data),
        write=cast(WriteMode, data.get("write") or "always"),
        spec=data,
        constant="const" in data and when is None,
    )


def _where(node: Node, keys: tuple[str, ...]) -> str:
    """``file:line`` of the field in the file that last set any of ``keys`` (an extending
    file's override, else where the field is defined)."""
    return node.home(*keys).loc(at="key").short


def _fast_text(
    type_name: str, catalog: Catalog | None, data: Mapping[str, Any]
) -> tuple[int, int] | None:
    if type_name != "string" or catalog is not None or data.get("list"):
        return None
    return (data.get("min_length") or 0, data.get("max_length") or (1 << 30))


def _compile_rule(spec: RuleSpec, catalogs: Mapping[str, Catalog], issues: list[Any]) -> _Rule:
    when = None
    if spec.when is not None:
        when = compile_condition(spec.when, spec.node.child("when"), catalogs, issues)
    kind = None if spec.kind == "none" else cast(OperationKind, spec.kind)
    fields, runners = [], []
    for field_spec in spec.fields:
        f = _compile_field(field_spec, catalogs, issues)
        if f is None:
            continue
        fields.append(f)
        run = (
            _folded(f, kind or "none", issues, field_spec.node)
            if f.constant
            else _runner(f, kind or "none")
        )
        runners.append((f.name, run))
    modes = MappingProxyType({f.name: f.write for f in fields if f.write != "always"})
    return _Rule(kind, spec.node.loc().short, spec.when, when, tuple(fields), tuple(runners), modes)


def compile_spec(spec: MappingSpec) -> CompiledMapping:
    """Compile a loaded spec; raise MappingErrors listing every expression/type problem."""
    issues: list[MappingIssue] = list(spec.issues)
    catalogs = {
        name: Catalog(c.name, c.values, c.default, c.has_default)
        for name, c in spec.catalogs.items()
    }
    rules = {
        event_type: tuple(_compile_rule(r, catalogs, cast(list[Any], issues)) for r in specs)
        for event_type, specs in spec.rules.items()
    }
    if issues:
        raise MappingErrors(issues)
    return CompiledMapping(
        spec.path,
        spec.connector or "",
        rules,
        extends=spec.extends,
        connector_loc=spec.connector_loc,
        match_order=spec.match_order,
    )


def load_mapping(path: str | Path, *, allow_base: bool = False) -> CompiledMapping:
    """Load, check and compile a mapping file (the files it extends, their includes) once,
    at start-up.

    Raises MappingErrors (a ConfigError) listing every problem with file:line:column, each
    in the file that holds it. A mapping needs a ``connector`` somewhere in its chain;
    ``allow_base`` also accepts a base mapping without one (to check it on its own).
    """
    return compile_spec(load_spec(path, allow_base=allow_base))
