"""工作台 (dashboard): a jurisdiction's cases at a glance (docs/dashboard.md).

``/dashboard?node=<code>&period=today|week|month`` shows, for the node (the user's current
jurisdiction, or a node inside it), the counts of today / this week / this month, the cases
overdue or carded now, a 30-day trend, the cases by type, the children ranked, and the longest
overdue cases; ``/dashboard/data.json`` gives the charts the same numbers.

Every number is read from the kernel's rollups (``cases.tallies``: a few primary-key range
reads whatever the size of the subtree) except the by-type chart and the overdue list, which
are bounded indexed reads (see the docs). Every number links to the inbox filtered to exactly
the cases it counts (``inbox_url``): the tests check that the list shows that many.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from yiwang import stats
from yiwang.cases import tallies
from yiwang.cases.engine import CASE, utcnow
from yiwang.cases.forms import TZ, local
from yiwang.cases.models import CARDS
from yiwang.grid.levels import Level
from yiwang.grid.tree import NodeRow, within
from yiwang.privacy.masking import mask_text
from yiwang.rbac.guard import require, requires
from yiwang.web.context import current_node, kernel_of, principal

PERIODS = {"today": "今日", "week": "本周", "month": "本月"}
#: The measures of the period cards, with the inbox ``date`` filter that lists them.
MEASURES = {"reported": ("上报", "reported"), "accepted": ("受理", "accepted"),
            "closed": ("结案", "closed")}  # fmt: skip
FLAGS = {"overdue": "超期在办", "yellow": "黄牌", "red": "红牌"}
TREND_DAYS = 30
OVERDUE_SHOWN = 10


def routes() -> list[BaseRoute]:
    return [
        Route("/dashboard", page, methods=["GET"], name="dashboard"),
        Route("/dashboard/data.json", data, methods=["GET"], name="dashboard:data"),
    ]


def inbox_url(tab: str = "all", **params: str) -> str:
    """The inbox listing exactly the cases a number counts."""
    kept = {"tab": tab, **{k: v for k, v in params.items() if v}}
    return "/cases/?" + urlencode(kept)


def today() -> date:
    return utcnow().astimezone(TZ).date()


def period_start(period: str, day: date) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())  # Monday
    if period == "month":
        return day.replace(day=1)
    return day


@dataclass(frozen=True)
class Count:
    """A number on the dashboard and the list behind it."""

    label: str
    value: int
    href: str


@dataclass
class ChildRow:
    code: str
    name: str
    href: str
    reported: Count
    closed: Count
    overdue: Count
    on_time: str  # "96.0%" or "—" when nothing was closed


@dataclass
class Board:
    node: NodeRow
    level: str
    period: str
    day: date
    cards: dict[str, list[Count]] = field(default_factory=dict)
    flags: list[Count] = field(default_factory=list)
    trend: list[dict[str, Any]] = field(default_factory=list)
    types: list[Count] = field(default_factory=list)
    children: list[ChildRow] = field(default_factory=list)
    overdue: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "node": {"code": self.node.code, "name": self.node.name, "level": self.level},
            "period": self.period, "period_title": PERIODS[self.period], "day": self.day.isoformat(),
            "cards": {p: [asdict(c) for c in cs] for p, cs in self.cards.items()},
            "flags": [asdict(c) for c in self.flags], "trend": self.trend,
            "types": [asdict(c) for c in self.types],
            "children": [asdict(c) for c in self.children],
        }  # fmt: skip


def _span(period: str, day: date, code: str, measure: str) -> dict[str, str]:
    date_field = MEASURES[measure][1]
    return {"area": code, "date": "" if date_field == "reported" else date_field,
            "since": period_start(period, day).isoformat(), "until": day.isoformat()}  # fmt: skip


def build(kernel: Any, s: Session, node: NodeRow, period: str, day: date | None = None) -> Board:
    """Everything the dashboard shows of ``node`` (the caller checked the user may see it)."""
    day = day or today()
    board = Board(node, _level(node.level), period, day)
    first = min(day - timedelta(days=TREND_DAYS - 1), period_start("month", day),
                period_start("week", day))  # fmt: skip
    keys = tuple(MEASURES)
    daily = stats.days(s, tallies.DAILY, node.id, keys, first, day)
    for p in PERIODS:
        start = period_start(p, day)
        board.cards[p] = [
            Count(label, sum(n for d, n in daily[m].items() if d >= start),
                  inbox_url(**_span(p, day, node.code, m)))
            for m, (label, _) in MEASURES.items()
        ]  # fmt: skip
    flags = stats.by_key(s, tallies.FLAGS, node.id, keys=tuple(FLAGS))
    board.flags = [
        Count(FLAGS["overdue"], flags["overdue"], inbox_url("overdue", area=node.code)),
        Count(FLAGS["yellow"], flags["yellow"], inbox_url(card="yellow", area=node.code)),
        Count(FLAGS["red"], flags["red"], inbox_url(card="red", area=node.code)),
    ]
    for i in range(TREND_DAYS):
        d = day - timedelta(days=TREND_DAYS - 1 - i)
        iso = d.isoformat()
        board.trend.append({
            "day": iso, "reported": daily["reported"][d], "closed": daily["closed"][d],
            "reported_href": inbox_url(area=node.code, since=iso, until=iso),
            "closed_href": inbox_url(area=node.code, date="closed", since=iso, until=iso),
        })  # fmt: skip
    board.types = _by_type(kernel, s, node, period, day)
    board.children = _children(s, node, period, day)
    board.overdue = _overdue(kernel, s, node)
    return board


def _midnight(day: date) -> datetime:
    """Beijing midnight of ``day`` in UTC, as the inbox's date filter bounds it."""
    return datetime.combine(day, time(0), TZ).astimezone(UTC)


def _level(level: int) -> str:
    try:
        return Level(level).label
    except ValueError:
        return ""


def _by_type(kernel: Any, s: Session, node: NodeRow, period: str, day: date) -> list[Count]:
    """Cases reported in the period by type: one GROUP BY bounded by the report date (the
    ``(case_type, created_at)`` index) and the subtree (the ``node_path`` index)."""
    start = period_start(period, day)
    rows = s.execute(
        select(CASE.c.case_type, func.count())
        .where(within(CASE.c.node_path, node.path), CASE.c.created_at >= _midnight(start),
               CASE.c.created_at < _midnight(day + timedelta(days=1)))
        .group_by(CASE.c.case_type)
    ).all()  # fmt: skip
    types = kernel.cases.types
    out = [
        Count(types[t].title if t in types else t, int(n),
              inbox_url(type=t, area=node.code, since=start.isoformat(), until=day.isoformat()))
        for t, n in rows
    ]  # fmt: skip
    return sorted(out, key=lambda c: (-c.value, c.label))


def _children(s: Session, node: NodeRow, period: str, day: date) -> list[ChildRow]:
    """The children ranked by cases reported in the period (ties by code)."""
    start = period_start(period, day)
    keys = ("reported", "closed", "closed_late")
    kids = stats.children_days(s, tallies.DAILY, node.id, keys, start, day)
    flags = {k.id: c for k, c in stats.children(s, tallies.FLAGS, node.id, keys=("overdue",))}
    out = []
    for kid, c in kids:
        closed, late = c["closed"], c["closed_late"]
        out.append(ChildRow(
            code=kid.code, name=kid.name,
            href="/dashboard?" + urlencode({"node": kid.code, "period": period}),
            reported=Count("上报", c["reported"], inbox_url(**_span(period, day, kid.code, "reported"))),
            closed=Count("结案", closed, inbox_url(**_span(period, day, kid.code, "closed"))),
            overdue=Count("超期在办", flags.get(kid.id, {}).get("overdue", 0),
                          inbox_url("overdue", area=kid.code)),
            on_time=f"{100 * (closed - late) / closed:.1f}%" if closed else "—",
        ))  # fmt: skip
    return sorted(out, key=lambda r: (-r.reported.value, r.code))


def _overdue(kernel: Any, s: Session, node: NodeRow) -> list[dict[str, Any]]:
    """The cases overdue longest (earliest time limit first)."""
    rows = s.execute(
        select(CASE.c.id, CASE.c.serial, CASE.c.title, CASE.c.case_type, CASE.c.due_at, CASE.c.card)
        .where(within(CASE.c.node_path, node.path), CASE.c.overdue.is_(True))
        .order_by(CASE.c.due_at, CASE.c.id).limit(OVERDUE_SHOWN)
    ).all()  # fmt: skip
    types = kernel.cases.types
    return [
        {"id": r.id, "serial": r.serial, "title": mask_text(r.title), "due": local(r.due_at),
         "type": types[r.case_type].title if r.case_type in types else r.case_type,
         "card": r.card, "href": f"/cases/{r.id}"}
        for r in rows
    ]  # fmt: skip


def _board(request: Request) -> Board | None:
    node = current_node(request)
    if node is None:
        return None
    require(request, "cases.view", node.path)
    period = request.query_params.get("period", "month")
    if period not in PERIODS:
        period = "month"
    kernel = kernel_of(request)
    with kernel.db.read() as s:
        return build(kernel, s, node, period)


@requires("cases.view")
def page(request: Request) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    board = _board(request)
    trail: list[Any] = []
    if board is not None:
        from yiwang.admin.common import tree_context

        with kernel.db.read() as s:
            trail = tree_context(s, who, board.node)["trail"]
    ctx = {"board": board, "card_names": CARDS, "periods": PERIODS, "trail": trail, "generated": local(datetime.now(TZ)),
           "overdue_all": inbox_url("overdue", area=board.node.code) if board else ""}  # fmt: skip
    return kernel.templates.render(
        request, "cases/dashboard.html", ctx, node=board.node if board else None
    )


@requires("cases.view")
def data(request: Request) -> Response:
    board = _board(request)
    if board is None:
        return JSONResponse({"error": {"code": "no_jurisdiction", "message": "您还没有辖区"}},
                            status_code=404)  # fmt: skip
    return JSONResponse(board.as_json(), headers={"Cache-Control": "no-store"})


__all__ = ["Board", "build", "inbox_url", "routes"]
