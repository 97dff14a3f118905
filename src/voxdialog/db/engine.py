"""The async engine and the session factory every repository call opens a session from."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as _create_sync_engine
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

from voxdialog.security.crypto import FieldCipher
from voxdialog.security.files import private_file, tighten_if_present

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # Durable across application crashes; only a power loss may roll back the last commits.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    # A write waits this long for the lock rather than fail: each message is stored before the
    # client hears of it, and under load (a busy event loop stretches every transaction) 5 s
    # queues lost messages.
    "PRAGMA busy_timeout=20000",
)
# A server process runs a few dozen concurrent voice sessions; each store call holds a
# connection only for one short transaction.
_POOL_SIZE = 10
_MAX_OVERFLOW = 10
# Reconnect before server-side or firewall idle timeouts (often one hour) silently cut a link.
_POOL_RECYCLE_S = 1800
APPLICATION_NAME = "voxdialog"

T = TypeVar("T")


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for in-memory databases."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


#: Execution option of `Database.reads` sessions (a plain deferred BEGIN on SQLite).
READ_ONLY = "voxdialog_read_only"


def _on_sqlite_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    # The driver's own transaction handling only emits BEGIN before DML; take it over so
    # SQLAlchemy's "begin" hook below decides (and so the PRAGMAs run outside a transaction).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(READ_ONLY):
        # A read needs no write lock: in WAL mode it sees the last commit and never waits
        # for a writer, so sign-ins and handshakes do not queue behind the sessions' writes.
        connection.exec_driver_sql("BEGIN")
        return
    # IMMEDIATE takes the write lock up front (waiting up to busy_timeout). A deferred
    # transaction that reads and then writes fails at once with SQLITE_BUSY when another
    # connection committed in between, which concurrent voice sessions do all the time.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _create_server_engine(url: URL) -> AsyncEngine:
    connect_args: dict[str, Any] = {}
    if url.get_driver_name() == "asyncpg":
        # Names the connections in pg_stat_activity, so operators can tell whose they are.
        connect_args["server_settings"] = {"application_name": APPLICATION_NAME}
    return _create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=_POOL_SIZE,
        max_overflow=_MAX_OVERFLOW,
        pool_recycle=_POOL_RECYCLE_S,
        connect_args=connect_args,
    )


def create_engine(url: str) -> AsyncEngine:
    """Create an async engine for ``url``.

    For SQLite the file and its directory are created owner-only (0600, 0700; existing ones
    of ours are tightened) and every new connection gets WAL journaling,
    ``synchronous=NORMAL``, foreign keys and a 20 s busy timeout; transactions begin
    ``IMMEDIATE`` so concurrent writers queue instead of failing.

    For a database server (PostgreSQL through asyncpg) connections are pooled (10, plus 10
    under load), checked before use, replaced after 30 minutes and named ``voxdialog``.

    Args:
        url: A SQLAlchemy async URL, e.g. ``sqlite+aiosqlite:////var/lib/voxdialog/voxdialog.db``
            or ``postgresql+asyncpg://voxdialog@db.internal:5432/voxdialog``.

    Returns:
        The engine; dispose of it (or close the owning `Database`) when done.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _create_server_engine(parsed)
    path = _sqlite_file(url)
    if path is not None:
        # Owner-only before SQLite opens it: its -wal and -shm files copy the file's mode.
        private_file(path)
        for suffix in ("-wal", "-shm", "-journal"):
            tighten_if_present(path.with_name(path.name + suffix))
    engine = _create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def _sqlite_writer_engine(url: str) -> Engine | None:
    """A synchronous engine on the same SQLite file, for `Database.write`; None if in memory."""
    if make_url(url).get_backend_name() != "sqlite" or _sqlite_file(url) is None:
        return None
    engine = _create_sync_engine(
        make_url(url).set(drivername="sqlite+pysqlite"),
        pool_size=1,
        # Used by the writer thread only; closed from whichever thread closes the database.
        connect_args={"check_same_thread": False},
    )
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


class Database:
    """The engine plus a session factory; one per process.

    Open one short-lived `AsyncSession` per operation (``async with db.sessions() as s``, or
    ``db.reads()`` for an operation that only reads) and never share a session between tasks.
    The writes of live sessions go through `write`, one transaction per call.

    Attributes:
        engine: The async engine.
        sessions: Factory of `AsyncSession` objects (``expire_on_commit=False``).
        reads: The same for read-only work.
    """

    def __init__(self, url: str) -> None:
        """Create the engine for ``url`` (no connection is made yet)."""
        self.url = url
        self.engine = create_engine(url)
        # Encrypts conversation content at rest when a key is configured (db/sealing.py).
        self.cipher: FieldCipher | None = None
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        #: Sessions for reads only: on SQLite they take no write lock (never write in one).
        self.reads: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        self._writer_engine = _sqlite_writer_engine(url)
        self._writer = (
            ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            if self._writer_engine is not None
            else None
        )

    async def write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one committed transaction and return what it returns.

        On SQLite the whole transaction runs in one writer thread, start to commit: through
        the async driver each statement is a round trip through the event loop, and on a busy
        loop every writer of the file waited for the lock that a slow transaction held across
        its round trips. Elsewhere (PostgreSQL) it runs on a pooled async connection.
        ``work`` only touches the database through the session it is given.
        """
        if self._writer is None:
            async with self.sessions() as session, session.begin():
                return await session.run_sync(work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._write_now, work)

    def _write_now(self, work: Callable[[Session], T]) -> T:
        with Session(self._writer_engine, expire_on_commit=False) as session, session.begin():
            return work(session)

    async def ping(self) -> None:
        """Run a trivial query; raises if the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close every pooled connection (after the writes in flight)."""
        if self._writer is not None:
            await asyncio.to_thread(self._writer.shutdown, wait=True)
        if self._writer_engine is not None:
            self._writer_engine.dispose()
        await self.engine.dispose()
