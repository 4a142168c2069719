"""工作日历 page (``/admin/calendar``): a province's month with 班/休 marks — the State Council's
arrangement and the province's overrides — and the forms that add or remove an override.

The page shows the province containing the request's node (the jurisdiction, or ``?node=``).
An override applies to the whole province, so changing one needs ``calendar.manage`` at the
province node itself: an administrator of a city or county sees the calendar read-only, and
nobody reaches another province (``current_node`` refuses nodes outside the jurisdiction,
``require`` the province named in a form).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from yiwang.admin.common import actor, in_jurisdiction, node_by_code, read_form, render, who
from yiwang.calendar.cache import calendar_for
from yiwang.calendar.overrides import (
    overrides_of,
    parse_day,
    province_of,
    remove_override,
    set_override,
)
from yiwang.calendar.workcal import DayInfo
from yiwang.errors import NotFound, ValidationError
from yiwang.grid import tree
from yiwang.grid.tree import NodeRow
from yiwang.rbac.guard import require, requires
from yiwang.web.context import current_node, kernel_of

PERMISSION = "calendar.manage"
KINDS = {"workday": True, "holiday": False}
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")


def routes() -> list[BaseRoute]:
    """The calendar page and its two forms (mounted at the root by ``builtin.yiwang_routes``)."""
    return [
        Route("/admin/calendar", calendar_page, methods=["GET"], name="admin:calendar"),
        Route("/admin/calendar", calendar_set, methods=["POST"], name="admin:calendar_set"),
        Route("/admin/calendar/remove", calendar_remove, methods=["POST"],
              name="admin:calendar_remove"),  # fmt: skip
    ]


@dataclass(frozen=True)
class Month:
    """A month laid out in weeks (Monday first; None pads the first and last week)."""

    year: int
    month: int
    weeks: list[list[DayInfo | None]]

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def previous(self) -> str:
        y, m = (self.year, self.month - 1) if self.month > 1 else (self.year - 1, 12)
        return f"{y:04d}-{m:02d}"

    @property
    def next(self) -> str:
        y, m = (self.year, self.month + 1) if self.month < 12 else (self.year + 1, 1)
        return f"{y:04d}-{m:02d}"


def parse_month(text: str) -> tuple[int, int]:
    """``2026-10`` → (2026, 10), else a Chinese ValidationError."""
    found = _MONTH.match(text.strip())
    if found is None or not 1 <= int(found.group(2)) <= 12:
        raise ValidationError(f"月份格式应为 年-月，如 2026-10: {text!r}")
    return int(found.group(1)), int(found.group(2))


def layout(days: list[DayInfo]) -> list[list[DayInfo | None]]:
    cells: list[DayInfo | None] = [None] * days[0].day.weekday() + list(days)
    cells += [None] * (-len(cells) % 7)
    return [cells[i : i + 7] for i in range(0, len(cells), 7)]


def _page(
    request: Request,
    node: NodeRow | None,
    problems: list[str],
    *,
    month: str = "",
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    kernel = kernel_of(request)
    p = who(request)
    ctx: dict[str, Any] = {"problems": list(problems), "values": values or {}, "weekdays": WEEKDAYS,
                           "province": None, "provinces": [], "can_edit": False}  # fmt: skip
    if node is not None:
        with kernel.db.read() as s:
            province = province_of(s, node.path)
            # Other provinces to switch to: those inside the jurisdiction (a national account).
            provinces = [r for r in tree.children(s, None) if in_jurisdiction(p, r.path)]
            cal = calendar_for(kernel, node.path)
            try:
                year, mon = parse_month(month) if month else (cal.today().year, cal.today().month)
                shown = Month(year, mon, layout(cal.month(year, mon)))
            except ValidationError as exc:
                ctx["problems"].append(str(exc))
                today = cal.today()
                shown = Month(today.year, today.month, layout(cal.month(today.year, today.month)))
            overrides = overrides_of(s, province.id, shown.year)
        covered = cal.covered_years()
        ctx |= {
            "province": province, "provinces": provinces,
            # Above the jurisdiction the node is not the viewer's to name (as on other pages).
            "province_name": province.name if in_jurisdiction(p, province.path) else "本省", "month": shown, "overrides": overrides,
            "can_edit": kernel.authz.allowed(p.grants, PERMISSION, province.path),
            "covered": f"{covered[0]}–{covered[-1]}" if covered else "",
            "missing": cal.missing_years(),
            "year_covered": shown.year in covered,
        }  # fmt: skip
    return render(request, "admin/calendar.html", ctx, status_code=status, node=node)


@requires(PERMISSION)
def calendar_page(request: Request) -> Response:
    return _page(request, current_node(request), [], month=request.query_params.get("month", ""))


@requires(PERMISSION)
async def calendar_set(request: Request) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_set, request, form)


@requires(PERMISSION)
async def calendar_remove(request: Request) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_remove, request, form)


def _province(request: Request, form: dict[str, str]) -> NodeRow:
    """The province named in the form, once the user is allowed to change its calendar."""
    with kernel_of(request).db.read() as s:
        node = node_by_code(s, form.get("node", "")) if form.get("node") else None
    if node is None:
        raise NotFound("请选择要调整工作日历的省")
    require(request, PERMISSION, node.path)
    return node


def _done(request: Request, province: NodeRow, day: date) -> Response:
    url = request.url_for("admin:calendar").include_query_params(
        node=province.code, month=f"{day.year:04d}-{day.month:02d}"
    )
    return RedirectResponse(str(url), status_code=303)


def _set(request: Request, form: dict[str, str]) -> Response:
    province = _province(request, form)
    problems: list[str] = []
    day: date | None = None
    try:
        day = parse_day(form.get("day", ""))
    except ValidationError as exc:
        problems.append(str(exc))
    if form.get("kind") not in KINDS:
        problems.append("请选择上班或休息")
    if day is not None and not problems:
        try:
            set_override(kernel_of(request), province, day, workday=KINDS[form["kind"]],
                         name=form.get("name", ""), actor=actor(request))  # fmt: skip
        except ValidationError as exc:
            problems += exc.problems or [str(exc)]
    if problems or day is None:
        return _page(request, province, problems, month=form.get("month", ""), values=form,
                     status=400)  # fmt: skip
    return _done(request, province, day)


def _remove(request: Request, form: dict[str, str]) -> Response:
    province = _province(request, form)
    try:
        day = parse_day(form.get("day", ""))
        if not form.get("reason"):
            raise ValidationError("请填写撤销原因")
        remove_override(kernel_of(request), province, day, actor=actor(request),
                        reason=form["reason"])  # fmt: skip
    except (ValidationError, NotFound) as exc:
        return _page(request, province, [str(exc)], month=form.get("month", ""), status=400)
    return _done(request, province, day)
