"""Logging: structlog, JSON in production, console under ``wa-bridge dev``; PII never logged.

The redaction processor drops denied keys (phone numbers, names, message text, raw
payloads) wherever they sit in an event dict, and replaces ``contact_key`` with a short
keyed hash, so two log lines about one contact can still be matched.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

import structlog

__all__ = ["configure_logging", "get_logger", "hash_key", "redact"]

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
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # sys.stderr looked up per logger, not bound once: a swapped stream (pytest's
        # capture, a closed pipe) never leaves loggers writing to a dead file
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
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
