"""A small SOSL: ``FIND {term} [IN ALL|NAME|EMAIL|PHONE FIELDS] RETURNING …``.

Understood::

    FIND {term} [IN <group> FIELDS]
      RETURNING SObject[(f1, f2 [WHERE cond] [ORDER BY …] [LIMIT n])] [, SObject(…)]
      [LIMIT n]

The term sits in braces; a reserved character in it (``? & | ! { } [ ] ( ) ^ ~ * : \\ " '
+ -``) must be escaped with a backslash (CRM.md), except ``*`` (a trailing wildcard) and
``"`` around a phrase: anything else is :class:`SoslError` (400 ``MALFORMED_SEARCH``).
Words are ANDed; ``OR`` between words makes alternatives.

Phones match regardless of formatting: the term's digits against the field's digits,
or against its national number when the field was typed with ``+`` (and the other way
round); that Salesforce also matches on the national number is this stand-in's reading
of "finds phones regardless of formatting" (*unverified* beyond the digits).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

import phonenumbers

from .soql import Parser, Query, SoqlError, tokenize

_RESERVED = set("?&|!{}[]()^~*:\\\"'+-")


class SoslError(ValueError):
    """Not SOSL this stand-in understands."""


@dataclass
class Returning:
    sobject: str
    query: Query


@dataclass
class Search:
    alternatives: list[list[str]]  # OR of (AND of words), words unescaped
    group: str = "ALL"
    returning: list[Returning] = field(default_factory=list)
    limit: int | None = None


def _term(text: str) -> tuple[str, str]:
    """The raw term between the braces after FIND, and the rest of the query."""
    found = re.match(r"\s*FIND\s*\{", text, re.IGNORECASE)
    if found is None:
        raise SoslError("No search term found. The search term must be enclosed in braces.")
    i = found.end()
    out = []
    quoted = False
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text):
                raise SoslError("a backslash ends the term")
            out.append("\\" + text[i + 1])
            i += 2
            continue
        if c == "}" and not quoted:
            return "".join(out), text[i + 1 :]
        if c == '"':
            quoted = not quoted
        elif c in _RESERVED and c != "*" and not quoted:
            raise SoslError(f"reserved character {c!r} in the search term must be escaped")
        out.append(c)
        i += 1
    raise SoslError("the search term has no closing brace")


def _words(term: str) -> list[list[str]]:
    alternatives: list[list[str]] = [[]]
    for raw in re.findall(r'"[^"]*"|(?:\\.|[^\s"])+', term):
        if raw == "OR":
            alternatives.append([])
            continue
        if raw in ("AND",):
            continue
        word = re.sub(r"\\(.)", r"\1", raw.strip('"'))
        if "*" in word.rstrip("*"):
            raise SoslError("a wildcard may only end a word here")
        alternatives[-1].append(word)
    if any(not alt for alt in alternatives):
        raise SoslError("an empty search term")
    if any(len("".join(a).replace("*", "")) < 2 for a in alternatives):
        raise SoslError("search terms need at least 2 characters")
    return alternatives


def parse(text: str) -> Search:
    raw, rest = _term(text)
    search = Search(_words(raw))
    try:
        parser = Parser(tokenize(rest))
        if parser.keyword("in"):
            parser.take()
            group = parser.take().text.upper()
            if group not in ("ALL", "NAME", "EMAIL", "PHONE"):
                raise SoslError(f"unsupported search group {group}")
            parser.expect("fields")
            search.group = group
        parser.expect("returning")
        while True:
            sobject = parser.name()
            query = Query(["Id"], sobject)
            if parser.at("("):
                parser.take()
                fields, _ = parser.select_list()
                query.fields = fields
                parser.tail(query)
                if parser.take().text != ")":
                    raise SoslError("missing ) after the returned fields")
            search.returning.append(Returning(sobject, query))
            if not parser.at(","):
                break
            parser.take()
        if parser.keyword("limit"):
            parser.take()
            search.limit = parser.integer()
        if not parser.done():
            raise SoslError(f"unexpected {parser.take().text!r}")
    except SoqlError as exc:
        raise SoslError(str(exc)) from exc
    return search


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def phone_forms(text: str) -> set[str]:
    """The digit strings a phone value (or a searched one) is found by."""
    forms = {_digits(text)}
    stripped = text.strip()
    if stripped.startswith("+"):
        try:
            number = phonenumbers.parse(stripped, None)
        except phonenumbers.NumberParseException:
            return forms - {""}
        forms.add(phonenumbers.national_significant_number(number))
    return forms - {""}


def phone_matches(value: str, alternative: list[str]) -> bool:
    term = " ".join(alternative)
    if term.endswith("*"):
        prefix = _digits(term)
        return bool(prefix) and any(f.startswith(prefix) for f in phone_forms(value))
    return bool(phone_forms(value) & phone_forms(term))


def text_matches(value: str, alternative: list[str]) -> bool:
    tokens = {value.lower(), *(t for t in re.split(r"[^\w@.+-]+", value.lower()) if t)}
    return all(
        any(fnmatch.fnmatchcase(token, word.lower()) for token in tokens) for word in alternative
    )
