"""Verifying the trail: recompute the whole chain in id order (streamed, bounded memory) and
hold it against every validly signed checkpoint from the external log and the database.

Findings (each names a record where it can): a record whose content does not match its hash
(edited), whose ``prev_hash`` does not match the previous record (edited hash, inserted,
reordered), missing ids (deleted), records before the purge boundary (inserted), a record that
differs from a signed checkpoint (rewritten with recomputed hashes), a chain shorter than a
signed checkpoint says (truncated tail), a head that disagrees with the last record, and any
checkpoint — log line or row — whose signature fails, or a logged checkpoint deleted from the
database.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, String, select, type_coerce
from sqlalchemy.orm import Session

from yiwang.audit.checkpoints import CHECKPOINT, Checkpoint, checkpoint_columns, parse_time
from yiwang.audit.models import GENESIS_HASH
from yiwang.audit.records import EVENT, FIELDS, HEAD, chain_hash
from yiwang.db import Database
from yiwang.errors import AuditTampered
from yiwang.keys import audit_public_key
from yiwang.settings import Settings

#: Rows fetched per round trip while streaming the chain.
BATCH = 2000
#: At most this many findings are kept (the first is what matters).
MAX_PROBLEMS = 200


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of ``verify``: ``reason`` (Chinese) explains the first finding, ``problems``
    lists findings in the order found (at most ``MAX_PROBLEMS``), ``notices`` are remarks that
    are not tampering (e.g. a checkpoint the log missed)."""

    ok: bool
    checked: int
    first_broken_id: int | None
    reason: str
    problems: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()
    checkpoints: int = 0


@dataclass
class _Findings:
    """Findings as ``(record id or None, reason, until)``: ``until`` marks a vague finding —
    something in ``id…until`` was rewritten — which a precise finding in that range explains."""

    items: list[tuple[int | None, str, int | None]] = field(default_factory=list)
    total: int = 0

    def add(self, record_id: int | None, reason: str, until: int | None = None) -> None:
        self.total += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append((record_id, reason, until))

    def first(self) -> tuple[int | None, str]:
        """The first broken record and why (the first finding when none names a record)."""
        precise = [(rid, why) for rid, why, until in self.items if rid is not None and until is None]
        named = list(precise)
        for rid, why, until in self.items:
            if rid is not None and until is not None:
                if not any(rid <= pid <= until for pid, _ in precise):
                    named.append((rid, why))
        if named:
            return min(named, key=lambda item: item[0] or 0)
        return self.items[0][0], self.items[0][1]


class ChainWalker:
    """Checks rows fed in id order, starting after ``(start_id, start_hash)``.

    ``expected`` maps a record id to the signed checkpoint that vouches for its hash.
    """

    def __init__(
        self,
        start_id: int,
        start_hash: str,
        findings: _Findings,
        expected: Mapping[int, Checkpoint] | None = None,
    ) -> None:
        self.start_id = start_id
        self.start_hash = start_hash
        self.findings = findings
        self.expected = dict(expected or {})
        marks = sorted(self.expected)
        self._segment_start = {
            mark: (marks[i - 1] if i else start_id) + 1 for i, mark in enumerate(marks)
        }
        self.next_id = start_id + 1
        self.last_id = start_id
        self.last_hash = start_hash
        self.checked = 0
        self._remnant: tuple[int, str] | None = None
        self._remnant_checked = False

    def feed(self, row: Any) -> None:
        self.checked += 1
        rid = int(row.id)
        add = self.findings.add
        computed = _recompute(row)
        if rid <= self.start_id:
            self._feed_remnant(row, rid, computed)
            return
        self._end_remnant()
        linked = rid == self.next_id
        if not linked:
            gap = f"#{self.next_id}" if rid == self.next_id + 1 else f"#{self.next_id}–#{rid - 1}"
            add(self.next_id, f"记录 {gap} 缺失（被删除）")
        if linked and row.prev_hash != self.last_hash:
            add(rid, f"记录 #{rid} 的前一哈希与记录 #{rid - 1} 不符（记录被插入、调换或哈希被改动）")
        if computed is None:
            add(rid, f"记录 #{rid} 的字段无法解析（记录被改动）")
        elif computed != row.hash:
            add(rid, f"记录 #{rid} 的内容与其哈希不符（记录被修改）")
        cp = self.expected.get(rid)
        if cp is not None and row.hash != cp.last_hash:
            start = self._segment_start[rid]
            add(
                start,
                f"记录 #{rid} 与已签名的{cp.describe()}不符：#{start}–#{rid} 之间的记录被改写（哈希已重算）",
                rid,
            )
        self.next_id = rid + 1
        self.last_id = rid
        self.last_hash = str(row.hash)

    def _feed_remnant(self, row: Any, rid: int, computed: str | None) -> None:
        """Rows at or before the purge boundary not yet deleted (a purge deletes in batches,
        oldest first): they must be an intact chain ending exactly at the boundary."""
        prev = self._remnant
        intact = computed == row.hash and (
            prev is None or (rid == prev[0] + 1 and row.prev_hash == prev[1])
        )
        if not intact:
            self.findings.add(
                rid, f"记录 #{rid} 位于清理边界 #{self.start_id} 之前，且不属于被清理的链（伪造或被改动的记录）"
            )
        self._remnant = (rid, str(row.hash))

    def _end_remnant(self) -> None:
        if self._remnant is not None and not self._remnant_checked:
            self._remnant_checked = True
            if self._remnant != (self.start_id, self.start_hash):
                rid = self._remnant[0]
                self.findings.add(
                    rid, f"记录 #{rid} 位于清理边界 #{self.start_id} 之前，且与清理检查点不符（伪造的记录）"
                )

    def finish(self) -> None:
        self._end_remnant()
        beyond = [cp for mark, cp in self.expected.items() if mark >= self.next_id]
        if beyond:
            cp = max(beyond, key=lambda c: c.last_id)
            span = f"#{self.next_id}" if cp.last_id == self.next_id else f"#{self.next_id}–#{cp.last_id}"
            self.findings.add(
                self.next_id,
                f"记录 {span} 缺失：已签名的{cp.describe()}证明链至少到记录 #{cp.last_id}（尾部被截断）",
            )


def _recompute(row: Any) -> str | None:
    """The hash a row should have, or None when a field is mangled beyond hashing."""
    values = dict(row._mapping)
    try:
        values["time"] = parse_time(values["time"])
        return chain_hash(str(values["prev_hash"]), values)
    except (TypeError, ValueError, KeyError):
        return None


def _event_columns(dialect: str) -> list[Any]:
    cols: list[Any] = [EVENT.c[name] for name in FIELDS] + [EVENT.c.prev_hash, EVENT.c.hash]
    if dialect == "sqlite":  # raw text: a mangled time must not abort the stream
        cols[FIELDS.index("time")] = type_coerce(EVENT.c.time, String).label("time")
    return cols


def stream_events(
    conn: Connection, after_id: int | None = None, upto_id: int | None = None
) -> Iterator[Any]:
    """Records with ``after_id < id <= upto_id`` (either bound optional) in id order, fetched
    in batches."""
    stmt = select(*_event_columns(conn.dialect.name))
    if after_id is not None:
        stmt = stmt.where(EVENT.c.id > after_id)
    if upto_id is not None:
        stmt = stmt.where(EVENT.c.id <= upto_id)
    result = conn.execute(stmt.order_by(EVENT.c.id).execution_options(yield_per=BATCH))
    yield from result


def check_segment(session: Session, from_id: int, from_hash: str, to_id: int, to_hash: str) -> None:
    """Check records ``from_id+1 … to_id`` (links, hashes, nothing beyond ``to_id``) in the
    caller's transaction; raise AuditTampered naming the first broken record."""
    findings = _Findings()
    walker = ChainWalker(from_id, from_hash, findings)
    conn = session.connection()
    for row in stream_events(conn, from_id):
        walker.feed(row)
    if walker.last_id < to_id:
        findings.add(walker.next_id, f"记录 #{walker.next_id}–#{to_id} 缺失（被删除）")
    elif walker.last_id > to_id:
        findings.add(to_id + 1, f"记录 #{to_id + 1} 起不在审计链头之内（链外插入的记录）")
    elif walker.last_hash != to_hash and walker.last_id > from_id:
        findings.add(to_id, f"记录 #{to_id} 的哈希与审计链头不符")
    if findings.items:
        rid, reason = findings.first()
        raise AuditTampered(f"审计链在记录 #{rid} 处断裂: {reason}（请运行 `yiwang audit verify`）")


@contextmanager
def snapshot(db: Database) -> Iterator[Connection]:
    """One read-only, consistent snapshot (REPEATABLE READ on PostgreSQL; SQLite's read
    transaction is a snapshot in WAL mode)."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def read_log(path: Path, public: Ed25519PublicKey, findings: _Findings) -> dict[int, Checkpoint]:
    """Validly signed checkpoints of the log by ``seq``; bad lines become findings."""
    found: dict[int, Checkpoint] = {}
    if not path.exists():
        return found
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"检查点日志 {path.name} 第 {number} 行"
            try:
                cp = Checkpoint.from_line(line)
            except ValueError:
                findings.add(None, f"{where}无法解析（日志被改动）")
                continue
            if not cp.valid(public):
                findings.add(None, f"{where}（检查点 #{cp.seq}）签名无效（伪造或被改动的检查点）")
                continue
            seen = found.get(cp.seq)
            if seen is not None and not seen.same(cp):
                findings.add(None, f"{where}: 检查点 #{cp.seq} 出现两个不同版本")
                continue
            found[cp.seq] = cp
    return found


def verify(db: Database, settings: Settings, *, public: Ed25519PublicKey | None = None) -> VerifyReport:
    """Check the whole trail; see the module docstring for what is found."""
    public = public or audit_public_key(settings)
    findings = _Findings()
    notices: list[str] = []
    # The log first: every line in it was written after its checkpoint committed, so the
    # snapshot taken next sees each one (no false "deleted" or "truncated" under load).
    logged = read_log(settings.audit_checkpoint_log, public, findings)
    with snapshot(db) as conn:
        stored: dict[int, Checkpoint] = {}
        present: set[int] = set()
        cols = checkpoint_columns(conn.dialect.name)
        for row in conn.execute(select(*cols).order_by(CHECKPOINT.c.id)):
            present.add(int(row.id))
            try:
                cp = Checkpoint.from_row(row)
            except (TypeError, ValueError):
                findings.add(None, f"数据库中的检查点 #{row.id} 无法解析（检查点被篡改）")
                continue
            if not cp.valid(public):
                findings.add(None, f"数据库中的检查点 #{cp.seq} 签名无效（检查点被篡改或伪造）")
                continue
            twin = logged.get(cp.seq)
            if twin is not None and not twin.same(cp):
                findings.add(None, f"数据库中的检查点 #{cp.seq} 与外部日志中的不一致")
                continue
            if twin is None and logged:
                notices.append(f"检查点 #{cp.seq} 未见于外部日志（写日志失败或日志被换过）")
            stored[cp.seq] = cp
        if stored and not logged:
            notices.append(
                f"检查点日志 {settings.audit_checkpoint_log} 不存在或为空，仅用数据库中的检查点校验"
            )
        for seq in sorted(set(logged) - present):
            findings.add(None, f"外部日志中的{logged[seq].describe()}在数据库中不存在（检查点被删除）")
        trusted = {**stored, **logged}
        purges = [cp for cp in trusted.values() if cp.kind == "purge"]
        anchor = max(purges, key=lambda cp: cp.last_id, default=None)
        start_id, start_hash = (anchor.last_id, anchor.last_hash) if anchor else (0, GENESIS_HASH)
        expected: dict[int, Checkpoint] = {}
        for cp in sorted(trusted.values(), key=lambda c: c.seq):
            if cp.last_id > start_id:
                expected.setdefault(cp.last_id, cp)
        walker = ChainWalker(start_id, start_hash, findings, expected)
        for row in stream_events(conn):
            walker.feed(row)
        walker.finish()
        head = conn.execute(select(HEAD.c.last_id, HEAD.c.last_hash).where(HEAD.c.id == 1)).first()
    if head is not None:
        head_id = int(head.last_id)
        if head_id > walker.last_id:
            findings.add(
                walker.last_id + 1,
                f"审计链头记为 #{head_id}，但记录只到 #{walker.last_id}（尾部被删除）",
            )
        elif head_id < walker.last_id:
            findings.add(head_id + 1, f"记录 #{head_id + 1} 起不在审计链头之内（链外插入的记录）")
        elif head.last_hash != walker.last_hash and head_id > start_id:
            findings.add(head_id, f"记录 #{head_id} 的哈希与审计链头不符")
    elif walker.checked:
        notices.append("审计链头缺失（下次写入时由最后一条记录重建）")
    if not findings.items:
        return VerifyReport(
            ok=True, checked=walker.checked, first_broken_id=None,
            reason=f"审计链完整：已校验 {walker.checked} 条记录、{len(trusted)} 个签名检查点",
            notices=tuple(notices), checkpoints=len(trusted),
        )  # fmt: skip
    rid, reason = findings.first()
    extra = f"（另有 {findings.total - 1} 处问题）" if findings.total > 1 else ""
    return VerifyReport(
        ok=False, checked=walker.checked, first_broken_id=rid, reason=reason + extra,
        problems=tuple(r for _, r, _ in findings.items), notices=tuple(notices),
        checkpoints=len(trusted),
    )  # fmt: skip
