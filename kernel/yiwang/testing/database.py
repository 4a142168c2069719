"""Migrated test databases, one per backend per test worker, emptied between tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from yiwang.db import Database, migrate

POSTGRESQL_ENV = "YIWANG_TEST_POSTGRESQL"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL 测试未运行: {reason}"
    if _in_ci():
        pytest.fail(message + "（CI=true 时必须有 PostgreSQL）", pytrace=False)
    pytest.skip(message)


def schema_host() -> object:
    """A plugin host with every installed, valid plugin enabled: the test schema has all
    their tables, whatever a single test enables."""
    from yiwang import builtin
    from yiwang.plugins.loader import discover, load_plugins

    names = [n for n, c in sorted(discover().items()) if c.spec is not None and not c.errors]
    return load_plugins(names, builtin=builtin)


class TestDatabases:
    """Creates each backend's database on first use and migrates it once."""

    __test__ = False

    def __init__(self, folder: Path, worker: str) -> None:
        self.folder = folder
        self.worker = worker
        self._dbs: dict[str, Database] = {}
        self._failed: dict[str, str] = {}
        self._admin_url: str | None = None
        # The pid keeps concurrent test runs on one server apart.
        self._pg_name = f"yiwang_test_{worker}_{os.getpid()}".replace("-", "_")

    def get(self, backend: str) -> Database:
        if backend in self._failed:
            _unavailable(self._failed[backend])
        if backend not in self._dbs:
            try:
                url = self._create(backend)
            except _Unavailable as exc:
                self._failed[backend] = str(exc)
                _unavailable(str(exc))
            db = Database(url, busy_timeout_ms=10000, pool_size=5)
            migrate.upgrade(db, schema_host())  # type: ignore[arg-type]
            self._dbs[backend] = db
        return self._dbs[backend]

    def _create(self, backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{self.folder / 'test.db'}"
        admin = os.environ.get(POSTGRESQL_ENV, "")
        if not admin:
            raise _Unavailable(f"未设置环境变量 {POSTGRESQL_ENV}（例如 postgresql://postgres@127.0.0.1:5432/postgres）")
        url = make_url(admin)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{self._pg_name}"'))
        except OperationalError as exc:
            raise _Unavailable(f"无法连接 {url.render_as_string(hide_password=True)}: {exc.orig}") from None
        finally:
            engine.dispose()
        self._admin_url = url.render_as_string(hide_password=False)
        return url.set(database=self._pg_name).render_as_string(hide_password=False)

    def close(self) -> None:
        for db in self._dbs.values():
            db.dispose()
        if self._admin_url:
            engine = create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)'))
            finally:
                engine.dispose()


class _Unavailable(Exception):
    pass


def clean(db: Database) -> None:
    """Delete every row of every table but Alembic's, so each test starts empty."""
    with db.engine.begin() as conn:
        tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
        if not tables:
            return
        if db.backend == "postgresql":
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
            for table in tables:
                conn.exec_driver_sql(f'DELETE FROM "{table}"')
