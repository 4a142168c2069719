"""Case tallies (事件统计): the counts the dashboard reads, kept in the kernel's rollups.

Two indicators, kept by the engine and the clock in the unit of work that changes the case:

- ``cases.daily`` (dated): per Beijing day, how many cases were ``reported`` (``created_at``),
  ``accepted`` (``accepted_at``), ``closed`` (``closed_at``) and of those ``closed_late``
  (closed as 超期结案). A case counts on the day its column holds now: accepted again, it moves
  to the new day; reopened (``closed_at`` cleared), it leaves its closing day.
- ``cases.flags``: cases carrying ``overdue`` or a ``yellow``/``red`` card now.

Both equal what the inbox lists for the same filters (``/cases/?tab=…&area=…&date=…``), so a
number on the dashboard is the count of the list it links to. A case's keys are derived from its
columns (``keys_of``); a change moves the case from its old keys to its new ones (``track``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from yiwang import stats
from yiwang.cases.models import Case
from yiwang.stats import Indicator, day_key

CASE = Case.__table__  # type: ignore[attr-defined]
TZ = ZoneInfo("Asia/Shanghai")
DAILY = "cases.daily"
FLAGS = "cases.flags"
DAILY_KEYS = ("reported", "accepted", "closed", "closed_late")
FLAG_KEYS = ("overdue", "yellow", "red")


def local_day(value: datetime) -> date:
    """The Beijing day of a stored (UTC) instant."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(TZ).date()


@dataclass(frozen=True)
class Snapshot:
    """The columns of a case the tallies depend on."""

    created_at: datetime | None
    accepted_at: datetime | None
    closed_at: datetime | None
    close_type: str
    card: str
    overdue: bool

    @classmethod
    def of(cls, case: Any) -> Snapshot:
        return cls(case.created_at, case.accepted_at, case.closed_at, case.close_type or "",
                   case.card or "", bool(case.overdue))  # fmt: skip


def keys_of(snap: Snapshot | None) -> set[tuple[str, str]]:
    """``(indicator, rollup key)`` pairs a case in this state counts under."""
    if snap is None:
        return set()
    out: set[tuple[str, str]] = set()
    for key, when in (("reported", snap.created_at), ("accepted", snap.accepted_at),
                      ("closed", snap.closed_at)):  # fmt: skip
        if when is not None:
            out.add((DAILY, day_key(key, local_day(when))))
    if snap.closed_at is not None and snap.close_type == "overdue":
        out.add((DAILY, day_key("closed_late", local_day(snap.closed_at))))
    if snap.overdue:
        out.add((FLAGS, "overdue"))
    if snap.card in ("yellow", "red"):
        out.add((FLAGS, snap.card))
    return out


def track(session: Session, path: str, before: Snapshot | None, after: Snapshot) -> None:
    """Count a case change at its occurrence node ``path`` (applied at commit)."""
    old, new = keys_of(before), keys_of(after)
    for indicator, key in sorted(old - new):
        stats.add(session, indicator, path, key, -1)
    for indicator, key in sorted(new - old):
        stats.add(session, indicator, path, key, 1)


def _rows(session: Session, indicator: str) -> Iterator[tuple[str, str, int]]:
    cols = (CASE.c.node_path, CASE.c.created_at, CASE.c.accepted_at, CASE.c.closed_at,
            CASE.c.close_type, CASE.c.card, CASE.c.overdue)  # fmt: skip
    result = session.execute(select(*cols).execution_options(yield_per=5000))
    for r in result:
        snap = Snapshot(r.created_at, r.accepted_at, r.closed_at, r.close_type, r.card, r.overdue)
        for ind, key in keys_of(snap):
            if ind == indicator:
                yield r.node_path, key, 1


def indicators() -> list[Indicator]:
    return [
        Indicator(DAILY, "事件（按日：上报、受理、结案、超期结案）", DAILY_KEYS,
                  lambda s: _rows(s, DAILY), dated=True),
        Indicator(FLAGS, "事件（超期、黄牌、红牌）", FLAG_KEYS, lambda s: _rows(s, FLAGS)),
    ]  # fmt: skip
