"""The case clock (时限监督): raises yellow/red cards and overdue flags when their instants pass.

Each case carries the instants of its running clock (``yellow_at``, ``red_at``, ``due_at``),
computed from the working-day calendar when the clock started, so the job is a set of indexed
"instant <= now" queries: it catches up after any downtime by construction. Every change is a
compare-and-set on the case's version, so two workers (or a worker and a user) never both
write a card; each card is a timeline step, an audit record and a notification.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, select, update

from yiwang.audit import Actor
from yiwang.audit import record as audit
from yiwang.cases import events, tallies
from yiwang.cases.engine import CASE, STEP, utcnow
from yiwang.cases.models import CARDS

if TYPE_CHECKING:
    from sqlmodel import Session

    from yiwang.kernel import Kernel

ACTOR = Actor.system("cases.clock")
BATCH = 500


@dataclass(frozen=True)
class Rise:
    """One kind of change the clock makes."""

    action: str
    title: str

    def pending(self, now: datetime) -> object:
        c = CASE.c
        running = and_(c.clock != "", c.suspended_at.is_(None))
        if self.action == "card_red":
            return and_(running, c.red_at <= now, c.card != "red")
        if self.action == "card_yellow":
            return and_(running, c.yellow_at <= now, c.card == "", c.red_at > now)
        return and_(running, c.due_at <= now, c.overdue.is_(False))

    def values(self) -> dict[str, object]:
        if self.action == "card_red":
            return {"card": "red"}
        if self.action == "card_yellow":
            return {"card": "yellow"}
        return {"overdue": True, "ever_overdue": True}


RISES = (Rise("card_red", "红牌预警"), Rise("card_yellow", "黄牌预警"), Rise("overdue", "超期"))


def run_clock(kernel: Kernel, now: datetime | None = None) -> int:
    """Apply every card and overdue flag due at ``now`` in short batches (the ``cases.clock``
    job); returns how many changes were made."""
    now = now or utcnow()
    done = 0
    while True:
        with kernel.db.write() as s:
            n, more = apply_due(kernel, s, now, limit=BATCH)
        done += n
        if not more:
            return done


def apply_due(kernel: Kernel, session: Session, now: datetime, *, limit: int | None = None) -> tuple[int, bool]:
    """One batch in the caller's unit of work: ``(changes made, whether more may be due)``."""
    done, more = 0, False
    for rise in RISES:
        query = select(
            CASE.c.id, CASE.c.version, CASE.c.state, CASE.c.org_id, CASE.c.serial,
            CASE.c.node_id, CASE.c.node_path, CASE.c.title, CASE.c.card, CASE.c.overdue,
            CASE.c.created_at, CASE.c.accepted_at, CASE.c.closed_at, CASE.c.close_type,
        ).where(rise.pending(now)).order_by(CASE.c.id)  # type: ignore[arg-type]  # fmt: skip
        rows = session.execute(query if limit is None else query.limit(limit)).all()
        more = more or (limit is not None and len(rows) == limit)
        for row in rows:
            done += _apply(kernel, session, rise, row, now)
    return done, more


def _apply(kernel: Kernel, s: Session, rise: Rise, r: Any, now: datetime) -> int:
    changed = s.execute(
        update(CASE)
        .where(CASE.c.id == r.id, CASE.c.version == r.version)
        .values(**rise.values(), version=r.version + 1, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        return 0  # someone acted on the case meanwhile: the next run looks again
    before = tallies.Snapshot.of(r)
    rises = rise.values()
    after = replace(before, card=str(rises.get("card", before.card)),
                    overdue=bool(rises.get("overdue", before.overdue)))  # fmt: skip
    tallies.track(s, r.node_path, before, after)
    last = s.execute(
        select(STEP.c.seq, STEP.c.finished_at)
        .where(STEP.c.case_id == r.id)
        .order_by(STEP.c.seq.desc())
        .limit(1)
    ).first()
    data = {"card": rise.values().get("card", ""), "previous": CARDS.get(r.card, "")}
    step_id = s.execute(
        insert(STEP).values(
            case_id=r.id, seq=(last.seq if last else 0) + 1, action=rise.action, title=rise.title,
            from_state=r.state, to_state=r.state, from_org_id=r.org_id, to_org_id=r.org_id,
            actor_id=None, actor_name="系统", opinion="", data=json.dumps(data, ensure_ascii=False),
            entered_at=last.finished_at if last else now, finished_at=now,
        ).returning(STEP.c.id)
    ).scalar_one()  # fmt: skip
    audit(s, f"cases.{rise.action}", actor=ACTOR, object_type="case", object_id=r.id,
          detail={"serial": r.serial})  # fmt: skip
    _notify(kernel, s, r, rise)
    events.queue(s, kernel, _CaseRef(r.id, r.node_id, r.node_path), rise.action, step_id)
    return 1


@dataclass(frozen=True)
class _CaseRef:
    id: int
    node_id: int
    node_path: str


def _notify(kernel: Kernel, s: Session, r: Any, rise: Rise) -> None:
    from yiwang import notify
    from yiwang.cases.engine import _holder_users
    from yiwang.cases.models import Case

    case = s.get(Case, r.id)
    if case is None:
        return
    users = _holder_users(kernel, s, case)
    if users:
        notify.queue(
            s, kernel, user_ids=users, subject=f"事件{rise.title}：{case.title}"[:120],
            body=f"事件 {case.serial}「{case.title}」{rise.title}，请尽快办理。",
            link=f"/cases/{case.id}", event=f"cases.{rise.action}", ref_type="case", ref_id=case.id,
        )  # fmt: skip
