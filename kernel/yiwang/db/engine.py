"""Database engines: embedded SQLite by default, PostgreSQL (psycopg 3) in production.

SQLite runs in WAL mode with ``synchronous=FULL``, a busy timeout and foreign keys on. The
driver's own transaction handling is switched off so we issue ``BEGIN`` ourselves: write units
start with ``BEGIN IMMEDIATE`` and take the write lock up front, which turns "database is locked"
deadlocks between two upgrading readers into an orderly wait.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlmodel import Session

from yiwang.errors import DatabaseUnavailable, SettingsError

_WRITE = "yiwang_write"


def normalise_url(url: str) -> URL:
    """Parse a database URL, choosing psycopg 3 for ``postgresql://``."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a non-numeric port
        shown = re.sub(r"(://[^:/@]*:).*@", r"\1***@", url)  # never echo a password
        raise SettingsError(f"数据库地址格式错误: {shown!r}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise SettingsError(f"不支持的数据库类型 {parsed.get_backend_name()}（仅支持 sqlite 与 postgresql）")
    return parsed


def display_url(url: URL | str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_engine(url: URL, busy_timeout_ms: int, echo: bool, connections: int) -> Engine:
    memory = url.database in (None, "", ":memory:")  # one shared connection: no pool to size
    pool = {} if memory else {"pool_size": connections, "max_overflow": connections}
    engine = create_engine(
        url,
        echo=echo,
        **pool,
        connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, see _on_begin
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgresql_engine(url: URL, pool_size: int, echo: bool, connections: int) -> Engine:
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=max(0, connections - pool_size),
        pool_pre_ping=True,
    )  # fmt: skip


class Database:
    """One database: its engine and how to open read and write units of work.

    Parameters
    ----------
    url: SQLAlchemy URL (``sqlite:///path`` or ``postgresql://…``).
    busy_timeout_ms: SQLite lock wait.
    pool_size: PostgreSQL connection pool size.
    echo: log SQL.
    """

    def __init__(
        self, url: str, *, busy_timeout_ms: int = 10000, pool_size: int = 10, echo: bool = False,
        threads: int = 16,
    ) -> None:
        self.url = normalise_url(url)
        self.backend = self.url.get_backend_name()
        try:
            # A unit of work may open a short read inside it (epoch checks, the calendar), so a
            # thread can hold two connections: a pool smaller than that deadlocks under load.
            connections = 2 * threads + 2
            if self.backend == "sqlite":
                self.engine = _sqlite_engine(self.url, busy_timeout_ms, echo, connections)
            else:
                self.engine = _postgresql_engine(self.url, pool_size, echo, connections)
        except NoSuchModuleError as exc:
            raise SettingsError(f"数据库驱动不可用: {exc}") from None
        self._write_engine = self.engine.execution_options(**{_WRITE: True})
        # SQLite has one writer: threads of this process queue here, in order, instead of all
        # spinning in SQLite's busy handler (which sleeps in growing steps and starves some
        # waiters under load). Other processes still wait through busy_timeout.
        self._write_gate: threading.RLock | None = threading.RLock() if self.backend == "sqlite" else None

    @property
    def display_url(self) -> str:
        return display_url(self.url)

    def check(self) -> None:
        """Connect once; raise DatabaseUnavailable with the reason if that fails."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseUnavailable(f"无法连接数据库 {self.display_url}: {reason}") from None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; never commits."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self, *, bulk: bool = False) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception.

        On SQLite it holds the write lock from its first statement, so keep it short.

        ``bulk=True`` for a unit of work that fills a table while it queries it (an import): on
        PostgreSQL every statement is then planned for its own execution. The driver prepares a
        statement run five times, and the server may then keep one generic plan — made while the
        table was still small (a sequential scan) and kept as it grows to millions of rows, each
        lookup then reading the whole table.
        """
        gate = self._write_gate or contextlib.nullcontext()
        with gate, Session(self._write_engine, expire_on_commit=False) as session:
            with session.begin():
                if bulk and self.backend == "postgresql":
                    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
                yield session

    def dispose(self) -> None:
        self.engine.dispose()
