"""The audit trail: same-transaction records, failure semantics, concurrency, checkpoints,
purge and retention, search and export, and the kernel's own audited changes."""

from __future__ import annotations

import csv
import io
import itertools
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from yiwang import audit
from yiwang.audit import Actor, record, record_now
from yiwang.audit import records as records_module
from yiwang.audit import retention as purge_module
from yiwang.audit.checkpoints import Checkpoint
from yiwang.audit.models import GENESIS_HASH
from yiwang.audit.records import EVENT, chain_hash, pending_count
from yiwang.errors import AuditTampered, ValidationError
from yiwang.keys import audit_public_key
from yiwang.plugins.models import KernelCounter

ALICE = Actor(user_id=7, username="alice", role="county_staff", node_id=3, client_ip="10.0.0.8", request_id="r-1")
_names = itertools.count()


def business(session: Any) -> str:
    """A business change: one new kernel_counter row; returns its name."""
    name = f"biz-{next(_names)}"
    session.add(KernelCounter(name=name, value=1))
    return name


def exists(db: Any, name: str) -> bool:
    with db.read() as s:
        return s.get(KernelCounter, name) is not None


def events(db: Any) -> list[Any]:
    with db.read() as s:
        return list(s.connection().execute(select(EVENT).order_by(EVENT.c.id)))


def write(db: Any, n: int, action: str = "test.write", actor: Actor = ALICE, **kwargs: Any) -> None:
    for i in range(n):
        with db.write() as s:
            business(s)
            record(s, action, actor=actor, object_type="counter", object_id=i, **kwargs)


def assert_one_chain(rows: list[Any]) -> None:
    """Ids 1..n in order, each linked to the previous, each hash recomputable."""
    prev = GENESIS_HASH
    for expected_id, row in enumerate(rows, 1):
        assert row.id == expected_id
        assert row.prev_hash == prev
        assert chain_hash(prev, dict(row._mapping)) == row.hash
        prev = row.hash


# --- the record and its transaction ------------------------------------------------------------


def test_record_is_written_by_the_commit_of_its_own_transaction(yiwang_db: Any) -> None:
    with yiwang_db.write() as s:
        name = business(s)
        record(
            s, "grid.move", actor=ALICE, object_type="grid_node", object_id=42, purpose="调整网格",
            detail={"from": "450107", "to": "450108", "名称": "秀灵社区"},
        )  # fmt: skip
        assert pending_count(s) == 1
        assert s.execute(select(func.count()).select_from(EVENT)).scalar() == 0  # queued, not yet written
    assert exists(yiwang_db, name)
    [row] = events(yiwang_db)
    assert (row.id, row.action, row.username, row.role, row.node_id) == (1, "grid.move", "alice", "county_staff", 3)
    assert (row.user_id, row.client_ip, row.request_id, row.purpose) == (7, "10.0.0.8", "r-1", "调整网格")
    assert (row.object_type, row.object_id, row.result) == ("grid_node", "42", "ok")
    assert json.loads(row.detail) == {"from": "450107", "to": "450108", "名称": "秀灵社区"}
    assert row.prev_hash == GENESIS_HASH and len(row.hash) == 64
    assert row.time.tzinfo is not None and abs(row.time - datetime.now(UTC)) < timedelta(minutes=1)


def test_several_records_of_one_transaction_are_chained_in_order(yiwang_db: Any) -> None:
    with yiwang_db.write() as s:
        for action in ("a.one", "a.two", "a.three"):
            record(s, action, actor=ALICE)
    rows = events(yiwang_db)
    assert [r.action for r in rows] == ["a.one", "a.two", "a.three"]
    assert_one_chain(rows)


def test_a_rolled_back_unit_leaves_neither_the_change_nor_its_record(yiwang_db: Any) -> None:
    with pytest.raises(RuntimeError), yiwang_db.write() as s:
        name = business(s)
        record(s, "test.write", actor=ALICE)
        raise RuntimeError("the business step fails")
    assert not exists(yiwang_db, name)
    assert events(yiwang_db) == []


def test_a_record_inside_a_rolled_back_savepoint_is_dropped_with_it(yiwang_db: Any) -> None:
    with yiwang_db.write() as s:
        record(s, "outer.kept", actor=ALICE)
        try:
            with s.begin_nested():
                record(s, "inner.undone", actor=ALICE)
                raise RuntimeError
        except RuntimeError:
            pass
        with s.begin_nested():
            record(s, "inner.kept", actor=ALICE)
    assert [r.action for r in events(yiwang_db)] == ["outer.kept", "inner.kept"]


def test_a_session_reused_after_rollback_does_not_carry_old_records(yiwang_db: Any) -> None:
    from sqlmodel import Session

    with Session(yiwang_db.engine) as s:
        record(s, "test.undone", actor=ALICE)
        s.rollback()
        assert pending_count(s) == 0
    assert events(yiwang_db) == []


def test_a_detail_that_cannot_be_serialised_fails_the_unit(yiwang_db: Any) -> None:
    with pytest.raises(TypeError), yiwang_db.write() as s:
        name = business(s)
        record(s, "test.write", actor=ALICE, detail={"x": object()})
    assert not exists(yiwang_db, name)
    assert events(yiwang_db) == []


def test_when_the_audit_insert_fails_at_commit_the_business_change_is_rolled_back(yiwang_db: Any) -> None:
    write(yiwang_db, 2)
    # A row outside the chain occupies the next id: the chained insert fails at commit.
    with yiwang_db.engine.begin() as conn:
        conn.execute(
            EVENT.insert().values(
                id=3, time=datetime.now(UTC), action="rogue", prev_hash="x" * 64, hash="y" * 64,
                username="", role="", object_type="", object_id="", result="ok", client_ip="",
                request_id="", purpose="", detail="",
            )  # fmt: skip
        )
    with pytest.raises(audit.AuditWriteError, match="审计记录写入失败，本次操作未生效"), yiwang_db.write() as s:
        name = business(s)
        record(s, "test.write", actor=ALICE)
    assert not exists(yiwang_db, name)
    assert [r.action for r in events(yiwang_db)] == ["test.write", "test.write", "rogue"]


@pytest.mark.sqlite_only("a dropped table in a copy of the SQLite file")
def test_when_the_audit_table_is_gone_the_business_change_is_rolled_back(
    yiwang_db: Any, tmp_path: Path
) -> None:
    import sqlite3

    from yiwang.db import Database

    path = tmp_path / "copy.db"
    src, dst = sqlite3.connect(yiwang_db.url.database), sqlite3.connect(path)
    src.backup(dst)
    src.close()
    dst.execute("DROP TABLE audit_event")
    dst.close()
    copy = Database(f"sqlite:///{path}")
    try:
        with pytest.raises(audit.AuditWriteError, match="audit_event"), copy.write() as s:
            name = business(s)
            record(s, "test.write", actor=ALICE)
        assert not exists(copy, name)
    finally:
        copy.dispose()


def test_record_now_commits_on_its_own(yiwang_db: Any) -> None:
    with pytest.raises(RuntimeError), yiwang_db.write() as s:
        name = business(s)
        raise RuntimeError("denied")
    record_now(yiwang_db, "auth.login", actor=Actor(None, "mallory", client_ip="203.0.113.9"), result="failed")
    assert not exists(yiwang_db, name)
    [row] = events(yiwang_db)
    assert (row.action, row.result, row.username, row.client_ip) == ("auth.login", "failed", "mallory", "203.0.113.9")


def test_record_rejects_an_unknown_result_and_an_empty_action(yiwang_db: Any) -> None:
    with yiwang_db.write() as s:
        with pytest.raises(ValueError):
            record(s, "x.y", actor=ALICE, result="maybe")
        with pytest.raises(ValueError):
            record(s, "", actor=ALICE)


def test_long_and_odd_values_are_stored_exactly_as_hashed(yiwang_db: Any, settings: Any) -> None:
    actor = Actor(None, "名" * 400 + "\x00", role="r" * 100, client_ip="::ffff:10.0.0.1")
    record_now(yiwang_db, "test.odd", actor=actor, object_id="\ud800x", detail={"s": "a\x00b", "e": "😀"})
    [row] = events(yiwang_db)
    assert len(row.username) == 150 and "\x00" not in row.username
    assert audit.verify(yiwang_db, settings).ok


def test_system_actor() -> None:
    assert Actor.system() == Actor(None, "system", "system")
    assert Actor.system("scheduler").username == "scheduler"


# --- concurrency ---------------------------------------------------------------------------------


def test_concurrent_writers_form_one_chain_and_verify_never_false_alarms(
    yiwang_db: Any, settings: Any
) -> None:
    settings = replace(settings, audit_checkpoint_every=25)
    threads_n, units = 8, 12
    errors: list[BaseException] = []
    reports: list[Any] = []
    done = threading.Event()

    def writer(t: int) -> None:
        try:
            for i in range(units):
                with yiwang_db.write() as s:
                    business(s)
                    record(s, "test.concurrent", actor=ALICE, object_id=f"{t}-{i}")
                    record(s, "test.concurrent.second", actor=ALICE, object_id=f"{t}-{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def loop(step: Any) -> None:
        try:
            while not done.is_set():
                step()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads_n)]
    watchers = [
        threading.Thread(target=loop, args=(lambda: audit.maybe_checkpoint(yiwang_db, settings),)),
        threading.Thread(target=loop, args=(lambda: reports.append(audit.verify(yiwang_db, settings)),)),
    ]
    for w in watchers + workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    for w in watchers:
        w.join()
    assert errors == []
    rows = events(yiwang_db)
    assert len(rows) == threads_n * units * 2
    assert_one_chain(rows)
    # The two records of a unit are adjacent: a unit appends atomically.
    for first, second in zip(rows[::2], rows[1::2], strict=True):
        assert (first.action, second.action) == ("test.concurrent", "test.concurrent.second")
        assert first.object_id == second.object_id
    final = audit.verify(yiwang_db, settings)
    assert final.ok and final.checked == len(rows), final
    assert reports and all(r.ok for r in reports), [r.reason for r in reports if not r.ok]
    assert final.checkpoints >= 1
    print(f"\n{len(reports)} verify runs and {final.checkpoints} checkpoints during {len(rows)} concurrent records: 0 false alarms")


def test_verify_is_clean_on_every_run(yiwang_db: Any, settings: Any) -> None:
    runs = 0
    for round_ in range(6):
        write(yiwang_db, 5, action=f"test.round{round_}")
        record_now(yiwang_db, "auth.login", actor=ALICE, result="denied" if round_ % 2 else "ok")
        if round_ % 2:
            audit.checkpoint(yiwang_db, settings)
        report = audit.verify(yiwang_db, settings)
        runs += 1
        assert report.ok and report.first_broken_id is None and report.problems == (), report
        assert report.checked == 6 * (round_ + 1)
    assert runs == 6


# --- checkpoints ---------------------------------------------------------------------------------


def test_checkpoint_is_signed_stored_and_logged_outside_the_database(yiwang_db: Any, settings: Any) -> None:
    write(yiwang_db, 4)
    cp = audit.checkpoint(yiwang_db, settings)
    assert cp is not None and (cp.seq, cp.first_id, cp.last_id, cp.count, cp.kind) == (1, 1, 4, 4, "manual")
    assert cp.last_hash == events(yiwang_db)[-1].hash
    public = audit_public_key(settings)
    assert cp.valid(public)
    lines = settings.audit_checkpoint_log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    logged = Checkpoint.from_line(lines[0])
    assert logged.same(cp) and logged.valid(public)
    assert set(json.loads(lines[0])) == {"v", "seq", "kind", "time", "first_id", "last_id", "last_hash", "count", "key", "sig"}
    with yiwang_db.read() as s:
        [stored] = s.execute(select(audit.AuditCheckpoint)).scalars().all()
    assert stored.signature == cp.signature
    # The database holds the signature and a key fingerprint, never the key.
    key_text = settings.audit_key_file.read_text()
    assert "PRIVATE KEY" in key_text and key_text not in stored.signature


def test_automatic_checkpoint_every_n_records(yiwang_db: Any, settings: Any) -> None:
    settings = replace(settings, audit_checkpoint_every=5)
    write(yiwang_db, 4)
    assert audit.maybe_checkpoint(yiwang_db, settings) is None
    write(yiwang_db, 1)
    first = audit.maybe_checkpoint(yiwang_db, settings)
    assert first is not None and first.last_id == 5 and first.kind == "auto"
    assert audit.maybe_checkpoint(yiwang_db, settings) is None
    write(yiwang_db, 5)
    second = audit.maybe_checkpoint(yiwang_db, settings)
    assert second is not None and (second.seq, second.last_id) == (2, 10)


def test_automatic_checkpoint_when_the_last_one_is_old(yiwang_db: Any, settings: Any) -> None:
    write(yiwang_db, 2)
    hour = timedelta(hours=1)
    assert audit.maybe_checkpoint(yiwang_db, settings, max_age=hour) is not None  # none before
    assert audit.maybe_checkpoint(yiwang_db, settings, max_age=timedelta(0)) is None  # nothing new
    write(yiwang_db, 1)
    assert audit.maybe_checkpoint(yiwang_db, settings, max_age=hour) is None  # new, but recent
    cp = audit.maybe_checkpoint(yiwang_db, settings, max_age=timedelta(0))
    assert cp is not None and cp.last_id == 3


def test_checkpoint_refuses_to_sign_a_broken_segment(yiwang_db: Any, settings: Any) -> None:
    write(yiwang_db, 3)
    audit.checkpoint(yiwang_db, settings)
    write(yiwang_db, 3)
    with yiwang_db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET username = 'bob' WHERE id = 5"))
    with pytest.raises(AuditTampered, match="#5"):
        audit.checkpoint(yiwang_db, settings)
    assert len(settings.audit_checkpoint_log.read_text().splitlines()) == 1


def test_checkpoint_needs_the_key_file(yiwang_db: Any, settings: Any) -> None:
    from yiwang.errors import SettingsError

    write(yiwang_db, 1)
    missing = replace(settings, audit_key_file=settings.home / "nokey")
    with pytest.raises(SettingsError, match="审计签名密钥文件不存在"):
        audit.checkpoint(yiwang_db, missing)


# --- purge and retention -------------------------------------------------------------------------


def _old_records(db: Any, monkeypatch: pytest.MonkeyPatch, when: datetime, n: int) -> None:
    with monkeypatch.context() as mp:
        mp.setattr(records_module, "utcnow", lambda: when)
        write(db, n, action="test.old")


def test_purge_refuses_inside_the_retention_period(yiwang_db: Any, settings: Any) -> None:
    write(yiwang_db, 3)
    now = datetime.now(UTC)
    floor = now - timedelta(days=settings.audit_retention_days)
    for before in (now, floor + timedelta(days=1), floor + timedelta(seconds=5)):
        with pytest.raises(ValidationError, match="拒绝清理.*保留 1095 天"):
            audit.purge(yiwang_db, settings, before, Actor.system(), now=now)
    assert len(events(yiwang_db)) == 3


def test_legal_purge_keeps_the_trail_verifiable(
    yiwang_db: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=settings.audit_retention_days + 30)
    _old_records(yiwang_db, monkeypatch, old, 6)
    audit.checkpoint(yiwang_db, settings)
    _old_records(yiwang_db, monkeypatch, old + timedelta(days=10), 2)
    write(yiwang_db, 4, action="test.recent")
    audit.checkpoint(yiwang_db, settings)
    before = old + timedelta(days=20)
    result = audit.purge(yiwang_db, settings, before, Actor.system("cli:root"), now=now)
    assert (result.deleted, result.boundary_id) == (8, 8)
    assert result.checkpoint is not None and result.checkpoint.kind == "purge"
    rows = events(yiwang_db)
    assert [r.id for r in rows] == list(range(9, 14))
    assert rows[-1].action == "audit.purge" and rows[-1].username == "cli:root"
    assert json.loads(rows[-1].detail)["records"] == 8
    report = audit.verify(yiwang_db, settings)
    assert report.ok and report.checked == 5, report
    # Verification after the purge still catches tampering, including at the new genesis.
    with yiwang_db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET action = 'test.other' WHERE id = 9"))
    assert audit.verify(yiwang_db, settings).first_broken_id == 9
    with yiwang_db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET action = 'test.recent' WHERE id = 9"))
        conn.execute(text("DELETE FROM audit_event WHERE id = 9"))
    assert audit.verify(yiwang_db, settings).first_broken_id == 9


def test_purge_with_nothing_old_is_recorded_and_changes_nothing(yiwang_db: Any, settings: Any) -> None:
    write(yiwang_db, 3)
    before = datetime.now(UTC) - timedelta(days=settings.audit_retention_days + 1)
    result = audit.purge(yiwang_db, settings, before, Actor.system())
    assert (result.deleted, result.checkpoint) == (0, None)
    assert [r.action for r in events(yiwang_db)][-1] == "audit.purge"
    assert audit.verify(yiwang_db, settings).ok


def test_an_interrupted_purge_leaves_a_remnant_that_verifies_and_is_finished_later(
    yiwang_db: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=settings.audit_retention_days + 30)
    _old_records(yiwang_db, monkeypatch, old, 7)
    write(yiwang_db, 2)
    with monkeypatch.context() as mp:
        mp.setattr(purge_module, "DELETE_BATCH", 3)
        original = purge_module.delete_purged
        mp.setattr(purge_module, "delete_purged", lambda db, boundary: original(db, 3))  # dies after 3
        result = audit.purge(yiwang_db, settings, old + timedelta(days=1), Actor.system(), now=now)
    assert result.boundary_id == 7 and result.deleted == 3
    assert [r.id for r in events(yiwang_db)][:4] == [4, 5, 6, 7]
    assert audit.verify(yiwang_db, settings).ok
    # A forged row in the remnant is caught.
    with yiwang_db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET username = 'eve' WHERE id = 5"))
    assert audit.verify(yiwang_db, settings).first_broken_id == 5
    with yiwang_db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET username = 'alice' WHERE id = 5"))
    again = audit.purge(yiwang_db, settings, old + timedelta(days=1), Actor.system(), now=now)
    assert again.deleted == 4 and again.checkpoint is None
    assert events(yiwang_db)[0].id == 8
    assert audit.verify(yiwang_db, settings).ok


def test_purge_refuses_when_the_trail_is_broken(
    yiwang_db: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = datetime.now(UTC) - timedelta(days=settings.audit_retention_days + 30)
    _old_records(yiwang_db, monkeypatch, old, 3)
    with yiwang_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE id = 2"))
    with pytest.raises(AuditTampered, match="拒绝清理"):
        audit.purge(yiwang_db, settings, old + timedelta(days=1), Actor.system())
    assert len(events(yiwang_db)) == 2


# --- search and export ---------------------------------------------------------------------------


def test_search_filters_and_pages(yiwang_db: Any) -> None:
    bob = Actor(user_id=8, username="bob", role="grid_worker")
    write(yiwang_db, 3, action="grid.move")
    write(yiwang_db, 2, action="grid.import", actor=bob)
    record_now(yiwang_db, "privacy.reveal", actor=bob, object_type="person", object_id="p-1", purpose="核实身份")
    record_now(yiwang_db, "auth.login", actor=bob, result="denied")
    with yiwang_db.read() as s:
        assert [e.id for e in audit.search(s)] == [7, 6, 5, 4, 3, 2, 1]
        assert [e.id for e in audit.search(s, limit=2, offset=1)] == [6, 5]
        assert {e.action for e in audit.search(s, action="grid.*")} == {"grid.move", "grid.import"}
        assert [e.id for e in audit.search(s, user="bob", action="grid.import")] == [5, 4]
        assert [e.id for e in audit.search(s, user=8)] == [7, 6, 5, 4]
        [denied] = audit.search(s, result="denied")
        assert denied.action == "auth.login" and denied.result_label == "拒绝"
        [reveal] = audit.search(s, object_type="person", object_id="p-1")
        assert reveal.purpose == "核实身份"
        assert audit.count(s, action="grid.move") == 3
        future = datetime.now(UTC) + timedelta(hours=1)
        assert audit.search(s, since=future) == []
        assert len(audit.search(s, until=future)) == 7
        assert audit.search(s, action="grid%") == []  # LIKE wildcards are literal


def test_export_csv_streams_every_match_oldest_first(yiwang_db: Any) -> None:
    write(yiwang_db, 2, action="grid.move", detail={"名称": "秀灵社区"})
    record_now(yiwang_db, "auth.login", actor=Actor(None, "=cmd|'/c calc'!A1"), result="failed")
    out = io.StringIO(newline="")
    with yiwang_db.read() as s:
        assert audit.export_csv(s, out) == 3
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0][:3] == ["序号", "时间(UTC)", "用户ID"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]
    assert json.loads(rows[1][13]) == {"名称": "秀灵社区"}
    assert rows[3][3].startswith("'=")  # no formula reaches a spreadsheet
    assert rows[1][1].endswith("Z") and len(rows[1][15]) == 64


# --- the kernel's audited changes ----------------------------------------------------------------


@pytest.mark.with_plugins("notice")
def test_plugin_activation_changes_are_recorded(kernel: Any, grid: Any, yiwang_db: Any, settings: Any) -> None:
    node = grid.node("450107")
    kernel.activation.set("notice", node, False, actor=ALICE)
    kernel.activation.set("notice", node, None)
    rows = [r for r in events(yiwang_db) if r.action == "plugin.activation"]
    assert [(r.username, r.object_id) for r in rows] == [("alice", "notice"), ("system", "notice")]
    assert json.loads(rows[0].detail) == {"node_id": node.id, "active": False, "was": None}
    assert json.loads(rows[1].detail) == {"node_id": node.id, "active": None, "was": False}
    assert audit.verify(yiwang_db, settings).ok
