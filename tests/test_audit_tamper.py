"""Tamper campaign: every attack on a copy of an audited database (and of its checkpoint log)
must be found by ``verify``; the original stays clean. Plus ``yiwang audit`` exit codes."""

from __future__ import annotations

import base64
import itertools
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, replace
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, create_engine, select, text
from sqlalchemy.engine import make_url

from yiwang import audit
from yiwang.audit import Actor, record, record_now
from yiwang.audit.checkpoints import CHECKPOINT, Checkpoint, sign
from yiwang.audit.records import EVENT, HEAD, chain_hash
from yiwang.cli.main import main
from yiwang.db import Database
from yiwang.plugins.models import KernelCounter
from yiwang.testing.database import POSTGRESQL_ENV

_copies = itertools.count()
ALICE = Actor(user_id=7, username="alice", role="county_staff", node_id=3, client_ip="10.0.0.8")
BOB = Actor(user_id=8, username="bob", role="grid_worker", node_id=9, client_ip="10.0.0.9")

# --- the audited database --------------------------------------------------------------------------


def build_trail(db: Database, settings: Any) -> None:
    """60 records: 1–25 then checkpoint #1 (at 25), 26–55 then checkpoint #2 (at 55),
    56–60 after the newest checkpoint."""
    for i in range(20):
        with db.write() as s:
            s.add(KernelCounter(name=f"t-{i}", value=i))
            record(s, "grid.move", actor=ALICE if i % 2 else BOB, object_type="grid_node",
                   object_id=i, detail={"moved": i, "名称": "秀灵社区"})  # fmt: skip
    for i in range(5):
        record_now(db, "auth.login", actor=BOB, result="denied" if i % 2 else "failed")
    audit.checkpoint(db, settings)
    for i in range(15):
        with db.write() as s:
            record(s, "privacy.reveal", actor=ALICE, object_type="person", object_id=f"p-{i}",
                   purpose="核实身份", detail={"field": "id_number"})  # fmt: skip
            record(s, "case.update", actor=ALICE, object_type="case", object_id=i)
    audit.checkpoint(db, settings)
    for i in range(5):
        record_now(db, "grid.import", actor=Actor.system("cli:root"), detail={"created": i})


@dataclass
class Target:
    """A copy under attack: its database and its own copy of the checkpoint log."""

    db: Database
    settings: Any

    @property
    def log(self) -> Path:
        return Path(self.settings.audit_checkpoint_log)

    def sql(self, fn: Callable[[Connection], Any]) -> None:
        with self.db.engine.begin() as conn:
            fn(conn)


def row(conn: Connection, rid: int) -> dict[str, Any]:
    return dict(conn.execute(select(EVENT).where(EVENT.c.id == rid)).one()._mapping)


def update(conn: Connection, rid: int, **values: Any) -> None:
    conn.execute(EVENT.update().where(EVENT.c.id == rid).values(**values))


def rechain(conn: Connection, from_id: int) -> None:
    """What an attacker without the key can do: recompute every hash from ``from_id`` on and
    set the head to match."""
    rows = [dict(r._mapping) for r in conn.execute(select(EVENT).where(EVENT.c.id >= from_id - 1).order_by(EVENT.c.id))]
    prev = rows[0]["hash"] if rows[0]["id"] < from_id else "0" * 64
    for r in rows:
        if r["id"] < from_id:
            continue
        r["prev_hash"] = prev
        r["hash"] = prev = chain_hash(prev, r)
        update(conn, r["id"], prev_hash=r["prev_hash"], hash=r["hash"])
    set_head(conn, rows[-1]["id"], prev)


def set_head(conn: Connection, last_id: int, last_hash: str) -> None:
    conn.execute(HEAD.update().values(last_id=last_id, last_hash=last_hash))


def swap(conn: Connection, a: int, b: int) -> None:
    ra, rb = row(conn, a), row(conn, b)
    update(conn, a, **{k: v for k, v in rb.items() if k != "id"})
    update(conn, b, **{k: v for k, v in ra.items() if k != "id"})


def insert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(EVENT.insert().values(**values))


def forged_line(target: Target, **changes: Any) -> str:
    """A checkpoint line signed with a key that is not the deployment's."""
    base = dict(seq=3, kind="manual", time=audit.records.utcnow(), first_id=1, last_id=60,
                last_hash="f" * 64, count=60)  # fmt: skip
    return sign(Ed25519PrivateKey.generate(), **{**base, **changes}).to_line()


def edit_log_line(target: Target, number: int, **changes: Any) -> None:
    lines = target.log.read_text(encoding="utf-8").splitlines()
    cp = Checkpoint.from_line(lines[number - 1])
    lines[number - 1] = replace(cp, **changes).to_line()
    target.log.write_text("\n".join(lines) + "\n", encoding="utf-8")


def append_log(target: Target, line: str) -> None:
    with target.log.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


# --- the attacks -----------------------------------------------------------------------------------


def _insert_forged_middle(t: Target) -> None:
    def go(conn: Connection) -> None:
        for rid in range(60, 29, -1):
            conn.execute(EVENT.update().where(EVENT.c.id == rid).values(id=rid + 1))
        forged = {**row(conn, 29), "id": 30, "username": "mallory", "action": "grid.move"}
        forged["prev_hash"] = row(conn, 29)["hash"]
        forged["hash"] = chain_hash(forged["prev_hash"], forged)
        insert(conn, forged)
        set_head(conn, 61, row(conn, 61)["hash"])

    t.sql(go)


def _insert_forged_at_end(t: Target) -> None:
    def go(conn: Connection) -> None:
        forged = {**row(conn, 60), "id": 61, "action": "auth.logout", "prev_hash": row(conn, 60)["hash"]}
        forged["hash"] = chain_hash(forged["prev_hash"], forged)
        insert(conn, forged)  # a valid link, but outside the head

    t.sql(go)


def _insert_before_genesis(t: Target) -> None:
    def go(conn: Connection) -> None:
        forged = {**row(conn, 1), "id": 0, "prev_hash": "0" * 64}
        forged["hash"] = chain_hash(forged["prev_hash"], forged)
        insert(conn, forged)

    t.sql(go)


def _truncate_tail(t: Target) -> None:
    def go(conn: Connection) -> None:
        conn.execute(EVENT.delete().where(EVENT.c.id > 50))
        set_head(conn, 50, row(conn, 50)["hash"])

    t.sql(go)


def _truncate_tail_and_db_checkpoints(t: Target) -> None:
    def go(conn: Connection) -> None:
        conn.execute(EVENT.delete().where(EVENT.c.id > 20))
        conn.execute(CHECKPOINT.delete())
        set_head(conn, 20, row(conn, 20)["hash"])

    t.sql(go)


def _rewrite_all_and_drop_db_checkpoints(t: Target) -> None:
    def go(conn: Connection) -> None:
        update(conn, 3, username="nobody")
        rechain(conn, 1)
        conn.execute(CHECKPOINT.delete())

    t.sql(go)


def _forge_purge(t: Target) -> None:
    def go(conn: Connection) -> None:
        conn.execute(EVENT.delete().where(EVENT.c.id <= 20))
        cp = sign(Ed25519PrivateKey.generate(), seq=3, kind="purge", time=audit.records.utcnow(),
                  first_id=1, last_id=20, last_hash=row(conn, 21)["prev_hash"], count=20)  # fmt: skip
        values = {**cp.__dict__, "id": 3}
        del values["seq"]
        conn.execute(CHECKPOINT.insert().values(**values))
        append_log(t, cp.to_line())

    t.sql(go)


def _bad_signature_bytes(t: Target) -> None:
    def go(conn: Connection) -> None:
        sig = bytearray(base64.b64decode(conn.execute(select(CHECKPOINT.c.signature).where(CHECKPOINT.c.id == 1)).scalar_one()))
        sig[0] ^= 1
        conn.execute(CHECKPOINT.update().where(CHECKPOINT.c.id == 1).values(signature=base64.b64encode(sig).decode()))

    t.sql(go)


#: (name, attack, expected first broken id — None: a checkpoint finding, "any": some id)
ATTACKS: list[tuple[str, Callable[[Target], None], Any]] = [
    ("edit a field (username)", lambda t: t.sql(lambda c: update(c, 10, username="mallory")), 10),
    ("edit a field (detail)", lambda t: t.sql(lambda c: update(c, 40, detail='{"field":"name"}')), 40),
    ("edit a field (time)", lambda t: t.sql(lambda c: update(c, 12, time=row(c, 12)["time"] - timedelta(days=1))), 12),
    ("edit a field (result denied→ok)", lambda t: t.sql(lambda c: update(c, 22, result="ok")), 22),
    ("edit a field (user id)", lambda t: t.sql(lambda c: update(c, 7, user_id=None)), 7),
    ("edit a field (purpose)", lambda t: t.sql(lambda c: update(c, 57, purpose="随便看看")), 57),
    ("edit a hash", lambda t: t.sql(lambda c: update(c, 20, hash="a" * 64)), 20),
    ("edit a prev_hash", lambda t: t.sql(lambda c: update(c, 33, prev_hash="b" * 64)), 33),
    ("edit a record and recompute every later hash + head", lambda t: t.sql(lambda c: (update(c, 30, username="mallory"), rechain(c, 30))), 26),
    ("rewrite the whole chain and drop the DB checkpoints", _rewrite_all_and_drop_db_checkpoints, 1),
    ("delete a middle record", lambda t: t.sql(lambda c: c.execute(EVENT.delete().where(EVENT.c.id == 25))), 25),
    ("delete the first record", lambda t: t.sql(lambda c: c.execute(EVENT.delete().where(EVENT.c.id == 1))), 1),
    ("delete a run of records", lambda t: t.sql(lambda c: c.execute(EVENT.delete().where(EVENT.c.id.between(40, 45)))), 40),
    ("delete the newest record", lambda t: t.sql(lambda c: c.execute(EVENT.delete().where(EVENT.c.id == 60))), 60),
    ("insert a forged record in the middle (ids shifted, head fixed)", _insert_forged_middle, "any"),
    ("insert a forged record after the end (validly linked)", _insert_forged_at_end, 61),
    ("insert a forged record before the genesis", _insert_before_genesis, 0),
    ("swap two adjacent records", lambda t: t.sql(lambda c: swap(c, 12, 13)), 12),
    ("swap two distant records", lambda t: t.sql(lambda c: swap(c, 5, 50)), 5),
    ("truncate the tail after the last checkpoint (head fixed)", _truncate_tail, 51),
    ("truncate the tail and delete the DB checkpoints", _truncate_tail_and_db_checkpoints, 21),
    ("tamper with a checkpoint row (last_hash)", lambda t: t.sql(lambda c: c.execute(CHECKPOINT.update().where(CHECKPOINT.c.id == 2).values(last_hash="c" * 64))), None),
    ("tamper with a checkpoint row (last_id)", lambda t: t.sql(lambda c: c.execute(CHECKPOINT.update().where(CHECKPOINT.c.id == 2).values(last_id=50, count=50))), None),
    ("tamper with a checkpoint row (signature)", _bad_signature_bytes, None),
    ("delete a checkpoint row", lambda t: t.sql(lambda c: c.execute(CHECKPOINT.delete().where(CHECKPOINT.c.id == 2))), None),
    ("forge a checkpoint line (other key)", lambda t: append_log(t, forged_line(t)), None),
    ("forge a checkpoint line (edited)", lambda t: edit_log_line(t, 2, last_id=60), None),
    ("garble a checkpoint line", lambda t: append_log(t, '{"v": 1, "seq": "x"}'), None),
    ("forge a purge checkpoint to hide deleted old records", _forge_purge, 1),
]


# --- copies ----------------------------------------------------------------------------------------


@pytest.fixture
def copies(yiwang_db: Database, yiwang_backend: str, settings: Any, tmp_path: Path) -> Iterator[Callable[[], Target]]:
    """``copies()`` → a Target: a copy of the database (SQLite: the file via the backup API;
    PostgreSQL: ``CREATE DATABASE … TEMPLATE``) and of the checkpoint log."""
    made: list[Database] = []
    names: list[str] = []
    admin = None
    if yiwang_backend == "postgresql":
        admin = create_engine(
            make_url(os.environ[POSTGRESQL_ENV]).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
        )

    def copy() -> Target:
        n = next(_copies)
        log = tmp_path / f"checkpoints-{n}.log"
        if settings.audit_checkpoint_log.exists():
            log.write_bytes(settings.audit_checkpoint_log.read_bytes())
        if yiwang_backend == "sqlite":
            path = tmp_path / f"copy-{n}.db"
            src, dst = sqlite3.connect(yiwang_db.url.database), sqlite3.connect(path)
            src.backup(dst)
            src.close()
            dst.close()
            db = Database(f"sqlite:///{path}")
        else:
            assert admin is not None
            name = f"{yiwang_db.url.database}_t{n}"
            yiwang_db.dispose()  # a template must have no connections
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{yiwang_db.url.database}"'))
            names.append(name)
            db = Database(yiwang_db.url.set(database=name).render_as_string(hide_password=False))
        made.append(db)
        return Target(db, replace(settings, audit_checkpoint_log=log))

    yield copy
    for db in made:
        db.dispose()
    if admin is not None:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_tamper_campaign_every_attack_is_detected(
    yiwang_db: Database, settings: Any, copies: Callable[[], Target], yiwang_backend: str
) -> None:
    build_trail(yiwang_db, settings)
    clean = audit.verify(yiwang_db, settings)
    assert clean.ok and clean.checked == 60 and clean.checkpoints == 2, clean
    # The unattacked copy is clean too: the copy itself raises no alarm.
    control = copies()
    assert audit.verify(control.db, control.settings).ok
    detected, missed = 0, []
    for name, attack, expected in ATTACKS:
        target = copies()
        attack(target)
        report = audit.verify(target.db, target.settings)
        named = (
            report.first_broken_id is not None
            if expected == "any"
            else report.first_broken_id == expected
        )
        if not report.ok and named and report.reason:
            detected += 1
        else:
            missed.append((name, report.first_broken_id, report.reason))
    print(f"\n[{yiwang_backend}] tamper campaign: {len(ATTACKS)} attacks, {detected} detected")
    assert missed == [], missed
    assert detected == len(ATTACKS)
    # The original was never touched.
    assert audit.verify(yiwang_db, settings).ok


def test_forged_middle_record_is_named_where_the_chain_breaks(
    yiwang_db: Database, settings: Any, copies: Callable[[], Target]
) -> None:
    build_trail(yiwang_db, settings)
    target = copies()
    _insert_forged_middle(target)
    report = audit.verify(target.db, target.settings)
    assert report.first_broken_id == 31  # the forged #30 links to #29; the shifted #31 does not
    assert "前一哈希" in report.reason or "哈希不符" in report.reason


def test_reasons_are_chinese_and_name_the_record(
    yiwang_db: Database, settings: Any, copies: Callable[[], Target]
) -> None:
    build_trail(yiwang_db, settings)
    t = copies()
    t.sql(lambda c: c.execute(EVENT.delete().where(EVENT.c.id == 25)))
    report = audit.verify(t.db, t.settings)
    assert report.reason.startswith("记录 #25 缺失（被删除）")
    t = copies()
    _truncate_tail(t)
    report = audit.verify(t.db, t.settings)
    assert "记录 #51–#55 缺失" in report.reason and "检查点 #2" in report.reason and "尾部被截断" in report.reason
    t = copies()
    append_log(t, forged_line(t))
    report = audit.verify(t.db, t.settings)
    assert "签名无效" in report.reason and report.first_broken_id is None


def test_limit_records_after_the_newest_checkpoint_can_be_rewritten_without_the_key(
    yiwang_db: Database, settings: Any, copies: Callable[[], Target]
) -> None:
    """Documented limit (docs/audit.md): what no signed checkpoint covers yet can be rewritten
    consistently by someone with full database access; everything covered cannot."""
    build_trail(yiwang_db, settings)
    t = copies()
    t.sql(lambda c: (update(c, 58, username="nobody"), rechain(c, 58)))
    assert audit.verify(t.db, t.settings).ok
    t = copies()
    t.sql(lambda c: (update(c, 55, username="nobody"), rechain(c, 55)))  # #55 is checkpointed
    assert audit.verify(t.db, t.settings).first_broken_id == 26


def test_a_checkpoint_missing_from_the_log_is_a_notice_not_an_alarm(
    yiwang_db: Database, settings: Any
) -> None:
    build_trail(yiwang_db, settings)
    lines = settings.audit_checkpoint_log.read_text().splitlines()
    settings.audit_checkpoint_log.write_text(lines[0] + "\n")  # the append of #2 "failed"
    report = audit.verify(yiwang_db, settings)
    assert report.ok and any("#2" in n for n in report.notices)
    settings.audit_checkpoint_log.unlink()
    report = audit.verify(yiwang_db, settings)
    assert report.ok and any("不存在" in n for n in report.notices)


# --- the command line --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def yiwang(home: Path, *args: str) -> Outcome:
    out, err = StringIO(), StringIO()
    with pytest.MonkeyPatch.context() as mp, redirect_stdout(out), redirect_stderr(err):
        for name in list(os.environ):
            if name.startswith("YIWANG_") and not name.startswith("YIWANG_TEST_"):
                mp.delenv(name)
        mp.setenv("YIWANG_HOME", str(home))
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return Outcome(code, out.getvalue(), err.getvalue())


ROSTER = """code,name,parent_code,level
45,广西壮族自治区,,1
4501,南宁市,45,2
450107,西乡塘区,4501,3
450107001,衡阳街道,450107,4
450107001001,秀灵社区,450107001,5
450107001002,北湖社区,450107001,5
45010700100101,第1网格,450107001001,6
"""


def test_cli_records_kernel_changes_and_verify_exit_codes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert yiwang(home, "init", "--plugins", "notice").code == 0
    assert yiwang(home, "db", "upgrade").code == 0
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    assert yiwang(home, "grid", "import", str(roster)).code == 0
    assert yiwang(home, "grid", "import", str(roster)).code == 5  # codes exist: recorded as failed
    moved = yiwang(home, "grid", "move", "45010700100101", "450107001002", "--new-code", "45010700100201")
    assert moved.code == 0, moved
    assert yiwang(home, "grid", "move", "4599", "45").code == 6
    assert yiwang(home, "plugins", "disable-at", "notice", "450107").code == 0
    verified = yiwang(home, "audit", "verify")
    assert verified.code == 0 and "审计链完整：已校验 5 条记录" in verified.out, verified
    checkpointed = yiwang(home, "audit", "checkpoint")
    assert checkpointed.code == 0 and "已写入检查点 #1：记录 #1–#5（5 条）" in checkpointed.out
    assert "未写入" in yiwang(home, "audit", "checkpoint", "--if-due").out
    assert "未写入" in yiwang(home, "audit", "checkpoint", "--if-due", "--max-age", "60").out
    assert yiwang(home, "audit", "checkpoint", "--max-age", "60").code == 5

    export = tmp_path / "audit.csv"
    exported = yiwang(home, "audit", "export", str(export), "--action", "grid.*")
    assert exported.code == 0 and "已导出 4 条审计记录" in exported.out
    text_ = export.read_text(encoding="utf-8-sig")
    lines = text_.splitlines()
    assert lines[0].startswith("序号,时间(UTC)")
    assert [line.split(",")[6:10:3] for line in lines[1:]] == [
        ["grid.import", "ok"], ["grid.import", "failed"], ["grid.move", "ok"], ["grid.move", "failed"],
    ]  # fmt: skip
    assert '""created"":7' in text_ and "cli:" in text_

    refused = yiwang(home, "audit", "purge", "--before", "2100-01-01", "--yes")
    assert refused.code == 5 and "拒绝清理" in refused.err and "保留 1095 天" in refused.err
    nothing = yiwang(home, "audit", "purge", "--before", "2001-01-01", "--yes")
    assert nothing.code == 0 and "没有 2001-01-01 之前的审计记录需要清理" in nothing.out
    assert yiwang(home, "audit", "verify").code == 0  # 5 + export + purge = 7 records

    db = sqlite3.connect(home / "yiwang.db")
    db.execute("UPDATE audit_event SET username = 'nobody' WHERE id = 3")
    db.commit()
    db.close()
    tampered = yiwang(home, "audit", "verify")
    assert tampered.code == 7, tampered
    assert "审计链被篡改，第一条断裂的记录为 #3：记录 #3 的内容与其哈希不符" in tampered.err
    assert "Traceback" not in tampered.err
    as_json = yiwang(home, "audit", "verify", "--json")
    assert as_json.code == 7 and '"first_broken_id": 3' in as_json.out
    assert yiwang(home, "audit", "purge", "--before", "2001-01-01", "--yes").code == 7


def test_cli_audit_commands_answer_help(tmp_path: Path) -> None:
    for args in (("audit",), ("audit", "verify"), ("audit", "checkpoint"), ("audit", "purge"), ("audit", "export")):
        result = yiwang(tmp_path, *args, "--help")
        assert result.code == 0 and "Usage" in result.out
