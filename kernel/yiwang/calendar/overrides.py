"""A province's overrides: set and removed with a reason, audited, seen by every worker.

An override belongs to a province — the root node of the net — and applies to its whole
subtree. Each change is audited in its own transaction (``calendar.override.set`` /
``calendar.override.remove``) and moves the shared calendar epoch, so every worker rebuilds
that province's calendar; the worker that made the change at once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlmodel import Session, col

from yiwang.audit import Actor, record
from yiwang.calendar.cache import EPOCH, cache_of, province_id_of
from yiwang.calendar.models import CalendarDay
from yiwang.calendar.official import FIRST_YEAR, LAST_YEAR
from yiwang.db.epoch import bump_counter
from yiwang.errors import NotFound, ValidationError
from yiwang.grid.models import utcnow
from yiwang.grid.tree import BY_ID, NodeRow

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

#: Longest name (reason) of an override, as the column allows.
MAX_NAME = 60


class Province(Protocol):
    """A province node as the functions below need it (a ``NodeRow`` or a ``Node``)."""

    @property
    def id(self) -> int | None: ...
    @property
    def name(self) -> str: ...
    @property
    def parent_id(self) -> int | None: ...


def parse_day(text: str) -> date:
    """A date typed as ``YYYY-MM-DD``, else a Chinese ValidationError."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise ValidationError(f"日期格式应为 年-月-日，如 2026-10-01: {text!r}") from None


def province_of(session: Session, node_path: str) -> NodeRow:
    """The province (root node) whose subtree holds the node at ``node_path``."""
    row = session.connection().execute(BY_ID, {"id": province_id_of(node_path)}).first()
    if row is None:
        raise NotFound(f"节点路径 {node_path} 所在的省不存在")
    return NodeRow(*row)


def problems_of(province: Province, day: date, name: str) -> list[str]:
    """What is wrong with an override (empty: it may be saved)."""
    problems = []
    if province.parent_id is not None:
        problems.append(f"工作日历只能按省调整：{province.name} 不是省级（根）节点")
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        problems.append(f"日期应在 {FIRST_YEAR}–{LAST_YEAR} 年之间")
    if not name.strip():
        problems.append("请填写名称或原因（如“国庆节调休”）")
    elif len(name.strip()) > MAX_NAME:
        problems.append(f"名称或原因不能超过 {MAX_NAME} 个字")
    return problems


def set_override(
    kernel: Kernel, province: Province, day: date, *, workday: bool, name: str, actor: Actor
) -> None:
    """Make ``day`` a working day (``workday``) or a day off in ``province``, replacing any
    override it had. Raises ValidationError (nothing saved) for a bad province, day or name."""
    problems = problems_of(province, day, name)
    if problems:
        raise ValidationError("工作日历调整未保存", problems)
    assert province.id is not None
    name = name.strip()
    with kernel.db.write() as s:
        row = s.get(CalendarDay, (province.id, day))
        record(
            s, "calendar.override.set", actor=actor, object_type="calendar_day",
            object_id=f"{province.id}:{day.isoformat()}",
            detail={"node_id": province.id, "day": day.isoformat(), "workday": workday, "name": name,
                    "was": None if row is None else {"workday": row.workday, "name": row.name}},
        )  # fmt: skip
        if row is None:
            row = CalendarDay(node_id=province.id, day=day, workday=workday, name=name)
        else:
            row.workday, row.name, row.created_at = workday, name, utcnow()
        row.created_by = actor.user_id
        s.add(row)
        bump_counter(s, EPOCH)
    cache_of(kernel).reload()


def remove_override(
    kernel: Kernel, province: Province, day: date, *, actor: Actor, reason: str = ""
) -> None:
    """Remove ``province``'s override of ``day`` (the national arrangement applies again).
    Raises NotFound when there is none."""
    assert province.id is not None
    with kernel.db.write() as s:
        row = s.get(CalendarDay, (province.id, day))
        if row is None:
            raise NotFound(f"{province.name} 没有对 {day.isoformat()} 的调整")
        record(
            s, "calendar.override.remove", actor=actor, object_type="calendar_day",
            object_id=f"{province.id}:{day.isoformat()}",
            detail={"node_id": province.id, "day": day.isoformat(), "reason": reason.strip(),
                    "was": {"workday": row.workday, "name": row.name}},
        )  # fmt: skip
        s.delete(row)
        bump_counter(s, EPOCH)
    cache_of(kernel).reload()


def overrides_of(session: Session, province_id: int, year: int | None = None) -> list[CalendarDay]:
    """The province's overrides in date order (of one year when ``year`` is given)."""
    query = select(CalendarDay).where(col(CalendarDay.node_id) == province_id)
    if year is not None:
        query = query.where(
            col(CalendarDay.day) >= date(year, 1, 1), col(CalendarDay.day) <= date(year, 12, 31)
        )
    return list(session.scalars(query.order_by(col(CalendarDay.day))))
