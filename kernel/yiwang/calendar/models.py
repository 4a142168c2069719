"""The override table: a province's own working-day arrangements (工作日历调整)."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel

from yiwang.grid.models import utcnow


class CalendarDay(SQLModel, table=True):
    """One day a province declares a working day (上班) or a day off (休息), overriding the
    State Council's arrangement and the weekend rule for every node of that province.

    ``node_id`` is the province — the root node of the net whose subtree the override covers.
    """

    __tablename__ = "calendar_day"

    node_id: int = Field(foreign_key="grid_node.id", primary_key=True)
    day: date = Field(primary_key=True)
    #: True: 上班 (a working day); False: 休息 (a day off).
    workday: bool
    #: What the day is and why, e.g. "国庆节调休", "壮族三月三".
    name: str = Field(max_length=60)
    #: The user who set it (None from the command line; the audit trail names the operator).
    created_by: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
