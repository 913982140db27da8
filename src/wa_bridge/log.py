"""Logging: structlog, JSON in production, console under ``wa-bridge dev``; PII never logged.

The redaction processor drops denied keys (phone numbers, names, message text, raw
payloads) wherever they sit in an event dict, and replaces ``contact_key`` with a short
keyed hash, so two log lines about one contact can still be matched.

Exceptions (``exc_info``, in structlog and in stdlib logging) are rendered by
:func:`format_exception`: the whole traceback (chained causes and groups included) with
every frame, but each message made log-safe by :func:`safe_message`. A message is text
anybody may have put together (a KeyError of a phone number, an f-string of a record, a
database's "Key (phone)=(...)"), so in the message of an exception that is not ours every
quoted literal and a database's DETAIL line are blanked, and in every message, ours too,
a run of digits that may be a phone number is replaced. The whole message stays where it
is needed: in the dead letter.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

import structlog

from wa_bridge.errors import WaBridgeError

__all__ = [
    "configure_logging",
    "format_exception",
    "get_logger",
    "hash_key",
    "mask_numbers",
    "redact",
    "safe_message",
]

DENIED_KEYS: Final = frozenset(
    {
        "phone_e164",
        "wa_id",
        "profile_name",
        "username",
        "text",
        "body",
        "raw",
        "caption",
        "phone",
        "from",
        "to",
        "recipient_id",
        "user_id",
        "parent_user_id",
        "subject",
        "email",
        "name",
        "data",
    }
)
HASHED_KEYS: Final = frozenset({"contact_key", "key"})
MAX_VALUE_CHARS: Final = 200
_HASH_SALT: Final = os.environ.get("WA_BRIDGE_LOG_SALT", "wa-bridge").encode()
# Seven or more digits, alone or spaced as people write numbers ("+52 1 (55) 5000-1234"),
# may be a phone number; an ISO date ("2026-06-10") or an IPv4 address is let through.
_NUMBER: Final = re.compile(r"\+?\(?\d(?:[ ().\-]{0,2}\d){6,}")
_NOT_A_PHONE: Final = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,3}(?:\.\d{1,3}){3}")
# A quoted literal in an exception message: a repr of a value (str, dict, list, a key).
_QUOTED: Final = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")
# PostgreSQL's DETAIL line quotes the row ("Key (phone)=(...)", "Failing row contains
# (...)"); asyncpg puts it in the message of its errors, which SQLAlchemy's chain to.
_DB_DETAIL: Final = re.compile(r"^(DETAIL:\s*).+$", re.MULTILINE)
MAX_MESSAGE_CHARS: Final = 500


def hash_key(value: str) -> str:
    """A short keyed hash of a personal identifier, stable within one deployment."""
    return "h:" + hmac.new(_HASH_SALT, value.encode(), hashlib.sha256).hexdigest()[:12]


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + "…"
    return value


def redact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``fields`` without personal data (recursively)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key in DENIED_KEYS:
            out[key] = "[redacted]"
        elif key in HASHED_KEYS and isinstance(value, str):
            out[key] = hash_key(value)
        else:
            out[key] = _clean(value)
    return out


def mask_numbers(text: str) -> str:
    """``text`` with every digit run that may be a phone number replaced by ``[number]``."""

    def masked(match: re.Match[str]) -> str:
        found = match.group()
        return found if _NOT_A_PHONE.fullmatch(found) else "[number]"

    return _NUMBER.sub(masked, text)


def safe_message(error: BaseException) -> str:
    """``error``'s message, fit for a log line (see the module docstring).

    Our own errors (:class:`WaBridgeError`) carry ids, never personal data, by contract:
    their message stays, digit runs masked. Any other error's message is foreign text:
    quoted literals become ``'…'`` as well, a database's ``DETAIL:`` line (the row) is
    blanked, and it is cut to ``MAX_MESSAGE_CHARS``.
    A CRM's own words (``CrmRejected.crm_error``) are never part of a message.
    """
    try:
        text = str(error)
    except Exception:  # a broken __str__ must not break a log line
        return "<unprintable>"
    return _safe_text(text, ours=isinstance(error, WaBridgeError))


def _safe_text(text: str, *, ours: bool) -> str:
    if not ours:
        text = _DB_DETAIL.sub(r"\1…", text)
        text = _QUOTED.sub(lambda m: m.group()[0] + "…" + m.group()[0], text)
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[:MAX_MESSAGE_CHARS] + "…"
    return mask_numbers(text)


def _make_safe(node: traceback.TracebackException, error: BaseException, seen: set[int]) -> None:
    """Replace the message (and notes) of ``node`` and of every exception it chains to."""
    if id(error) in seen:
        return
    seen.add(id(error))
    # TracebackException keeps the message it prints in ``_str`` (3.11 to 3.13)
    node._str = safe_message(error)  # type: ignore[attr-defined]
    notes = getattr(node, "__notes__", None)
    if notes:
        ours = isinstance(error, WaBridgeError)
        node.__notes__ = [_safe_text(str(n), ours=ours) for n in notes]
    if node.__cause__ is not None and error.__cause__ is not None:
        _make_safe(node.__cause__, error.__cause__, seen)
    if node.__context__ is not None and error.__context__ is not None:
        _make_safe(node.__context__, error.__context__, seen)
    for sub_node, sub in zip(node.exceptions or (), getattr(error, "exceptions", ()), strict=False):
        _make_safe(sub_node, sub, seen)


def format_exception(error: BaseException) -> str:
    """``error``'s traceback as Python prints it (chains, groups, every frame; never
    frame locals), each message made safe by :func:`safe_message`."""
    node = traceback.TracebackException.from_exception(error)
    _make_safe(node, error, set())
    return "".join(node.format()).rstrip("\n")


def _traceback_of(exc_info: Any) -> str | None:
    """:func:`format_exception` of what a log call's ``exc_info`` names (an exception, an
    ``exc_info`` tuple, or true for the one being handled), or None when it names none."""
    if isinstance(exc_info, BaseException):
        error: BaseException | None = exc_info
    elif isinstance(exc_info, tuple):
        error = exc_info[1] if len(exc_info) > 1 else None
    else:
        error = sys.exc_info()[1] if exc_info else None
    return format_exception(error) if error is not None else None


def _format_exc_info(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog's ``format_exc_info``, rendering with :func:`format_exception`."""
    rendered = _traceback_of(event_dict.pop("exc_info", None))
    if rendered is not None:
        event_dict["exception"] = rendered
    return event_dict


class _SafeFormatter(logging.Formatter):
    """stdlib logging's formatter with tracebacks rendered by :func:`format_exception`
    and digit runs masked in the line (a library may log a value it was given)."""

    def formatException(self, ei: Any) -> str:
        return _traceback_of(ei) or ""

    def format(self, record: logging.LogRecord) -> str:
        return mask_numbers(super().format(record))


def _redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event = event_dict.pop("event", None)
    cleaned = redact(event_dict)
    if event is not None:
        cleaned["event"] = event
    return cleaned


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure_logging(*, fmt: str = "json", level: str = "INFO") -> None:
    """Route structlog (and stdlib logging) to stderr with redaction always on."""
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_processor,
            _format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # sys.stderr looked up per logger, not bound once: a swapped stream (pytest's
        # capture, a closed pipe) never leaves loggers writing to a dead file
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SafeFormatter("%(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # a warning's text may quote a value (pydantic's serializer warnings do): through
    # logging, it is masked as every other line is
    logging.captureWarnings(True)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # httpx logs every request with its full URL at INFO: noise in a CLI, and a URL may
    # carry personal data (a SOQL query's e-mail, a key in a path)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    """A structlog logger bound to ``component=name``.

    If nothing configured logging yet (a library caller, a test), the redacting JSON
    configuration is installed first: structlog's own default prints frame locals with
    tracebacks, and frame locals hold personal data.
    """
    if not structlog.is_configured():
        configure_logging()
    return structlog.get_logger(component=name)
