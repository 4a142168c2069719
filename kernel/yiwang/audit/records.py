"""Writing the trail: ``record`` queues a record on a session; it is chained and inserted when
that session commits, inside the same transaction (a ``before_commit`` listener on every
SQLAlchemy Session). ``record_now`` writes one record in its own short transaction.

Appending takes the chain head: on PostgreSQL ``SELECT … FOR UPDATE`` of the one ``audit_head``
row, held only from the moment of appending to the commit; on SQLite the write unit already
holds the database write lock (``BEGIN IMMEDIATE``). Ids are the head's last id + 1, so the
chain never forks and id order is chain order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from yiwang.audit.models import GENESIS_HASH, AuditEvent, AuditHead
from yiwang.db.queue import current_transaction, drop_rolled_back
from yiwang.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from yiwang.db import Database

#: Format tag, the first element of every hashed serialisation.
FORMAT = "yiwang-audit-v1"
RESULTS = ("ok", "denied", "failed")
#: The fields of a record in hashing order (after the tag and prev_hash; see ``canonical``).
FIELDS = (
    "id", "time", "user_id", "username", "role", "node_id", "action", "object_type",
    "object_id", "result", "client_ip", "request_id", "purpose", "detail",
)  # fmt: skip
_PENDING = "yiwang.audit.pending"
EVENT = AuditEvent.__table__  # type: ignore[attr-defined]
HEAD = AuditHead.__table__  # type: ignore[attr-defined]
_LIMITS = {name: col.type.length for name, col in EVENT.c.items() if getattr(col.type, "length", None)}


class AuditWriteError(DatabaseUnavailable):
    """The audit records of a transaction could not be written, so the transaction failed."""


@dataclass(frozen=True)
class Actor:
    """Who acts: the signed-in user (and the role and node they act as) and where from."""

    user_id: int | None
    username: str
    role: str = ""
    node_id: int | None = None
    client_ip: str = ""
    request_id: str = ""

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """The platform itself or an operator's command (CLI, scheduled jobs)."""
        return cls(user_id=None, username=name, role="system")


@dataclass
class _Pending:
    values: dict[str, Any]
    transaction: SessionTransaction | None = field(default=None, compare=False)


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(value: datetime) -> str:
    """UTC, microseconds, ``Z``: ``2026-01-02T03:04:05.000006Z`` (naive values are UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(values: Mapping[str, Any]) -> str:
    """The serialisation a record's hash covers: a compact JSON array (ASCII, ``\\uXXXX``
    escapes) of the format tag and every field in ``FIELDS`` order, time as ``format_time``."""
    items: list[Any] = [FORMAT]
    for name in FIELDS:
        value = values[name]
        items.append(format_time(value) if name == "time" else value)
    return json.dumps(items, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def chain_hash(prev_hash: str, values: Mapping[str, Any]) -> str:
    """``sha256(prev_hash + canonical(values))`` as lowercase hex."""
    return hashlib.sha256((prev_hash + canonical(values)).encode("utf-8")).hexdigest()


def _clean(name: str, value: Any) -> str:
    """A string the database stores exactly as hashed: no NUL, valid UTF-8, within its column."""
    text = "" if value is None else str(value)
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    limit = _LIMITS.get(name)
    return text[:limit] if limit else text


def dump_detail(detail: Mapping[str, Any] | None) -> str:
    """Detail as stored: sorted compact JSON (non-ASCII kept); raises TypeError/ValueError
    for what JSON cannot hold, at ``record`` time."""
    if detail is None:
        return ""
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.replace("\x00", "\\u0000").encode("utf-8", "replace").decode("utf-8")


def record(
    session: Session,
    action: str,
    *,
    actor: Actor,
    object_type: str = "",
    object_id: str | int = "",
    result: str = "ok",
    purpose: str = "",
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Queue an audit record on ``session``; it is chained and inserted when the session's
    transaction commits, in that transaction (so the act and its record stand or fall together).

    Use it inside ``db.write()``. A record queued inside a savepoint that rolls back is dropped
    with it. ``detail`` must be JSON-serialisable and must not hold raw personal data.
    """
    if not action or len(action) > _LIMITS["action"]:
        raise ValueError(f"audit action must be 1–{_LIMITS['action']} characters: {action!r}")
    if result not in RESULTS:
        raise ValueError(f"audit result must be one of {RESULTS}: {result!r}")
    values: dict[str, Any] = {
        "time": utcnow(),
        "user_id": actor.user_id,
        "username": _clean("username", actor.username),
        "role": _clean("role", actor.role),
        "node_id": actor.node_id,
        "action": _clean("action", action),
        "object_type": _clean("object_type", object_type),
        "object_id": _clean("object_id", object_id),
        "result": result,
        "client_ip": _clean("client_ip", actor.client_ip),
        "request_id": _clean("request_id", actor.request_id),
        "purpose": _clean("purpose", purpose),
        "detail": dump_detail(detail),
    }
    if not session.in_transaction():
        session.begin()  # tie the record to a transaction, so a rollback drops it
    tx = current_transaction(session)
    session.info.setdefault(_PENDING, []).append(_Pending(values, tx))


def record_now(db: Database, action: str, **kwargs: Any) -> None:
    """Write one record in its own short transaction — for denied requests and failed logins,
    whose own work is not committed. Takes ``record``'s keyword arguments.

    On SQLite do not call it while the same thread holds an open ``db.write()`` unit (it would
    wait for that unit's write lock); record after the failed unit has rolled back.
    """
    with db.write() as session:
        record(session, action, **kwargs)


# --- appending at commit ---------------------------------------------------------------------------


# Built once: every audited write unit runs them at commit.
_HEAD = select(HEAD.c.last_id, HEAD.c.last_hash).where(HEAD.c.id == 1).with_for_update()
_INSERT_EVENTS = insert(EVENT)
_MOVE_HEAD = (
    update(HEAD).where(HEAD.c.id == 1)
    .values(last_id=bindparam("new_last_id"), last_hash=bindparam("new_last_hash"))
)  # fmt: skip


def lock_head(session: Session) -> tuple[int, str]:
    """Lock the chain head for this transaction and return ``(last_id, last_hash)``.

    A missing head row (fresh database) is created from the last record, else the genesis.
    """
    stmt = _HEAD
    row = session.execute(stmt).first()
    if row is None:
        last = session.execute(
            select(EVENT.c.id, EVENT.c.hash).order_by(EVENT.c.id.desc()).limit(1)
        ).first()
        last_id, last_hash = (int(last.id), str(last.hash)) if last else (0, GENESIS_HASH)
        dialect = session.connection().dialect.name
        ins = (postgresql if dialect == "postgresql" else sqlite).insert(HEAD)
        session.execute(
            ins.values(id=1, last_id=last_id, last_hash=last_hash).on_conflict_do_nothing(
                index_elements=["id"]
            )
        )
        row = session.execute(stmt).one()
    return int(row.last_id), str(row.last_hash)


def append(session: Session, pending: list[dict[str, Any]]) -> None:
    """Chain and insert ``pending`` records after the current head, in this transaction."""
    last_id, prev = lock_head(session)
    rows = []
    for values in pending:
        last_id += 1
        row = {**values, "id": last_id, "prev_hash": prev}
        row["hash"] = prev = chain_hash(prev, row)
        rows.append(row)
    session.execute(_INSERT_EVENTS, rows)
    session.execute(_MOVE_HEAD, {"new_last_id": last_id, "new_last_hash": prev})


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: records are written when the outermost transaction commits
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    if not pending:
        return
    try:
        session.flush()  # the business change first: its errors surface before the head is locked
    except Exception:
        session.info[_PENDING] = pending
        raise
    try:
        append(session, [p.values for p in pending])
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise AuditWriteError(f"审计记录写入失败，本次操作未生效: {reason}") from exc


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    drop_rolled_back(session, _PENDING, previous)


def pending_count(session: Session) -> int:
    """Records queued on ``session`` and not yet written."""
    return len(session.info.get(_PENDING, []))


if not event.contains(Session, "before_commit", _before_commit):
    event.listen(Session, "before_commit", _before_commit)
    event.listen(Session, "after_soft_rollback", _after_soft_rollback)
