"""The database layer: durable SQLite, all-or-nothing write units, clear failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from yiwang.db import Database, display_url
from yiwang.errors import DatabaseUnavailable, SettingsError
from yiwang.grid.models import Organisation
from yiwang.plugins.models import KernelCounter


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'y.db'}", busy_timeout_ms=4321)
    yield db
    db.dispose()


def pragma(conn: Any, name: str) -> Any:
    return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_sqlite_connections_are_wal_full_sync_with_foreign_keys_and_busy_timeout(
    sqlite_db: Database,
) -> None:
    for unit in (sqlite_db.read, sqlite_db.write):
        with unit() as s:
            conn = s.connection()
            assert pragma(conn, "journal_mode") == "wal"
            assert pragma(conn, "synchronous") == 2  # FULL
            assert pragma(conn, "foreign_keys") == 1
            assert pragma(conn, "busy_timeout") == 4321


def test_foreign_keys_are_enforced(yiwang_db: Database) -> None:
    with pytest.raises(IntegrityError):
        with yiwang_db.write() as s:
            s.add(Organisation(node_id=999_999, name="无主机构", kind="centre"))


def counters(db: Database) -> dict[str, int]:
    with db.read() as s:
        rows = s.execute(select(KernelCounter.name, KernelCounter.value)).all()  # type: ignore[call-overload]
        return {name: value for name, value in rows}


def test_write_unit_commits_on_success(yiwang_db: Database) -> None:
    with yiwang_db.write() as s:
        s.add(KernelCounter(name="a", value=1))
    assert counters(yiwang_db) == {"a": 1}


def test_write_unit_rolls_back_entirely_on_exception(yiwang_db: Database) -> None:
    with yiwang_db.write() as s:
        s.add(KernelCounter(name="kept", value=1))

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with yiwang_db.write() as s:
            s.add(KernelCounter(name="a", value=1))
            s.flush()
            s.execute(text("UPDATE kernel_counter SET value = 99 WHERE name = 'kept'"))
            s.add(KernelCounter(name="b", value=2))
            s.flush()
            raise Boom
    assert counters(yiwang_db) == {"kept": 1}


def test_read_unit_never_commits(yiwang_db: Database) -> None:
    with yiwang_db.read() as s:
        s.add(KernelCounter(name="a", value=1))
        s.flush()
    assert counters(yiwang_db) == {}


@pytest.mark.sqlite_only("SQLite's single writer lock")
def test_concurrent_sqlite_writers_wait_instead_of_failing(tmp_path: Path) -> None:
    # Each writer reads then writes (read-modify-write). With a deferred BEGIN both would take
    # a read snapshot and the second upgrade would fail at once with "database is locked";
    # BEGIN IMMEDIATE makes the second wait for the first, so no update is lost.
    db = Database(f"sqlite:///{tmp_path / 'c.db'}", busy_timeout_ms=10000)
    try:
        with db.write() as s:
            s.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
            s.execute(text("INSERT INTO counter VALUES (0)"))
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                start.wait()
                with db.write() as s:
                    n = s.execute(text("SELECT n FROM counter")).scalar_one()
                    time.sleep(0.2)
                    s.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        with db.read() as s:
            assert s.execute(text("SELECT n FROM counter")).scalar_one() == 2
    finally:
        db.dispose()


def test_unreachable_postgresql_is_unavailable_and_hides_the_password() -> None:
    db = Database("postgresql://gx:s3cret-pw@127.0.0.1:1/yiwang")
    try:
        with pytest.raises(DatabaseUnavailable) as exc:
            db.check()
    finally:
        db.dispose()
    message = str(exc.value)
    assert message.startswith("无法连接数据库 postgresql+psycopg://gx:***@127.0.0.1:1/yiwang")
    assert "s3cret-pw" not in message
    assert exc.value.exit_code == 3


def test_unopenable_sqlite_path_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "no-such-folder" / "y.db"
    db = Database(f"sqlite:///{path}")
    try:
        with pytest.raises(DatabaseUnavailable, match="无法连接数据库") as exc:
            db.check()
    finally:
        db.dispose()
    assert str(path) in str(exc.value)
    assert not path.parent.exists()


def test_unsupported_scheme_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="不支持的数据库类型 mysql"):
        Database("mysql://root:pw@localhost/yiwang")


@pytest.mark.parametrize(
    "url",
    ["not a url", "", "postgresql://gx:s3cret-pw@db:notaport/yiwang", "postgresql://gx:s3cret-pw@x@db:x/y"],
)
def test_malformed_url_is_a_settings_error_without_the_password(url: str) -> None:
    with pytest.raises(SettingsError, match="数据库地址格式错误") as exc:
        Database(url)
    assert "s3cret-pw" not in str(exc.value)


def test_postgres_scheme_uses_psycopg() -> None:
    db = Database("postgres://gx@127.0.0.1/yiwang")
    try:
        assert db.backend == "postgresql"
        assert db.url.drivername == "postgresql+psycopg"
    finally:
        db.dispose()


def test_display_url_hides_the_password() -> None:
    assert display_url("postgresql://gx:s3cret-pw@db/yiwang") == "postgresql://gx:***@db/yiwang"


def test_every_thread_may_hold_two_connections_at_once(yiwang_db: Database) -> None:
    """A unit of work may open a short read inside it (epoch checks, the calendar). With every
    request thread doing that at once, a pool smaller than two connections per thread waited
    for itself until the pool timeout (seen as 30 s stalls under load on PostgreSQL)."""
    threads = 12  # 24 connections at once: more than SQLAlchemy's default pool of 5 + 10 overflow
    db = Database(yiwang_db.url.render_as_string(hide_password=False), threads=threads)
    db.engine.pool._timeout = 5  # type: ignore[attr-defined]  # fail fast if it regresses
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def nested() -> None:
        try:
            with db.read() as outer:
                outer.execute(text("SELECT 1"))
                barrier.wait(timeout=20)  # every thread holds its first connection now
                with db.read() as inner:
                    inner.execute(text("SELECT 1"))
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    workers = [threading.Thread(target=nested) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    db.dispose()
    assert failures == []


def _plans(s: Any, statement: str) -> tuple[int, int]:
    """(generic, custom) plans the server made for ``statement`` prepared on this connection."""
    row = s.execute(
        text("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = :q"),
        {"q": statement},
    ).one()
    return int(row[0]), int(row[1])


def test_a_bulk_unit_plans_each_statement_for_the_table_as_it_is_now(yiwang_db: Database) -> None:
    """An import looks rows up in the table it is filling. On PostgreSQL the driver prepares a
    statement run five times and the server then kept one generic plan, made while the table
    was empty — a sequential scan — for the million lookups after: the import of 1 M persons
    crawled at ≈ 100 rows/s. A bulk unit (``write(bulk=True)``) plans every execution."""
    if yiwang_db.backend != "postgresql":
        pytest.skip("plan caching is PostgreSQL's (on SQLite bulk=True changes nothing)")
    lookup = "SELECT value FROM kernel_counter WHERE name = $1"
    seen: dict[bool, tuple[int, int]] = {}
    for bulk in (False, True):
        with yiwang_db.write(bulk=bulk) as s:
            for i in range(12):
                s.execute(text("SELECT value FROM kernel_counter WHERE name = :name"), {"name": f"n{i}"})
            seen[bulk] = _plans(s, lookup)
            s.connection().connection.dbapi_connection.execute("DEALLOCATE ALL")  # type: ignore[union-attr]
    assert seen[False][0] > 0, "the server would keep a generic plan (the case this guards against)"
    assert seen[True] == (0, seen[True][1]) and seen[True][1] >= 6


def test_a_table_filled_in_a_bulk_unit_is_looked_up_by_its_index(yiwang_db: Database) -> None:
    """Without statistics PostgreSQL takes each ``=`` on a non-unique column to match 0.5 % of the
    rows, so a lookup of many keys "matched" the whole table and was planned as a sequential scan:
    a 1 M-row import's per-batch lookups grew to 130 ms (≈ 2,200 rows/s in all). ``table_grew``
    re-analyses the table as it fills, inside the transaction."""
    from yiwang.api import table_grew

    if yiwang_db.backend != "postgresql":
        pytest.skip("statistics and ANALYZE are PostgreSQL's (table_grew does nothing on SQLite)")
    keys = ", ".join(f"'k{i}'" for i in range(0, 60_000, 1_200))  # 50 keys
    plans: dict[bool, str] = {}
    for noted in (False, True):
        with pytest.raises(_Rollback), yiwang_db.write(bulk=True) as s:
            conn = s.connection()
            # Like population_person.id_number_bidx: indexed, not unique, a new table.
            conn.exec_driver_sql("CREATE TEMP TABLE bulk_probe (k varchar(32) NOT NULL, v int)")
            conn.exec_driver_sql("CREATE INDEX bulk_probe_k ON bulk_probe (k)")
            for start in range(0, 60_000, 10_000):  # six batches, as an import writes them
                conn.exec_driver_sql(
                    "INSERT INTO bulk_probe (k, v) SELECT 'k' || g, g "
                    f"FROM generate_series({start}, {start + 9_999}) g"
                )
                if noted:
                    table_grew(s, "bulk_probe", 10_000)
            plan = conn.exec_driver_sql(f"EXPLAIN SELECT v FROM bulk_probe WHERE k IN ({keys})")
            plans[noted] = "\n".join(str(line) for line in plan.scalars())
            raise _Rollback
    assert "Seq Scan" in plans[False], plans[False]  # the case this guards against
    assert "Seq Scan" not in plans[True] and "bulk_probe_k" in plans[True], plans[True]


def test_table_grew_names_an_unknown_table(yiwang_db: Database) -> None:
    from yiwang.api import table_grew

    with yiwang_db.write() as s:
        if yiwang_db.backend == "postgresql":
            with pytest.raises(ValueError, match="没有这张表"):
                table_grew(s, "no_such_table", 10)
        else:
            table_grew(s, "no_such_table", 10)  # nothing to do on SQLite


class _Rollback(Exception):
    pass


def test_an_import_never_waits_for_another_imports_analysis_lock(yiwang_db: Database) -> None:
    """Two imports into one table: the first holds the table's analysis lock until it commits.
    The second skips its ANALYZE (and tries again 10,000 rows later) instead of waiting —
    possibly for minutes, or into a deadlock — and its own lock timeout is left as it was."""
    from yiwang.api import table_grew

    if yiwang_db.backend != "postgresql":
        pytest.skip("ANALYZE and its lock are PostgreSQL's")
    with yiwang_db.write() as s:
        s.connection().exec_driver_sql("CREATE TABLE bulk_probe_lock (k varchar(32), v int)")
    try:
        with yiwang_db.engine.connect() as other:
            other.exec_driver_sql("BEGIN")
            other.exec_driver_sql("ANALYZE bulk_probe_lock")  # held until this transaction ends
            started = time.perf_counter()
            with yiwang_db.write(bulk=True) as s:
                table_grew(s, "bulk_probe_lock", 50_000)
                # Skipped, still owed, tried again 10,000 rows later (not after every batch).
                assert s.info["yiwang.bulk_rows"]["bulk_probe_lock"] == (0.0, 50_000, 60_000)
                assert s.connection().exec_driver_sql("SHOW lock_timeout").scalar() == "0"
                s.connection().exec_driver_sql("INSERT INTO bulk_probe_lock VALUES ('a', 1)")
            assert time.perf_counter() - started < 5
            other.exec_driver_sql("ROLLBACK")
        with yiwang_db.read() as s:  # the skipping unit committed its rows
            assert s.connection().exec_driver_sql("SELECT count(*) FROM bulk_probe_lock").scalar() == 1
    finally:
        with yiwang_db.write() as s:
            s.connection().exec_driver_sql("DROP TABLE bulk_probe_lock")
