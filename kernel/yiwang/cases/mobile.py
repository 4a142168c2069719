"""网格员手机端: the grid worker's pages on a phone (docs/cases.md, 手机端).

- ``/m/`` home: my grids, my tasks (待办 / 超期) and big buttons;
- ``/m/report`` report a case: photos from the camera, the location from the phone's GPS, an
  idempotency key made with the draft — the page's script (static/js/mobile.js) keeps the draft
  in IndexedDB and sends it when the connection returns, with the same key, so a retry never
  makes a second case; the form also works as a plain POST;
- ``/m/tasks`` my tasks as cards, ``/m/tasks/{id}`` one case with the actions I may take now.

Nothing here decides anything: reports and actions go through the staff pages' shared paths
(``pages.report_from_form``, ``pages.act_from_form``) and so through the engine; every case named
in a path is checked with ``engine.may_view`` (403), lists are scoped in SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from yiwang.cases import forms, queries
from yiwang.cases.engine import CASE, NODE
from yiwang.cases.pages import (
    act_from_form,
    detail_page,
    go,
    render,
    report_from_form,
    report_nodes,
    report_page,
    state_titles,
)
from yiwang.grid.levels import Level
from yiwang.privacy.masking import mask_text
from yiwang.rbac.guard import requires
from yiwang.web.context import kernel_of, principal

#: Reports from the mobile pages come in on the grid worker's phone channel, as the phone API's.
CHANNEL = "phone"
#: The report's attachments are photos.
PHOTO_KINDS = frozenset({"image"})
#: Tabs of the task list: my 待办, and those of them past their time limit.
TASK_TABS = {"todo": "待办", "overdue": "超期"}
#: Timeline steps the task page shows (newest first); the staff page has them all.
SHORT_TIMELINE = 5


def routes() -> list[BaseRoute]:
    return [
        Route("/m/", home, methods=["GET"], name="mobile:home"),
        Route("/m/report", report_form, methods=["GET"], name="mobile:report"),
        Route("/m/report", report_submit, methods=["POST"], name="mobile:report_submit"),
        Route("/m/tasks", tasks, methods=["GET"], name="mobile:tasks"),
        Route("/m/tasks/{case_id:int}", task, methods=["GET"], name="mobile:task"),
        Route("/m/tasks/{case_id:int}/act/{action:str}", act, methods=["POST"], name="mobile:act"),
    ]


# --- home ----------------------------------------------------------------------------------------


@dataclass
class _Late(queries.Filters):
    """My 待办 past their time limit (超期)."""

    def where(self) -> list[ColumnElement[bool]]:
        return [*super().where(), CASE.c.overdue.is_(True)]


def _tab_filters(tab: str) -> queries.Filters:
    return _Late() if tab == "overdue" else queries.Filters()


def task_counts(kernel: Any, s: Session, grants: Sequence[Any], user_id: int) -> dict[str, int]:
    """How many of my tasks there are, and how many of them are overdue."""
    todo = queries.tab_filter(kernel, grants, user_id, "todo")
    out = {}
    for tab in TASK_TABS:
        cond = and_(todo, *_tab_filters(tab).where())
        out[tab] = int(s.execute(select(func.count()).select_from(CASE).where(cond)).scalar_one())
    return out


def my_places(grants: Sequence[Any]) -> tuple[bool, list[Any]]:
    """The grids I am assigned to (网格员) — True — else the places of my other assignments."""
    grids = [g for g in grants if g.node_level >= Level.GRID]
    return (True, grids) if grids else (False, list(grants))


@requires("cases.view")
def home(request: Request) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    with kernel.db.read() as s:
        counts = task_counts(kernel, s, who.grants, who.user_id)
    grid_places, places = my_places(who.grants)
    may_report = bool(kernel.authz.scope_paths(who.grants, "cases.report"))
    return render(request, "mobile/home.html", {"counts": counts, "grid_places": grid_places, "places": places,
                                                "may_report": may_report, "tabs": TASK_TABS})  # fmt: skip


# --- my tasks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    id: int
    serial: str
    title: str
    type_title: str
    state_title: str
    urgency: str
    card: str
    overdue: bool
    place: str
    address: str
    due_at: datetime | None


@requires("cases.view")
def tasks(request: Request) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    tab = request.query_params.get("tab", "todo")
    if tab not in TASK_TABS:
        tab = "todo"
    page_no = forms.positive_int(request.query_params.get("page", "1")) or 1
    with kernel.db.read() as s:
        page = queries.listing(kernel, s, who.grants, who.user_id, "todo", _tab_filters(tab), page_no)
        counts = task_counts(kernel, s, who.grants, who.user_id)
        ids = sorted({r.node_id for r in page.rows})
        places = dict(s.execute(select(NODE.c.id, NODE.c.name).where(NODE.c.id.in_(ids))).all()) if ids else {}
    types, states = kernel.cases.types, state_titles(kernel)
    cards = [
        Card(r.id, r.serial, mask_text(r.title), types[r.case_type].title if r.case_type in types else r.case_type,
             states.get(r.state, r.state), r.urgency, r.card, bool(r.overdue), places.get(r.node_id, ""),
             mask_text(r.address or ""), r.due_at)
        for r in page.rows
    ]  # fmt: skip
    return render(request, "mobile/tasks.html", {"tab": tab, "tabs": TASK_TABS, "counts": counts, "cards": cards,
                                                 "page": page.page, "pages": page.pages, "total": page.total})  # fmt: skip


@requires("cases.view")
def task(request: Request) -> Response:
    params = request.query_params
    return detail_page(request, int(request.path_params["case_id"]), template="mobile/task.html",
                       context={"reported": params.get("new") == "1", "done_action": params.get("done", "")})  # fmt: skip


@requires("cases.view")
async def act(request: Request) -> Response:
    form = await forms.read_submitted(request, kernel_of(request))
    return await run_in_threadpool(_act, request, form)


def _act(request: Request, form: forms.Submitted) -> Response:
    case_id = int(request.path_params["case_id"])
    name = str(request.path_params["action"])
    done = act_from_form(request, form, case_id, name)
    if done.ok:
        url = str(request.url_for("mobile:task", case_id=case_id).path)
        return go(request, f"{url}?done={name}")
    return detail_page(request, case_id, template="mobile/task.html", **done.page(),
                       context={"reported": False, "done_action": ""})  # fmt: skip


# --- reporting -----------------------------------------------------------------------------------


def _report_page(request: Request, values: Mapping[str, Any], *, problems: Sequence[str] = (), heading: str = "",
                 similar: Sequence[Mapping[str, Any]] = (), status: int = 200) -> Response:  # fmt: skip
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    with kernel.db.read() as s:
        nodes, truncated = report_nodes(kernel, s, who.grants)
    values = {"urgency": "normal", "scale": "small", **values}
    if not values.get("node"):  # the worker's own grid, or the only one there is
        codes = {n.code for n in nodes}
        own = [g.node_code for g in who.grants if g.node_level == Level.GRID and g.node_code in codes]
        values["node"] = own[0] if own else (nodes[0].code if len(nodes) == 1 else "")
    # The form's idempotency key is the draft's too: the script keeps it with the draft.
    return report_page(request, "mobile/report.html", values, nodes, truncated, problems=problems,
                       heading=heading, similar=similar, status=status)  # fmt: skip


@requires("cases.report")
def report_form(request: Request) -> Response:
    # The query only preselects (the type swap, a link from a grid): nothing is trusted.
    keep = ("case_type", "node")
    return _report_page(request, {k: request.query_params[k] for k in keep if k in request.query_params})


@requires("cases.report")
async def report_submit(request: Request) -> Response:
    form = await forms.read_submitted(request, kernel_of(request))
    return await run_in_threadpool(_report, request, form)


def _report(request: Request, form: forms.Submitted) -> Response:
    done = report_from_form(request, form, channel=CHANNEL, kinds=PHOTO_KINDS)
    if done.case_id is not None:
        url = str(request.url_for("mobile:task", case_id=done.case_id).path)
        return go(request, f"{url}?new=1")
    return _report_page(request, forms.form_values(form), heading=done.heading, problems=done.problems,
                        similar=done.similar, status=done.status)  # fmt: skip


__all__ = ["CHANNEL", "routes", "task_counts"]
