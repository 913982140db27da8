"""A small SOQL: what a connector may rely on, and a loud refusal of everything else.

Understood::

    SELECT f1, f2 | COUNT() FROM SObject
      [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]
    cond := term (AND term)* | term (OR term)*        -- mixing needs parentheses
    term := NOT term | ( cond ) | f op literal | f [NOT] IN (literal, …) | f LIKE 'x%'
    op   := = != <> < <= > >=      literal := 'string' | number | true | false | null
                                              | 2026-05-04 | 2026-05-04T10:30:00Z

Keywords and field names are case-insensitive; string comparisons too (as in SOQL).
Relationship paths (``Contact.Name``), functions, GROUP BY and date literals such as
``LAST_N_DAYS:7`` are refused: :class:`SoqlError` (a 400 ``MALFORMED_QUERY``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

Row = dict[str, Any]
Getter = Callable[[Row, str], Any]


class SoqlError(ValueError):
    """Not SOQL this stand-in understands."""


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "in",
    "like",
    "order",
    "by",
    "asc",
    "desc",
    "nulls",
    "first",
    "last",
    "limit",
    "offset",
    "true",
    "false",
    "null",
    "count",
}


@dataclass(frozen=True)
class Token:
    kind: str  # string, datetime, date, number, op, punct, name
    text: str


def unquote(literal: str, *, like: bool = False) -> str:
    out = []
    i = 1
    while i < len(literal) - 1:
        c = literal[i]
        if c == "\\":
            nxt = literal[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif like and nxt in "%_":
                out.append("\\" + nxt)
            else:
                raise SoqlError(f"invalid escape sequence \\{nxt}")
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    tokens = []
    pos = 0
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None:
            raise SoqlError(f"unexpected character {text[pos]!r} at {pos}")
        kind = found.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, found.group()))
        pos = found.end()
    return tokens


# --- the tree -------------------------------------------------------------------------
@dataclass
class Compare:
    field: str
    op: str  # = != < <= > >= in notin like
    values: list[Any]


@dataclass
class Logic:
    op: str  # and, or, not
    parts: list[Any]


@dataclass
class Order:
    field: str
    descending: bool = False
    nulls_last: bool | None = None


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Any = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    count: bool = False

    def referenced(self) -> list[str]:
        names = list(self.fields) + [o.field for o in self.order]

        def walk(node: Any) -> None:
            if isinstance(node, Compare):
                names.append(node.field)
            elif isinstance(node, Logic):
                for part in node.parts:
                    walk(part)

        walk(self.where)
        return names


class Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self, offset: int = 0) -> Token | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def at(self, text: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token.text == text

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "name" and token.text.lower() in words

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise SoqlError("unexpected end of query")
        self.pos += 1
        return token

    def expect(self, word: str) -> None:
        token = self.take()
        if token.text.lower() != word:
            raise SoqlError(f"expected {word.upper()}, found {token.text!r}")

    def name(self) -> str:
        token = self.take()
        if token.kind != "name" or token.text.lower() in KEYWORDS:
            raise SoqlError(f"expected a field or object name, found {token.text!r}")
        if "." in token.text:
            raise SoqlError(f"relationship paths are not supported: {token.text}")
        return token.text

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    # --- clauses ----------------------------------------------------------------------
    def select_list(self) -> tuple[list[str], bool]:
        if self.keyword("count") and self.at("(", 1):
            self.take()
            self.take()
            if self.take().text != ")":
                raise SoqlError("COUNT() takes no field here")
            return [], True
        names = [self.name()]
        while self.at(","):
            self.take()
            names.append(self.name())
        return names, False

    def condition(self) -> Any:
        parts = [self.unary()]
        joiner = None
        while self.keyword("and", "or"):
            word = self.take().text.lower()
            if joiner is not None and word != joiner:
                raise SoqlError("AND and OR mixed without parentheses")
            joiner = word
            parts.append(self.unary())
        return parts[0] if joiner is None else Logic(joiner, parts)

    def unary(self) -> Any:
        if self.keyword("not"):
            self.take()
            return Logic("not", [self.unary()])
        if self.at("("):
            self.take()
            inner = self.condition()
            if self.take().text != ")":
                raise SoqlError("missing )")
            return inner
        return self.comparison()

    def comparison(self) -> Compare:
        name = self.name()
        if self.keyword("not"):
            self.take()
            self.expect("in")
            return Compare(name, "notin", self.literal_list())
        if self.keyword("in"):
            self.take()
            return Compare(name, "in", self.literal_list())
        if self.keyword("like"):
            self.take()
            token = self.take()
            if token.kind != "string":
                raise SoqlError("LIKE needs a string")
            return Compare(name, "like", [unquote(token.text, like=True)])
        token = self.take()
        if token.kind != "op":
            raise SoqlError(f"expected an operator after {name}, found {token.text!r}")
        op = "!=" if token.text == "<>" else token.text
        return Compare(name, op, [self.literal()])

    def literal_list(self) -> list[Any]:
        if self.take().text != "(":
            raise SoqlError("IN needs a parenthesized list")
        values = [self.literal()]
        while True:
            token = self.take()
            if token.text == ")":
                return values
            if token.text != ",":
                raise SoqlError(f"expected , or ) in a list, found {token.text!r}")
            values.append(self.literal())

    def literal(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return unquote(token.text)
        if token.kind == "number":
            return float(token.text)
        if token.kind == "date":
            return date.fromisoformat(token.text)
        if token.kind == "datetime":
            return _parse_datetime(token.text)
        if token.kind == "name" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        if token.kind == "name" and token.text.lower() == "null":
            return None
        raise SoqlError(f"not a literal: {token.text!r}")

    def order_list(self) -> list[Order]:
        orders = []
        while True:
            item = Order(self.name())
            if self.keyword("asc", "desc"):
                item.descending = self.take().text.lower() == "desc"
            if self.keyword("nulls"):
                self.take()
                if not self.keyword("first", "last"):
                    raise SoqlError("NULLS needs FIRST or LAST")
                item.nulls_last = self.take().text.lower() == "last"
            orders.append(item)
            if not self.at(","):
                return orders
            self.take()

    def integer(self) -> int:
        token = self.take()
        if token.kind != "number" or "." in token.text or token.text.startswith("-"):
            raise SoqlError(f"expected a whole number, found {token.text!r}")
        return int(token.text)

    def tail(self, query: Query) -> None:
        """WHERE, ORDER BY, LIMIT, OFFSET (each optional, in this order)."""
        if self.keyword("where"):
            self.take()
            query.where = self.condition()
        if self.keyword("order"):
            self.take()
            self.expect("by")
            query.order = self.order_list()
        if self.keyword("limit"):
            self.take()
            query.limit = self.integer()
        if self.keyword("offset"):
            self.take()
            query.offset = self.integer()
            if query.offset > 2000:
                raise SoqlError("OFFSET is at most 2000")


def parse(text: str) -> Query:
    parser = Parser(tokenize(text))
    parser.expect("select")
    fields, count = parser.select_list()
    parser.expect("from")
    query = Query(fields, parser.name(), count=count)
    parser.tail(query)
    if not parser.done():
        raise SoqlError(f"unexpected {parser.take().text!r}")
    return query


# --- evaluation -----------------------------------------------------------------------
def _parse_datetime(text: str) -> datetime:
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _coerce(stored: Any, wanted: Any) -> tuple[Any, Any]:
    """Both values in one comparable form (case-folded strings, numbers, datetimes)."""
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return stored, wanted
    if isinstance(wanted, float):
        try:
            return float(stored), wanted
        except (TypeError, ValueError):
            return str(stored).lower(), str(wanted)
    if isinstance(wanted, datetime | date):
        try:
            when = (
                _parse_datetime(str(stored))
                if "T" in str(stored)
                else date.fromisoformat(str(stored)[:10])
            )
        except ValueError:
            return str(stored).lower(), str(wanted).lower()
        if isinstance(wanted, datetime) and not isinstance(when, datetime):
            when = datetime(when.year, when.month, when.day, tzinfo=UTC)
        if not isinstance(wanted, datetime) and isinstance(when, datetime):
            when = when.date()
        return when, wanted
    return str(stored).lower(), str(wanted).lower()


def _like(value: Any, pattern: str) -> bool:
    regex = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if c == "%" else "." if c == "_" else re.escape(c)
        i += 1
    return (
        value is not None and re.fullmatch(regex, str(value), re.IGNORECASE | re.DOTALL) is not None
    )


def matches(node: Any, row: Row, get: Getter) -> bool:
    if node is None:
        return True
    if isinstance(node, Logic):
        if node.op == "not":
            return not matches(node.parts[0], row, get)
        results = (matches(part, row, get) for part in node.parts)
        return all(results) if node.op == "and" else any(results)
    value = get(row, node.field)
    if node.op == "like":
        return _like(value, node.values[0])
    if node.op in ("in", "notin"):
        inside = any(_equal(value, v) for v in node.values)
        return inside if node.op == "in" else not inside
    wanted = node.values[0]
    if node.op == "=":
        return _equal(value, wanted)
    if node.op == "!=":
        return not _equal(value, wanted)
    if value is None or wanted is None:
        return False
    a, b = _coerce(value, wanted)
    try:
        return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[node.op])
    except TypeError:
        return False


def _equal(value: Any, wanted: Any) -> bool:
    if value is None or value == "" or wanted is None:
        return (value is None or value == "") and wanted is None
    a, b = _coerce(value, wanted)
    return bool(a == b)


def run(query: Query, rows: list[Row], get: Getter) -> list[Row]:
    """The rows ``query`` selects, ordered and paged (fields are not projected here)."""
    found = [r for r in rows if matches(query.where, r, get)]
    for order in reversed(query.order):
        nulls_last = order.nulls_last if order.nulls_last is not None else order.descending
        present = [r for r in found if get(r, order.field) not in (None, "")]
        absent = [r for r in found if get(r, order.field) in (None, "")]

        def key(r: Row, name: str = order.field) -> tuple[int, Any]:
            value = get(r, name)
            if isinstance(value, bool):
                return (0, int(value))
            if isinstance(value, int | float):
                return (1, float(value))
            return (2, str(value).lower())

        present.sort(key=key, reverse=order.descending)
        found = present + absent if nulls_last else absent + present
    found = found[query.offset :]
    return found if query.limit is None else found[: query.limit]
