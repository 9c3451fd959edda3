"""Engine and session scope for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import select
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create an engine tuned for this app's access pattern.

    SQLite gets WAL (readers never block the writer), a busy timeout instead of instant
    "database is locked" errors, and foreign keys on. Postgres connections are checked at
    checkout (see _ping_if_hung_up) so a restarted server costs one reconnect, not a
    failed request.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            # No pre-ping: a file cannot drop the connection, and the ping would cost a
            # statement per transaction.
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        writer = _WriterLock()
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", writer.begin)
        event.listen(engine, "commit", writer.end)
        event.listen(engine, "rollback", writer.end)
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=300,
        connect_args={"connect_timeout": 10, "application_name": "image-library"},
    )
    dialect = engine.dialect
    event.listen(engine, "checkout", lambda connection, *_: _ping_if_hung_up(dialect, connection))
    return engine


def _ping_if_hung_up(dialect: Any, dbapi_connection: Any) -> None:
    """Pre-ping, without the round trip while the connection is well: a server that
    restarted or ended our backend has told us so (its FATAL message, then the closed
    socket), so only a connection with something to read is pinged, and replaced when the
    ping fails. (SQLAlchemy's pool_pre_ping sends `SELECT 1` before every transaction:
    one more round trip in every transaction, on the ack's path too.)"""
    if not (dbapi_connection.closed or _has_something_to_read(dbapi_connection.fileno())):
        return
    try:
        alive = dialect.do_ping(dbapi_connection)
    except Exception:
        alive = False
    if not alive:
        raise exc.DisconnectionError("the database server closed this connection")


def _has_something_to_read(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def insert_unless_present(table: Any, *, returning: Any = None) -> dict[str, Any]:
    """INSERT ... ON CONFLICT DO NOTHING into `table`, built once, by dialect name: for
    statements run so often that building them per call would cost more than running
    them. The columns are the keys of the parameters it is run with."""
    statements = {}
    for dialect, insert_into in (("postgresql", pg_insert), ("sqlite", sqlite_insert)):
        statement = insert_into(table).on_conflict_do_nothing()
        statements[dialect] = statement if returning is None else statement.returning(returning)
    return statements


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin) so that writes take the lock
    # up front and concurrent writers wait on busy_timeout instead of failing mid-transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


_priority = threading.local()


@contextmanager
def priority_writes() -> Iterator[None]:
    """Transactions this thread begins inside this block go first when SQLite's write lock
    is contended in this process: the work Slack is waiting for (recording an event before
    the 3-second ack) overtakes background work (ingest, notifications). No effect on
    Postgres, which has no single writer."""
    previous = getattr(_priority, "on", False)
    _priority.on = True
    try:
        yield
    finally:
        _priority.on = previous


class _WriterLock:
    """SQLite has one writer at a time. Threads of this process queue on a lock for it
    instead of in SQLite's busy handler, which sleeps in growing steps (a thread that
    misses the lock can wait 100+ ms while others take it in between); BEGIN IMMEDIATE
    still guards against other processes.

    The lock is handed over in order, waking only the next waiter (not every waiter, who
    would all compete for the GIL to find out), and waiters marked with `priority_writes`
    come before the others."""

    KEY = "imglib_writer_lock"

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._urgent: deque[threading.Lock] = deque()
        self._normal: deque[threading.Lock] = deque()

    def _acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            ticket = threading.Lock()
            ticket.acquire()
            waiting = self._urgent if getattr(_priority, "on", False) else self._normal
            waiting.append(ticket)
        if ticket.acquire(timeout=timeout):
            return True  # handed over by _release: the lock is ours
        with self._mutex:
            if ticket in waiting:
                waiting.remove(ticket)
                return False
        return True  # handed over just as we gave up

    def _release(self) -> None:
        with self._mutex:
            queue = self._urgent or self._normal
            if queue:
                queue.popleft().release()  # stays held: now by that waiter
            else:
                self._held = False

    def begin(self, connection: Any) -> None:
        if not self._acquire(timeout=60):
            raise TimeoutError("waited 60 s for the SQLite write lock")
        connection.info[self.KEY] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.end(connection)
            raise

    def end(self, connection: Any) -> None:
        if connection.info.pop(self.KEY, False):
            self._release()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
