"""Engines and the error boundary: every database failure leaves here as a wa-bridge error.

URLs are SQLAlchemy async URLs (``postgresql+asyncpg://…``, ``sqlite+aiosqlite:///…``).
A PostgreSQL URL may carry ``?search_path=<schema>``: it is taken off the URL and sent as
a server setting, so tests (and deployments sharing a database) can use a schema of their
own through a plain URL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import orjson
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from wa_bridge.errors import ConfigError, StoreUnavailable

__all__ = [
    "DEFAULT_SQLITE_NAME",
    "DEV_DATA_DIR",
    "create_engine",
    "default_database_url",
    "resolve_database_url",
    "sqlstate_of",
    "state_database_url",
    "store_errors",
]

DEFAULT_SQLITE_NAME: Final = "wa-bridge.db"
# Where the SQLite state lives when WA_BRIDGE_DATABASE_URL is unset (relative: the
# directory a command runs in, as `wa-bridge dev` makes it).
DEV_DATA_DIR: Final = Path(".wa-bridge")


def default_database_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file in the ``wa-bridge dev`` data directory."""
    return f"sqlite+aiosqlite:///{data_dir / DEFAULT_SQLITE_NAME}"


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    """``settings.database_url`` when set, else the embedded SQLite file under ``data_dir``."""
    return database_url or default_database_url(data_dir)


def state_database_url(database_url: str | None) -> str:
    """The state database's URL: ``database_url`` when set, else the embedded SQLite file
    under :data:`DEV_DATA_DIR`, whose directory this makes (as ``wa-bridge dev`` does)."""
    if database_url is None:
        DEV_DATA_DIR.mkdir(exist_ok=True)
    return resolve_database_url(database_url, DEV_DATA_DIR)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _split_search_path(url: URL) -> tuple[URL, str | None]:
    search_path = url.query.get("search_path")
    if search_path is None:
        return url, None
    if isinstance(search_path, tuple):
        search_path = search_path[-1]
    return url.difference_update_query(["search_path"]), search_path


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` with reconnects (a liveness ping on checkout: always on
    SQLite, after an idle spell on PostgreSQL), sane SQLite pragmas, and errors that never
    quote a statement's parameters.

    Raises ConfigError for a URL that is not an async PostgreSQL or SQLite URL.
    """
    try:
        parsed = make_url(url)
    except exc.ArgumentError as err:
        raise ConfigError(f"WA_BRIDGE_DATABASE_URL: not a database URL ({err})") from err
    backend = parsed.get_backend_name()
    # A failed statement's error text leaves its parameters out: they are rows of contacts,
    # messages and identities (personal data), and that text reaches logs and dead letters.
    kwargs = {"hide_parameters": True, **kwargs}
    if backend == "postgresql":
        parsed, search_path = _split_search_path(parsed)
        # Plan each statement for its actual arrays: asyncpg prepares statements, and after
        # five runs PostgreSQL may switch to a generic plan that guesses an array parameter
        # holds 10 values; for a 2,000-id batch that picked a nested loop scanning
        # `identities` once per id (~0.4 s a batch instead of ~5 ms). Planning a batch
        # statement costs well under a millisecond.
        server_settings = {"plan_cache_mode": "force_custom_plan"}
        if search_path:
            server_settings["search_path"] = search_path
        connect_args: dict[str, Any] = {"timeout": 10, "server_settings": server_settings}
        engine = create_async_engine(
            parsed, json_serializer=_json_dumps, connect_args=connect_args, **kwargs
        )
        _ping_when_idle(engine)
        return engine
    if backend == "sqlite":
        # SQLite has one writer: with a pool of several connections, concurrent partition
        # transactions queued inside SQLite's busy-wait loop (bench/e2e.py saw p99 > 3 s).
        # One connection makes them queue in the pool instead, in arrival order.
        if parsed.database not in (None, "", ":memory:"):  # memory databases use StaticPool
            kwargs = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60, **kwargs}
        engine = create_async_engine(
            parsed, pool_pre_ping=True, json_serializer=_json_dumps, **kwargs
        )
        _sqlite_pragmas(engine)
        return engine
    raise ConfigError(
        f"WA_BRIDGE_DATABASE_URL: unsupported database {backend!r}; "
        "use postgresql+asyncpg://… or sqlite+aiosqlite:///…"
    )


# A pooled connection checked in less than this long ago is handed out without a liveness
# ping. SQLAlchemy's pool_pre_ping pings on every checkout, and with asyncpg a ping is three
# round trips (BEGIN, an empty query, ROLLBACK): 3 of a worker batch's ~18. A connection in
# steady use that died all the same fails its statement like a server dying mid-batch
# (StoreUnavailable; the pool then replaces every connection as old, the batch is retried).
PING_IDLE_S: Final = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """pool_pre_ping for connections that sat idle in the pool (see PING_IDLE_S)."""
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    @event.listens_for(sync_engine, "connect")
    def _on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.info["pooled_at"] = time.monotonic()

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["pooled_at"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        pooled_at = record.info.get("pooled_at")
        if pooled_at is not None and time.monotonic() - pooled_at < PING_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as err:  # the pool discards it and checks out another
            raise exc.DisconnectionError("stale pooled connection") from err


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling starts transactions late (at the first write);
    # we emit BEGIN ourselves so a batch's reads and writes share one transaction.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


# SQLSTATE classes of a server that cannot work now, whatever the statement: connection
# exception (08), insufficient resources (53: disk full, out of memory, too many
# connections), operator intervention at shutdown or start-up (57P01-57P03), system error
# (58: I/O error). asyncpg's errors for these reach SQLAlchemy as a plain DBAPIError.
OUTAGE_SQLSTATES: Final = ("08", "53", "57P01", "57P02", "57P03", "58")


def sqlstate_of(err: BaseException) -> str:
    """The SQLSTATE of the driver's error that ``err`` wraps ("" when it carries none)."""
    sqlstate = getattr(getattr(err, "orig", None), "sqlstate", None)
    return sqlstate if isinstance(sqlstate, str) else ""


def is_connection_error(err: BaseException) -> bool:
    """True when ``err`` means the database is unreachable, the connection was lost, or
    the server cannot work now (disk full, shutting down): an outage to wait out, not a
    fault of the statement."""
    if isinstance(err, OSError | TimeoutError):
        return True
    if isinstance(err, exc.DBAPIError) and err.connection_invalidated:
        return True
    if sqlstate_of(err).startswith(OUTAGE_SQLSTATES):
        return True
    return isinstance(err, exc.OperationalError | exc.InterfaceError | exc.DisconnectionError)


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Turn connection failures into StoreUnavailable (chained); other errors pass through."""
    try:
        yield
    except exc.SQLAlchemyError as err:
        if is_connection_error(err):
            raise StoreUnavailable(
                f"state database unavailable during {what}; retry later ({type(err).__name__})"
            ) from err
        raise
    except (OSError, TimeoutError) as err:
        raise StoreUnavailable(
            f"state database unreachable during {what}; retry later ({type(err).__name__})"
        ) from err
