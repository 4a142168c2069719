"""Migrations: one branch per owner, models equal to migrations, upgrades that finish the job."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from yiwang import builtin
from yiwang.db import Database, migrate
from yiwang.plugins.host import KERNEL, PluginHost
from yiwang.plugins.loader import discover, load_plugins
from yiwang.testing.database import POSTGRESQL_ENV

_numbers = itertools.count()


def installed_plugins() -> list[str]:
    return sorted(n for n, c in discover().items() if c.spec is not None and not c.errors)


def host_with(*plugins: str) -> PluginHost:
    return load_plugins(plugins, builtin=builtin)


@pytest.fixture
def fresh_db(yiwang_backend: str, yiwang_db: Database, tmp_path: Path) -> Iterator[Database]:
    """An empty database of this backend (``yiwang_db`` first, so an unreachable PostgreSQL
    skips — or fails under CI — the way every database test does)."""
    if yiwang_backend == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield db
        db.dispose()
        return
    admin = make_url(os.environ[POSTGRESQL_ENV]).set(drivername="postgresql+psycopg")
    name = f"yiwang_migrations_{os.getpid()}_{next(_numbers)}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        db = Database(admin.set(database=name).render_as_string(hide_password=False))
        try:
            yield db
        finally:
            db.dispose()
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def tables(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def test_upgrade_of_a_fresh_database_matches_the_models(fresh_db: Database) -> None:
    host = host_with(*installed_plugins())
    heads = set(migrate.script(host).get_heads())
    assert migrate.pending(fresh_db, host) == heads
    migrate.upgrade(fresh_db, host)
    assert migrate.pending(fresh_db, host) == set()
    assert migrate.diff(fresh_db, host) == []
    assert {"grid_node", "grid_org", "plugin_activation", "kernel_counter", "notice_notice"} <= tables(
        fresh_db
    )


def test_upgrade_twice_is_harmless(fresh_db: Database) -> None:
    host = host_with("notice")
    migrate.upgrade(fresh_db, host)
    migrate.upgrade(fresh_db, host)
    assert migrate.pending(fresh_db, host) == set()
    assert migrate.diff(fresh_db, host) == []


def test_diff_reports_a_schema_that_drifted_from_the_models(fresh_db: Database) -> None:
    host = host_with()
    migrate.upgrade(fresh_db, host)
    with fresh_db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE kernel_counter ADD COLUMN stray INTEGER"))
    drift = migrate.diff(fresh_db, host)
    assert [(d[0], d[2], d[3].name) for d in drift] == [("remove_column", "kernel_counter", "stray")]


def test_enabling_a_plugin_later_leaves_only_its_branch_pending(fresh_db: Database) -> None:
    migrate.upgrade(fresh_db, host_with())
    assert "notice_notice" not in tables(fresh_db)  # a disabled plugin's tables are not created
    assert "grid_node" in tables(fresh_db)
    with_notice = host_with("notice")
    assert migrate.pending(fresh_db, with_notice) == {"notice_0001"}
    migrate.upgrade(fresh_db, with_notice)
    assert migrate.pending(fresh_db, with_notice) == set()
    assert "notice_notice" in tables(fresh_db)
    assert migrate.diff(fresh_db, with_notice) == []


def test_each_branch_has_exactly_one_head() -> None:
    plugins = installed_plugins()
    heads = migrate.heads_by_branch(host_with(*plugins))
    assert "?" not in heads, f"head outside any labelled branch: {heads}"
    expected = {KERNEL} | {p for p in plugins if discover()[p].spec.migrations}  # type: ignore[union-attr]
    assert set(heads) == expected
    for branch, revisions in heads.items():
        assert len(revisions) == 1, f"分支 {branch} 有多个 head: {revisions}"


def test_plugin_branches_start_from_no_parent_and_depend_on_the_kernel() -> None:
    host = host_with(*installed_plugins())
    sd = migrate.script(host)
    kernel_revisions = {r.revision for r in sd.iterate_revisions(f"{KERNEL}@head", "base")}
    bases = set(sd.get_bases())
    assert len(bases) == 1 + sum(1 for s in host.specs.values() if s.migrations)
    for spec in host.specs.values():
        if not spec.migrations:
            continue
        [base] = [sd.get_revision(b) for b in bases if spec.name in sd.get_revision(b).branch_labels]  # type: ignore[union-attr]
        assert base is not None and base.down_revision is None
        depends = base.dependencies
        depends = (depends,) if isinstance(depends, str) else tuple(depends or ())
        assert depends and set(depends) <= kernel_revisions, (spec.name, depends)


def test_notice_branch_depends_on_the_kernels_first_revision() -> None:
    notice = migrate.script(host_with("notice")).get_revision("notice_0001")
    assert notice is not None
    assert notice.down_revision is None
    assert notice.branch_labels == {"notice"}
    assert notice.dependencies == "yiwang_0001"


@pytest.mark.with_plugins("population")
def test_population_0003_keeps_ids_registered_in_two_grids(fresh_db: Database) -> None:
    """Before population_0003 an ID could be registered in two grids (the constraint was per
    grid); the upgrade numbers the later rows (``legacy_dup``) instead of failing, and the new
    platform-wide constraint then refuses a third row of that ID."""
    from datetime import UTC, datetime

    from sqlalchemy import MetaData, Table, insert, select
    from sqlalchemy.exc import IntegrityError

    def filler(table: Any) -> dict[str, Any]:
        """A value for every NOT NULL column without a default."""
        out: dict[str, Any] = {}
        for c in table.c:
            if not c.nullable and c.server_default is None and c.name != "id":
                out[c.name] = {int: 0, str: "", float: 0.0}.get(
                    c.type.python_type, datetime(2026, 1, 1, tzinfo=UTC)
                )
        return out

    host = host_with("population")
    migrate.upgrade(fresh_db, host, "population_0002")
    with fresh_db.engine.begin() as conn:
        meta = MetaData()
        node = Table("grid_node", meta, autoload_with=conn)
        person = Table("population_person", meta, autoload_with=conn)
        required = filler(node)
        for i in (1, 2):
            conn.execute(insert(node).values({**required, "id": i, "code": f"G{i}", "name": f"网格{i}",
                                              "level": 6, "kind": "", "path": f"/{i}/", "depth": 0}))  # fmt: skip
        row = filler(person) | {"kind": "registered"}
        for pid, grid in ((1, 1), (2, 2), (3, 1)):
            bidx = "same" if pid < 3 else "other"
            conn.execute(insert(person).values({**row, "id": pid, "node_id": grid, "node_path": f"/{grid}/",
                                                "id_number_bidx": bidx}))  # fmt: skip
    migrate.upgrade(fresh_db, host)
    assert migrate.diff(fresh_db, host) == []
    with fresh_db.engine.begin() as conn:
        person = Table("population_person", MetaData(), autoload_with=conn)
        dups = dict(
            conn.execute(select(person.c.id, person.c.legacy_dup).order_by(person.c.id)).all()
        )
        assert dups == {1: 0, 2: 1, 3: 0}
        values = dict(conn.execute(select(person).where(person.c.id == 3)).mappings().one())
    with pytest.raises(IntegrityError), fresh_db.engine.begin() as conn:
        conn.execute(insert(person).values({**values, "id": 4, "node_id": 2, "node_path": "/2/"}))
