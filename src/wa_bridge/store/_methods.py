"""Store methods that are a store module's function run on a connection of their own.

``OpsStore`` and ``SqlStore`` declare such a method as ``name = query(module.function)``
(or ``stamped``, for a write that takes the time): it takes the function's arguments after
the connection, opens a connection (a transaction for a write) and names itself in
``StoreUnavailable`` errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wa_bridge.store.db import store_errors

__all__ = ["Host", "Method", "Query", "connection", "query", "stamped"]

P = ParamSpec("P")
T = TypeVar("T")
Query = Callable[Concatenate[AsyncConnection, P], Awaitable[T]]  # a store module's function


@asynccontextmanager
async def connection(
    engine: AsyncEngine, what: str, *, write: bool
) -> AsyncIterator[AsyncConnection]:
    """A connection of its own (a transaction when ``write``); ``what`` names it in
    StoreUnavailable errors."""
    with store_errors(what):
        async with engine.begin() if write else engine.connect() as conn:
            yield conn


class Host(Protocol):
    """What a class with such methods provides: its engine and its clock."""

    engine: AsyncEngine

    def _now(self) -> datetime: ...


class Method(Generic[P, T]):
    """The method: ``run(host, conn, ...)`` on a connection of its own (a transaction when
    ``write``); errors name the method."""

    def __init__(
        self, run: Callable[Concatenate[Host, AsyncConnection, P], Awaitable[T]], *, write: bool
    ) -> None:
        self._run = run
        self._write = write
        self._what = run.__name__

    def __set_name__(self, owner: type[Host], name: str) -> None:
        self._what = name

    def __get__(self, host: Host, owner: type[Host]) -> Callable[P, Coroutine[Any, Any, T]]:
        run, what, write = self._run, self._what, self._write

        async def call(*args: P.args, **kwargs: P.kwargs) -> T:
            async with connection(host.engine, what, write=write) as conn:
                return await run(host, conn, *args, **kwargs)

        return call


def query(function: Query[P, T], *, write: bool = False) -> Method[P, T]:
    """A method that takes the arguments of the store module's ``function``."""

    async def run(host: Host, conn: AsyncConnection, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await function(conn, *args, **kwargs)

    return Method(run, write=write)


def stamped(
    change: Callable[Concatenate[AsyncConnection, datetime, P], Awaitable[T]],
) -> Method[P, T]:
    """A write whose store function takes the time after the connection: the host's clock
    gives it; the method takes the rest of ``change``'s arguments."""

    async def run(host: Host, conn: AsyncConnection, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await change(conn, host._now(), *args, **kwargs)

    return Method(run, write=True)
