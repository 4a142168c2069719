"""Queueing and delivering notifications.

``queue`` inserts rows in the caller's transaction (one executemany) and, once that transaction
commits, hands their ids to the kernel's delivery thread. ``deliver_due`` — the periodic job,
and ``yiwang notify deliver`` — claims due rows with one conditional UPDATE (``lease_until``),
commits the claim, calls the drivers outside any transaction and records each outcome with an
UPDATE conditional on the same lease, so two workers never send one message twice and a worker
that lost its lease never overwrites the other's result.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, event, func, insert, or_, select, update
from sqlalchemy.orm import Session, SessionTransaction

from yiwang.auth.models import User
from yiwang.db.queue import current_transaction, drop_rolled_back
from yiwang.errors import ValidationError
from yiwang.grid.models import utcnow
from yiwang.notify.addresses import clean_email, clean_mobile, scrub
from yiwang.notify.drivers import DeliveryError, Notifier, OutboundMessage, PermanentFailure
from yiwang.notify.models import DEAD, FAILED, PENDING, SENT, NotifyMessage
from yiwang.notify.worker import runtime

if TYPE_CHECKING:
    from yiwang.audit.records import Actor
    from yiwang.kernel import Kernel

log = logging.getLogger("yiwang.notify")

M = NotifyMessage.__table__  # type: ignore[attr-defined]
U = User.__table__  # type: ignore[attr-defined]
#: The in-app channel: its rows are the messages of 我的消息.
INBOX = "outbox"
_KICK = "yiwang.notify.kick"
_FLUSH_EVERY = 50
_FLUSH_SECONDS = 1.0
_NO_ADDRESS = {"email": "用户未登记邮箱", "phone": "用户未登记手机号"}


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery run did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.claimed + other.claimed, self.sent + other.sent,
            self.failed + other.failed, self.dead + other.dead,
        )  # fmt: skip

    def describe(self) -> str:
        return f"领取 {self.claimed} 条：已发送 {self.sent}，失败待重试 {self.failed}，放弃 {self.dead}"


# --- queueing ------------------------------------------------------------------------------------


@dataclass
class _Kick:
    """Ids to hand to the delivery thread when the transaction they were queued in commits."""

    transaction: SessionTransaction | None
    kernel: Kernel
    ids: list[int] = field(default_factory=list)


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: A path on this site: browsers read ``//host`` and ``/\\host`` as another site.
_RELATIVE = re.compile(r"^/(?![/\\])[^\s\\]*$")


def _check_link(link: str) -> str:
    if link and not _RELATIVE.match(link):
        raise ValidationError(f"通知链接应为站内相对地址（以 / 开头）: {link[:60]!r}")
    return link


def _rows(
    targets: Iterable[tuple[int | None, str | None, str]],
    *, subject: str, body: str, link: str, event: str, ref_type: str, ref_id: int | None,
) -> list[dict[str, Any]]:  # fmt: skip
    if not subject.strip():
        raise ValidationError("通知标题不能为空")
    now = utcnow()
    common = {
        "subject": _fit(subject.strip(), 200), "body": _fit(body, 2000), "link": _check_link(link),
        "event": event[:80], "ref_type": ref_type[:60], "ref_id": ref_id, "status": PENDING,
        "attempts": 0, "next_attempt_at": now, "last_error": "", "created_at": now, "sent_at": None,
    }  # fmt: skip
    return [{**common, "user_id": u, "address": a, "channel": c} for u, a, c in targets]


_INSERT_RETURNING = insert(M).returning(M.c.id)  # built once: every notifying write runs it


def _insert(session: Session, kernel: Kernel, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    if not session.in_transaction():
        session.begin()  # tie the rows and the kick to a transaction
    for row in rows:
        if row["channel"] == INBOX:
            # An in-app message is delivered by being written: no second write transaction
            # (on SQLite, a second turn of the write lock) per notification.
            row.update(status=SENT, attempts=1, sent_at=row["created_at"])
    ids = [int(i) for i in session.execute(_INSERT_RETURNING, rows).scalars()]
    pending = [i for i, row in zip(ids, rows, strict=True) if row["status"] == PENDING]
    if pending and kernel.settings.notify.deliver_on_commit:
        _kick_after_commit(session, kernel, pending)
    return ids


def queue(
    session: Session,
    kernel: Kernel,
    *,
    user_ids: Iterable[int],
    subject: str,
    body: str,
    link: str = "",
    event: str = "",
    ref_type: str = "",
    ref_id: int | None = None,
    channels: Iterable[str] | None = None,
) -> int:
    """Queue one message per user per configured channel, inside the caller's transaction (so
    only a committed change notifies). Returns the number of rows queued. Cheap: one
    executemany; delivery starts after commit, in the background.

    ``link`` is a relative URL (``/cases/42``); ``event`` names the cause (``cases.dispatch``).
    ``channels`` narrows the configured channels (e.g. ``["sms_http"]`` for an urgent
    reminder); None: all of them. Repeated user ids get one message. Raises ValidationError
    for an empty subject, a link that is not relative or a channel that is not configured.
    """
    return len(
        enqueue(
            session, kernel, user_ids=user_ids, subject=subject, body=body, link=link,
            event=event, ref_type=ref_type, ref_id=ref_id, channels=channels,
        )
    )  # fmt: skip


def enqueue(
    session: Session,
    kernel: Kernel,
    *,
    user_ids: Iterable[int],
    subject: str,
    body: str,
    link: str = "",
    event: str = "",
    ref_type: str = "",
    ref_id: int | None = None,
    channels: Iterable[str] | None = None,
) -> list[int]:
    """``queue``, returning the new rows' ids instead of their number."""
    users = list(dict.fromkeys(int(u) for u in user_ids))
    configured = kernel.settings.notify.channels
    chosen = configured if channels is None else tuple(dict.fromkeys(channels))
    off = [c for c in chosen if c not in configured]
    if off:
        raise ValidationError(f"通知通道未启用: {', '.join(off)}（notify.channels）")
    rows = _rows(
        ((u, None, c) for u in users for c in chosen),
        subject=subject, body=body, link=link, event=event, ref_type=ref_type, ref_id=ref_id,
    )  # fmt: skip
    return _insert(session, kernel, rows)


def queue_address(
    session: Session,
    kernel: Kernel,
    *,
    channel: str,
    address: str,
    subject: str,
    body: str,
    link: str = "",
    event: str = "",
    ref_type: str = "",
    ref_id: int | None = None,
) -> int:
    """Queue one message to a raw address (a citizen who is not a user, e.g. a case reporter's
    mobile) over ``channel``, which must be configured and take an address. The address is
    stored encrypted. Returns 1."""
    driver = runtime(kernel).drivers.get(channel)
    if driver is None:
        raise ValidationError(f"通知通道 {channel} 未启用")
    if driver.address_kind == "email":
        cleaned = clean_email(address)
    elif driver.address_kind == "phone":
        cleaned = clean_mobile(address)
    else:
        raise ValidationError(f"通知通道 {channel} 不能发送到地址")
    if cleaned is None:
        raise ValidationError("请提供收件地址")
    rows = _rows(
        [(None, cleaned, channel)],
        subject=subject, body=body, link=link, event=event, ref_type=ref_type, ref_id=ref_id,
    )  # fmt: skip
    return len(_insert(session, kernel, rows))


def _kick_after_commit(session: Session, kernel: Kernel, ids: list[int]) -> None:
    kicks: list[_Kick] = session.info.setdefault(_KICK, [])
    tx = current_transaction(session)
    if not kicks or kicks[-1].transaction is not tx or kicks[-1].kernel is not kernel:
        kicks.append(_Kick(tx, kernel))
    kicks[-1].ids.extend(ids)


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: the outermost commit kicks
    kicks: list[_Kick] = session.info.pop(_KICK, None) or []
    by_kernel: dict[int, tuple[Kernel, list[int]]] = {}
    for k in kicks:
        by_kernel.setdefault(id(k.kernel), (k.kernel, []))[1].extend(k.ids)
    for kernel, ids in by_kernel.values():
        runtime(kernel).dispatcher.kick(ids)


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    drop_rolled_back(session, _KICK, previous)


if not event.contains(Session, "after_commit", _after_commit):
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_soft_rollback", _after_soft_rollback)


# --- delivering ----------------------------------------------------------------------------------


def _due(now: datetime) -> Any:
    return and_(
        M.c.status.in_((PENDING, FAILED)),
        M.c.next_attempt_at <= now,
        or_(M.c.lease_until.is_(None), M.c.lease_until <= now),
    )


def _claim(kernel: Kernel, now: datetime, limit: int, ids: Sequence[int] | None) -> tuple[list[int], datetime]:
    """Lease up to ``limit`` due rows (of ``ids`` if given); returns their ids and the lease.

    One conditional UPDATE: a row another worker leased meanwhile no longer matches ``_due``
    (PostgreSQL re-checks the condition after waiting for the other's lock; SQLite runs
    writers one at a time), so each row is claimed once. PostgreSQL skips rows locked by a
    concurrent claim instead of waiting for them.
    """
    lease = now + timedelta(seconds=kernel.settings.notify.lease_seconds)
    pick = select(M.c.id).where(_due(now))
    if ids is not None:
        pick = pick.where(M.c.id.in_(ids))
    pick = pick.order_by(M.c.next_attempt_at, M.c.id).limit(limit)
    if kernel.db.backend == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(M)
        .where(M.c.id.in_(pick.scalar_subquery()), _due(now))
        .values(lease_until=lease)
        .returning(M.c.id)
    )
    with kernel.db.write() as s:
        claimed = sorted(int(i) for i in s.execute(stmt).scalars())
    return claimed, lease


@dataclass
class _Row:
    id: int
    user_id: int | None
    address: str | None
    channel: str
    subject: str
    body: str
    link: str
    event: str
    ref_type: str
    ref_id: int | None
    attempts: int
    next_attempt_at: datetime
    email: str | None


def _load(kernel: Kernel, ids: list[int], drivers: dict[str, Notifier]) -> tuple[list[_Row], dict[int, str]]:
    """The claimed rows with their users' e-mail; mobiles (decrypted here, at send time) only
    for users with a message on a channel that needs one."""
    cols = (
        M.c.id, M.c.user_id, M.c.address, M.c.channel, M.c.subject, M.c.body, M.c.link,
        M.c.event, M.c.ref_type, M.c.ref_id, M.c.attempts, M.c.next_attempt_at, U.c.email,
    )  # fmt: skip
    with kernel.db.read() as s:
        conn = s.connection()
        rows = [
            _Row(**r._mapping)
            for r in conn.execute(
                select(*cols).select_from(M.outerjoin(U, U.c.id == M.c.user_id))
                .where(M.c.id.in_(ids)).order_by(M.c.id)
            )
        ]  # fmt: skip
        need = sorted({
            r.user_id for r in rows
            if r.user_id is not None and getattr(drivers.get(r.channel), "address_kind", "") == "phone"
        })  # fmt: skip
        mobiles = (
            {int(i): str(m) for i, m in conn.execute(select(U.c.id, U.c.mobile).where(U.c.id.in_(need))) if m}
            if need
            else {}
        )
    return rows, mobiles


def _address(row: _Row, kind: str, mobiles: dict[int, str]) -> str:
    if not kind:
        return ""
    if row.user_id is None:
        return row.address or ""
    if kind == "email":
        return row.email or ""
    if kind == "phone":
        return mobiles.get(row.user_id, "")
    return ""


def _short(exc: BaseException, address: str) -> str:
    """The stored reason: short, one line, no address (whatever the driver put in it)."""
    text = str(exc).strip()
    if not isinstance(exc, DeliveryError) or not text:
        text = f"{type(exc).__name__}: {text}".rstrip(": ")
    return _fit(" ".join(scrub(text, address).split()), 300)


def backoff(kernel: Kernel, attempts: int) -> timedelta:
    """Delay before the next try after ``attempts`` failed attempts (doubling, capped)."""
    n = kernel.settings.notify
    return timedelta(seconds=min(n.backoff_max_seconds, n.backoff_seconds * 2 ** max(0, attempts - 1)))


class _Recorder:
    """Writes outcomes in small batches, each UPDATE conditional on our lease."""

    def __init__(self, kernel: Kernel, lease: datetime) -> None:
        self.kernel = kernel
        self.lease = lease
        self.pending: list[dict[str, Any]] = []
        self.last = time.monotonic()
        self.counts = {SENT: 0, FAILED: 0, DEAD: 0}

    def add(self, row: _Row, status: str, when: datetime, error: str = "", next_at: datetime | None = None) -> None:
        self.counts[status] += 1
        self.pending.append({
            "b_id": row.id, "b_lease": self.lease, "b_status": status,
            "b_error": error, "b_next": next_at or row.next_attempt_at,
            "b_sent": when if status == SENT else None,
        })  # fmt: skip
        if len(self.pending) >= _FLUSH_EVERY or time.monotonic() - self.last > _FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.pending:
            return
        stmt = (
            update(M)
            .where(M.c.id == bindparam("b_id"), M.c.lease_until == bindparam("b_lease"))
            .values(
                status=bindparam("b_status"), attempts=M.c.attempts + 1,
                last_error=bindparam("b_error"), next_attempt_at=bindparam("b_next"),
                sent_at=bindparam("b_sent"), lease_until=None,
            )
        )  # fmt: skip
        with self.kernel.db.write() as s:
            s.connection().execute(stmt, self.pending)
        self.pending = []

    def release(self, ids: list[int]) -> None:
        """Give back rows we did not get to (our lease would soon run out)."""
        with self.kernel.db.write() as s:
            s.execute(update(M).where(M.c.id.in_(ids), M.c.lease_until == self.lease).values(lease_until=None))


def _send(kernel: Kernel, ids: list[int], lease: datetime, now: datetime) -> DeliveryReport:
    rt = runtime(kernel)
    drivers = rt.drivers
    rows, mobiles = _load(kernel, ids, drivers)
    recorder = _Recorder(kernel, lease)
    started = time.monotonic()
    max_attempts = rt.settings.max_attempts
    base = rt.settings.base_url
    for n, row in enumerate(rows):
        if time.monotonic() - started > rt.settings.lease_seconds / 2:
            recorder.flush()
            recorder.release([r.id for r in rows[n:]])
            break
        attempt = row.attempts + 1
        driver = drivers.get(row.channel)
        if driver is None:
            recorder.add(row, DEAD, now, f"通知通道 {row.channel} 未启用")
            continue
        address = _address(row, driver.address_kind, mobiles)
        if driver.address_kind and not address:
            reason = _NO_ADDRESS.get(driver.address_kind, "缺少收件地址") if row.user_id else "缺少收件地址"
            recorder.add(row, DEAD, now, reason)
            log.info("通知 #%d（%s）无法投递: %s", row.id, row.channel, reason)
            continue
        message = OutboundMessage(
            id=row.id, channel=row.channel, user_id=row.user_id, subject=row.subject,
            body=row.body, link=row.link, url=(base + row.link) if row.link else "",
            event=row.event, ref_type=row.ref_type, ref_id=row.ref_id, attempt=attempt,
            address=address,
        )  # fmt: skip
        try:
            driver.send(message)
        except Exception as exc:  # a driver's failure never escapes: it is recorded
            error = _short(exc, address)
            if isinstance(exc, PermanentFailure) or attempt >= max_attempts:
                recorder.add(row, DEAD, now, error)
                log.warning("通知 #%d（%s）第 %d 次投递失败，不再重试: %s", row.id, row.channel, attempt, error)
            else:
                next_at = now + backoff(kernel, attempt)
                recorder.add(row, FAILED, now, error, next_at)
                log.warning("通知 #%d（%s）第 %d 次投递失败，稍后重试: %s", row.id, row.channel, attempt, error)
            continue
        recorder.add(row, SENT, now)
    recorder.flush()
    c = recorder.counts
    return DeliveryReport(len(ids), c[SENT], c[FAILED], c[DEAD])


def deliver_due(kernel: Kernel, *, limit: int = 200, now: datetime | None = None) -> DeliveryReport:
    """Claim due messages (pending/failed with ``next_attempt_at <= now`` and no live lease)
    with a conditional UPDATE so two workers never send one message twice, call each driver,
    record sent / failed (exponential backoff from settings) / dead after ``max_attempts``.
    Never raises for a driver failure. One batch of at most ``limit`` messages; run it
    periodically (the ``notify.deliver`` job)."""
    now = now or utcnow()
    ids, lease = _claim(kernel, now, limit, None)
    return _send(kernel, ids, lease, now) if ids else DeliveryReport()


def deliver_job(kernel: Kernel, now: datetime) -> int:
    """The periodic job ``notify.deliver``: due batches until none is full (at most 10 per
    run, so one run stays short); returns how many messages it handled. ``now`` (the run's
    scheduled time) is not used: what is due is decided by the clock at each batch."""
    del now
    handled = 0
    for _ in range(10):
        report = deliver_due(kernel)
        handled += report.claimed
        if report.claimed < 200:
            break
    return handled


def deliver_ids(kernel: Kernel, ids: Sequence[int]) -> DeliveryReport:
    """Deliver those of ``ids`` that are due now (the on-commit path)."""
    report = DeliveryReport()
    for start in range(0, len(ids), 500):
        now = utcnow()
        chunk = list(ids[start : start + 500])
        claimed, lease = _claim(kernel, now, len(chunk), chunk)
        if claimed:
            report += _send(kernel, claimed, lease, now)
    return report


# --- retrying (administrators) ---------------------------------------------------------------------


def retry(session: Session, kernel: Kernel, ids: Sequence[int], *, actor: Actor) -> int:
    """Put failed or dead messages back to pending with a fresh attempt count, delivered after
    commit; audited as ``notify.retry``. A message a worker is trying right now is left to it.
    Returns how many were reset."""
    from yiwang.audit.records import record

    if not ids:
        return 0
    now = utcnow()
    done: list[int] = []
    for start in range(0, len(ids), 500):
        done += [
            int(i)
            for i in session.execute(
                update(M)
                .where(
                    M.c.id.in_(list(ids[start : start + 500])),
                    M.c.status.in_((FAILED, DEAD)),
                    or_(M.c.lease_until.is_(None), M.c.lease_until <= now),  # not in flight
                )
                .values(status=PENDING, attempts=0, next_attempt_at=now, lease_until=None)
                .returning(M.c.id)
            ).scalars()
        ]
    if done:
        done.sort()
        record(
            session, "notify.retry", actor=actor, object_type="notify_message",
            object_id=done[0] if len(done) == 1 else "",
            detail={"count": len(done), "ids": done[:100]},
        )  # fmt: skip
        if kernel.settings.notify.deliver_on_commit:
            _kick_after_commit(session, kernel, done)
    return len(done)


# --- the in-app inbox (我的消息) ----------------------------------------------------------------------


def _mine(user_id: int) -> Any:
    return and_(M.c.user_id == user_id, M.c.channel == INBOX)


def unread_count(session: Session, user_id: int) -> int:
    """The user's unread in-app messages (one indexed count)."""
    stmt = select(func.count()).select_from(M).where(_mine(user_id), M.c.read_at.is_(None))
    return int(session.execute(stmt).scalar_one())


def mark_read(session: Session, user_id: int, message_id: int) -> bool:
    """Mark one of the user's own in-app messages read; False if it is not theirs."""
    found = session.execute(
        update(M).where(_mine(user_id), M.c.id == message_id, M.c.read_at.is_(None))
        .values(read_at=utcnow()).returning(M.c.id)
    ).first()  # fmt: skip
    if found is not None:
        return True
    return session.execute(select(M.c.id).where(_mine(user_id), M.c.id == message_id)).first() is not None


def mark_all_read(session: Session, user_id: int) -> int:
    """Mark every unread in-app message of the user read; returns how many."""
    result = session.execute(
        update(M).where(_mine(user_id), M.c.read_at.is_(None)).values(read_at=utcnow()).returning(M.c.id)
    )
    return len(result.all())


__all__ = [
    "DeliveryReport",
    "INBOX",
    "backoff",
    "deliver_due",
    "deliver_ids",
    "deliver_job",
    "enqueue",
    "mark_all_read",
    "mark_read",
    "queue",
    "queue_address",
    "retry",
    "unread_count",
]
