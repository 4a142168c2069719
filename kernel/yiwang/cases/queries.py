"""Scoped case lists (事件列表): the inbox tabs, filters and duplicate suggestions.

Scope is SQL, never a per-row check: a user sees the cases occurring in their subtree, held by
an organisation in it, or copied to one in it (``cases.view``). "待办" (to do) is the cases in a
state where the user holds a main action's permission at the holding unit's node, plus cases
assigned to them; "已办" the cases they have taken a step on.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, false, func, or_, select

from yiwang.cases.engine import CASE, COPY, STEP
from yiwang.cases.models import SCALE, URGENCY
from yiwang.grid.geo import distance_m
from yiwang.grid.models import Node, Organisation
from yiwang.grid.tree import within

if TYPE_CHECKING:
    from sqlmodel import Session

    from yiwang.kernel import Kernel
    from yiwang.rbac.authz import Grant

TABS = {"todo": "待办", "done": "已办", "overdue": "超期", "all": "全部"}
#: Which date ``since``/``until`` bound (``?date=``): the report's (default), acceptance, closing.
DATE_FIELDS = {"reported": "上报日期", "accepted": "受理日期", "closed": "结案日期"}
PAGE_SIZE = 20
#: Columns a list shows (and exports); the UI lets a user choose among them.
LIST_COLUMNS = (
    CASE.c.id, CASE.c.serial, CASE.c.title, CASE.c.case_type, CASE.c.state, CASE.c.urgency,
    CASE.c.scale, CASE.c.channel, CASE.c.card, CASE.c.overdue, CASE.c.supervision, CASE.c.due_at,
    CASE.c.created_at, CASE.c.updated_at, CASE.c.node_id, CASE.c.org_id, CASE.c.address,
    CASE.c.version, CASE.c.lat, CASE.c.lon, CASE.c.reporter_name, CASE.c.reporter_phone,
)  # fmt: skip
ORG = Organisation.__table__  # type: ignore[attr-defined]
NODE = Node.__table__  # type: ignore[attr-defined]
#: Names a list shows beside the case columns: the holding unit's, the occurrence node's.
NAME_COLUMNS = (
    ORG.c.name.label("org_name"), NODE.c.code.label("node_code"), NODE.c.name.label("node_name"),
)  # fmt: skip
#: What deciding a listed case's actions reads (``engine.available``): the inbox offers its bulk
#: actions from the page's rows without loading the cases again.
ACTION_COLUMNS = (
    CASE.c.workflow, CASE.c.workflow_version, CASE.c.extension_days, CASE.c.rating,
    CASE.c.reporter_id, CASE.c.assignee_id, CASE.c.node_path, CASE.c.org_path,
)  # fmt: skip
NEWEST = (CASE.c.updated_at.desc(), CASE.c.id.desc())


def view_scope(
    kernel: Kernel, grants: Sequence[Grant], user_id: int | None = None
) -> ColumnElement[bool]:
    """Cases the holder of ``grants`` may see."""
    paths = kernel.authz.scope_paths(grants, "cases.view")
    if not paths:
        return false()
    inside = [within(CASE.c.node_path, p) for p in paths] + [
        within(CASE.c.org_path, p) for p in paths
    ]
    copied = exists().where(
        COPY.c.case_id == CASE.c.id, or_(*(within(COPY.c.org_path, p) for p in paths))
    )
    conds: list[ColumnElement[bool]] = [*inside, copied]
    if user_id is not None:
        conds += [CASE.c.assignee_id == user_id, CASE.c.reporter_id == user_id]
    return or_(*conds)


def todo_states(kernel: Kernel) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(permission, states where a main action needs it), over every workflow of the kernel —
    collected once per kernel (workflows are declared at start)."""
    found: tuple[tuple[str, tuple[str, ...]], ...] | None = getattr(kernel.cases, "_todo_states", None)
    if found is None:
        by_permission: dict[str, set[str]] = {}
        for wf in kernel.cases.workflows.values():
            term = wf.terminal
            for a in wf.actions:
                if not a.primary or a.reporter_only:
                    continue
                # A finished case waits for no one: 评价 and 重开 are offered on its page, but
                # every closed case would otherwise sit in 待办 of all who may rate or reopen.
                states = {s.name for s in wf.states if a.starts_from(s.name, term)} - set(term)
                by_permission.setdefault(a.permission, set()).update(states)
        found = tuple((perm, tuple(sorted(states))) for perm, states in sorted(by_permission.items()))
        kernel.cases._todo_states = found  # type: ignore[attr-defined]
    return found


def todo_filter(kernel: Kernel, grants: Sequence[Grant], user_id: int) -> ColumnElement[bool]:
    """Cases waiting for this user: a main action they may take where the case is held.

    Permissions reaching the same subtrees share one branch (their states together): a station
    holding every case permission gets one ``state IN (…)`` instead of one per permission, which
    SQLite answers with one index probe per state instead of one per (permission, state)."""
    by_reach: dict[tuple[str, ...], set[str]] = {}
    for perm, states in todo_states(kernel):
        paths = tuple(kernel.authz.scope_paths(grants, perm))
        if paths:
            by_reach.setdefault(paths, set()).update(states)
    conds: list[ColumnElement[bool]] = [
        and_(CASE.c.state.in_(sorted(states)), or_(*(within(CASE.c.org_path, p) for p in paths)))
        for paths, states in sorted(by_reach.items())
    ]
    mine = and_(CASE.c.assignee_id == user_id, CASE.c.state.in_(("dispatched", "handling")))
    reported = and_(CASE.c.reporter_id == user_id, CASE.c.state == "reported")
    return or_(mine, reported, *conds)


@dataclass
class Filters:
    """The search form (every value optional); ``as_query`` makes a shareable URL."""

    q: str = ""
    case_type: str = ""
    state: str = ""
    urgency: str = ""
    card: str = ""
    node: str = ""  # a node path inside the user's scope (resolved from a code by the page)
    date_field: str = "reported"  # a key of DATE_FIELDS
    exclude_states: tuple[str, ...] = ()  # ``state=open``: not in these (terminal) states
    since: datetime | None = None
    until: datetime | None = None
    problems: list[str] = field(default_factory=list)

    def where(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.q:
            like = f"%{self.q}%"
            out.append(
                or_(CASE.c.title.like(like), CASE.c.serial.like(like), CASE.c.address.like(like))
            )
        if self.case_type:
            out.append(CASE.c.case_type == self.case_type)
        if self.state:
            out.append(CASE.c.state == self.state)
        if self.exclude_states:
            out.append(CASE.c.state.not_in(self.exclude_states))
        if self.urgency in URGENCY:
            out.append(CASE.c.urgency == self.urgency)
        if self.card in ("yellow", "red"):
            out.append(CASE.c.card == self.card)
        if self.node:
            out.append(within(CASE.c.node_path, self.node))
        when = {"accepted": CASE.c.accepted_at, "closed": CASE.c.closed_at}.get(
            self.date_field, CASE.c.created_at
        )
        if self.since:
            out.append(when >= self.since)
        if self.until:
            out.append(when < self.until)
        return out

    def key(self) -> tuple[Any, ...]:
        """Everything ``where`` reads: the key of the statements built from it. A subclass that
        adds conditions (the phone's 超期 tab) is part of the key, so it never reuses a
        statement built without them."""
        return (type(self).__module__, type(self).__qualname__, self.q, self.case_type, self.state,
                self.exclude_states, self.urgency, self.card, self.node, self.date_field, self.since,
                self.until)  # fmt: skip


@dataclass
class Page:
    rows: list[Any]
    total: int
    page: int
    pages: int


def _todo_within_view(kernel: Kernel, grants: Sequence[Grant]) -> bool:
    """Does every subtree a to-do permission reaches lie inside the view scope? Then the to-do
    condition implies the view scope (its other branches — assigned to or reported by the user —
    are in the scope by definition), and the tab needs no test of the scope's other branches."""
    view = kernel.authz.scope_paths(grants, "cases.view")
    return all(
        any(p.startswith(v) for v in view)
        for perm, _ in todo_states(kernel)
        for p in kernel.authz.scope_paths(grants, perm)
    )


def tab_filter(
    kernel: Kernel, grants: Sequence[Grant], user_id: int, tab: str
) -> ColumnElement[bool]:
    if tab == "todo":
        todo = todo_filter(kernel, grants, user_id)
        if _todo_within_view(kernel, grants):
            return todo
        return and_(view_scope(kernel, grants, user_id), todo)
    scope = view_scope(kernel, grants, user_id)
    if tab == "done":
        mine = exists().where(STEP.c.case_id == CASE.c.id, STEP.c.actor_id == user_id)
        return and_(scope, mine)
    if tab == "overdue":
        return and_(scope, CASE.c.overdue.is_(True))
    return scope


def listing_select(
    kernel: Kernel, grants: Sequence[Grant], user_id: int, tab: str, filters: Filters
) -> Select[Any]:
    """The tab's cases matching ``filters``, newest change first, with the holder's and the
    occurrence node's names: one statement for the inbox pages and the export alike."""
    cond = and_(tab_filter(kernel, grants, user_id, tab), *filters.where())
    return (
        select(*LIST_COLUMNS, *NAME_COLUMNS)
        .select_from(CASE.outerjoin(ORG, ORG.c.id == CASE.c.org_id).outerjoin(NODE, NODE.c.id == CASE.c.node_id))
        .where(cond)
        .order_by(*NEWEST)
    )  # fmt: skip


def listing_count(
    kernel: Kernel, session: Session, grants: Sequence[Grant], user_id: int, tab: str, filters: Filters
) -> int:  # fmt: skip
    cond = and_(tab_filter(kernel, grants, user_id, tab), *filters.where())
    return int(session.execute(select(func.count()).select_from(CASE).where(cond)).scalar_one())


def listing(
    kernel: Kernel,
    session: Session,
    grants: Sequence[Grant],
    user_id: int,
    tab: str,
    filters: Filters,
    page: int = 1,
    *,
    size: int = PAGE_SIZE,
) -> Page:
    """One page of the tab's cases matching ``filters``, newest change first."""
    shape = (_tab_key(kernel, grants, user_id, tab), filters.key())

    def build() -> tuple[Any, Any]:
        cond = and_(tab_filter(kernel, grants, user_id, tab), *filters.where())
        # The page's 20 ids are chosen first — sorting only (updated_at, id) of every matching
        # row — and only those rows are read in full and joined to their names.
        pick = (
            select(CASE.c.id).where(cond).order_by(*NEWEST)
            .offset(bindparam("offset")).limit(bindparam("limit"))
        ).subquery("pick")  # fmt: skip
        page_rows = (
            select(*LIST_COLUMNS, *NAME_COLUMNS, *ACTION_COLUMNS)
            .select_from(
                pick.join(CASE, CASE.c.id == pick.c.id)
                .outerjoin(ORG, ORG.c.id == CASE.c.org_id).outerjoin(NODE, NODE.c.id == CASE.c.node_id)
            )
            .order_by(*NEWEST)
        )  # fmt: skip
        return select(func.count()).select_from(CASE).where(cond), page_rows

    count_stmt, page_stmt = _statements(("listing", shape), build)
    total = int(session.execute(count_stmt).scalar_one())
    pages = max(1, math.ceil(total / size))
    page = min(max(1, page), pages)
    rows = session.execute(page_stmt, {"offset": (page - 1) * size, "limit": size}).all()
    return Page(list(rows), total, page, pages)


_BADGES = ("todo", "overdue")


def counts(
    kernel: Kernel, session: Session, grants: Sequence[Grant], user_id: int,
    *, known: dict[str, int] | None = None,
) -> dict[str, int]:
    """Rows per tab, for the tab badges (and the inbox badge: ``todo``). ``known``: counts the
    caller has already (an unfiltered listing's total), not asked again."""
    out = {tab: n for tab, n in (known or {}).items() if tab in _BADGES}
    for tab in _BADGES:
        if tab in out:
            continue
        stmt = _statements(
            ("count", _tab_key(kernel, grants, user_id, tab)),
            lambda tab=tab: select(func.count()).select_from(CASE).where(tab_filter(kernel, grants, user_id, tab)),  # type: ignore[misc]
        )
        out[tab] = int(session.execute(stmt).scalar_one())
    return {tab: out[tab] for tab in _BADGES}


# --- statements kept for reuse ---------------------------------------------------------------------
# A list's condition is an OR over the user's subtrees and, for the to-do tab, one branch per
# permission: building it and computing SQLAlchemy's cache key for it cost more than the query.
# A statement depends only on the tab, the user, the subtree paths each permission reaches (which
# follow the grants and the policy) and the filters, so those are its key and a change of grant
# or policy makes a new key instead of needing an invalidation.

_CACHE_SIZE = 512
_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_cache_lock = threading.Lock()


def _tab_key(kernel: Kernel, grants: Sequence[Grant], user_id: int, tab: str) -> tuple[Any, ...]:
    view = tuple(kernel.authz.scope_paths(grants, "cases.view"))
    todo = todo_states(kernel) if tab == "todo" else ()
    reach = tuple(tuple(kernel.authz.scope_paths(grants, perm)) for perm, _ in todo)
    return (tab, user_id, view, todo, reach)


def _statements(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    made = build()
    with _cache_lock:
        _cache[key] = made
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return made


def similar(
    session: Session,
    scope: ColumnElement[bool],
    case_type: str,
    lat: float,
    lon: float,
    *,
    now: datetime,
    days: int = 7,
    radius_m: float = 200,
    limit: int = 5,
) -> list[dict[str, Any]]:
    """Open or recent cases of the same type near a point (duplicate suggestion, 疑似重复).

    A bounding box on the indexed columns narrows the candidates; the exact distance decides.
    """
    dlat = radius_m / 111_000
    dlon = radius_m / (111_000 * max(math.cos(math.radians(lat)), 0.01))
    rows = session.execute(
        select(CASE.c.id, CASE.c.serial, CASE.c.title, CASE.c.state, CASE.c.created_at, CASE.c.lat, CASE.c.lon)
        .where(scope, CASE.c.case_type == case_type, CASE.c.created_at >= now - timedelta(days=days),
               CASE.c.lat.between(lat - dlat, lat + dlat), CASE.c.lon.between(lon - dlon, lon + dlon),
               CASE.c.state != "rejected")
        .order_by(CASE.c.created_at.desc()).limit(50)
    ).all()  # fmt: skip
    out = []
    for r in rows:
        d = distance_m(lat, lon, r.lat, r.lon)
        if d <= radius_m:
            out.append({"id": r.id, "serial": r.serial, "title": r.title, "state": r.state,
                        "created_at": r.created_at, "distance_m": round(d)})  # fmt: skip
    return sorted(out, key=lambda c: c["distance_m"])[:limit]


__all__ = ["DATE_FIELDS", "TABS", "Filters", "Page", "listing", "listing_count", "listing_select", "counts", "similar", "view_scope", "SCALE"]
