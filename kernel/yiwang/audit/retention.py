"""Purging old records without losing verifiability.

A purge signs a ``purge`` checkpoint for the last record it removes (the boundary); that signed
``(id, hash)`` is the new genesis: the first kept record's ``prev_hash`` must equal it. The
checkpoint and the ``audit.purge`` record are committed first (under the chain head), then the
old rows are deleted oldest first in short batches, so audited writes are never held up and an
interrupted purge leaves an intact remnant that ``verify`` accepts and the next purge removes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from yiwang.audit.checkpoints import Checkpoint, append_log, trusted_anchor, write_checkpoint
from yiwang.audit.integrity import verify
from yiwang.audit.records import EVENT, Actor, format_time, lock_head, record, utcnow
from yiwang.db import Database
from yiwang.errors import AuditTampered, ValidationError
from yiwang.keys import audit_signing_key
from yiwang.settings import Settings

#: Rows deleted per transaction.
DELETE_BATCH = 5000


@dataclass(frozen=True)
class PurgeResult:
    deleted: int
    boundary_id: int
    checkpoint: Checkpoint | None


def retention_floor(settings: Settings, now: datetime | None = None) -> datetime:
    """Records at or after this time must be kept (``now − audit.retention_days``)."""
    return (now or utcnow()) - timedelta(days=settings.audit_retention_days)


def check_before(settings: Settings, before: datetime, now: datetime | None = None) -> datetime:
    """``before`` as aware UTC (naive: UTC); ValidationError when it is inside the retention
    period."""
    if before.tzinfo is None:
        before = before.replace(tzinfo=UTC)
    floor = retention_floor(settings, now)
    if before > floor:
        raise ValidationError(
            f"拒绝清理：{before.astimezone(UTC):%Y-%m-%d %H:%M} (UTC) 在保留期内。"
            f"审计记录保留 {settings.audit_retention_days} 天（audit.retention_days），"
            f"只能清理 {floor:%Y-%m-%d %H:%M} (UTC) 之前的记录"
        )
    return before


def purge(
    db: Database, settings: Settings, before: datetime, actor: Actor, *, now: datetime | None = None
) -> PurgeResult:
    """Delete records older than ``before`` (naive: UTC).

    Refuses (ValidationError) when ``before`` is newer than the retention floor, and
    (AuditTampered) when the trail does not verify — a purge must not destroy evidence.
    The purge is itself recorded (``audit.purge``).
    """
    before = check_before(settings, before, now)
    key = audit_signing_key(settings)
    report = verify(db, settings, public=key.public_key())
    if not report.ok:
        raise AuditTampered(
            f"审计链校验未通过，拒绝清理（清理会销毁证据）: 记录 #{report.first_broken_id}: {report.reason}"
        )
    cp: Checkpoint | None = None
    with db.write() as s:
        last_id, _ = lock_head(s)
        anchor_id, _ = trusted_anchor(s, key.public_key())
        newer = s.execute(
            select(EVENT.c.id).where(EVENT.c.time >= before).order_by(EVENT.c.id).limit(1)
        ).scalar()
        boundary = int(newer) - 1 if newer is not None else last_id
        first = s.execute(select(func.min(EVENT.c.id))).scalar()
        if boundary > anchor_id:
            boundary_hash = s.execute(select(EVENT.c.hash).where(EVENT.c.id == boundary)).scalar_one()
            cp = write_checkpoint(
                s, key, "purge", last_id=boundary, last_hash=boundary_hash, first_id=anchor_id + 1
            )
        else:
            boundary = anchor_id
        record(
            s, "audit.purge", actor=actor, object_type="audit_event",
            detail={
                "before": format_time(before),
                "boundary_id": boundary,
                "records": max(0, boundary - int(first or boundary + 1) + 1),
                "checkpoint": cp.seq if cp else None,
            },
        )  # fmt: skip
    if cp is not None:
        append_log(settings.audit_checkpoint_log, cp)
    return PurgeResult(deleted=delete_purged(db, boundary), boundary_id=boundary, checkpoint=cp)


def delete_purged(db: Database, boundary: int) -> int:
    """Delete records up to ``boundary`` oldest first, ``DELETE_BATCH`` per transaction."""
    deleted = 0
    while True:
        with db.write() as s:
            low = s.execute(select(func.min(EVENT.c.id)).where(EVENT.c.id <= boundary)).scalar()
            if low is None:
                return deleted
            high = min(int(low) + DELETE_BATCH - 1, boundary)
            result = s.execute(delete(EVENT).where(EVENT.c.id <= high))
            deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
