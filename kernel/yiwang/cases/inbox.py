"""The case inbox (事件办理) as staff use it every day (docs/cases.md, "The inbox").

- ``/cases/`` the tabs (待办/已办/超期/全部) and the search, the columns each user chose (列设置),
  their saved queries (常用查询) as chips, checkboxes and a bulk bar (批量办理);
- ``/cases/columns`` saves the column choice, ``/cases/filters`` saves the current query under a
  name, ``/cases/filters/{id}/delete`` deletes one of the user's own;
- ``/cases/bulk`` applies one action to the ticked cases: each through ``engine.act`` with the
  version the user saw, in its own unit of work, and the answer lists each case's outcome;
- ``/cases/export.xlsx`` the rows of exactly the current tab and filter, in the chosen columns,
  personal data masked, audited (``cases.export``).

Preferences live in the kernel's store (``yiwang.web.prefs``); a saved query is only a URL, so
opening it applies the same scope as any other inbox request.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from yiwang import audit
from yiwang.cases import engine, forms, queries
from yiwang.cases.api import doer_of
from yiwang.cases.engine import CASE, ActionInput
from yiwang.cases.models import CARDS, CHANNELS, SCALE, SUPERVISION, URGENCY, Case
from yiwang.cases.routing import OrgRow, dispatch_targets, orgs
from yiwang.errors import Conflict, Forbidden, NotFound, ValidationError
from yiwang.privacy.masking import mask, mask_text
from yiwang.rbac.guard import requires
from yiwang.web import prefs
from yiwang.web.context import actor, kernel_of, principal
from yiwang.web.templating import route_path

#: The page name saved filters are kept under, and the preference key of the columns.
PAGE = "cases.inbox"
COLUMNS_PREF = "cases.inbox.columns"
#: Cases one bulk submit may carry (a page is 20; "全选" over a few pages stays under it).
MAX_BULK = 100
#: Rows one export may hold; beyond, the user is asked to narrow the filter.
MAX_EXPORT = 50_000
#: Actions offered in bulk: the routine steps that need no per-case input beyond an opinion or
#: a target unit (an attachment, a rating or a form field is for the case page).
BULK_ACTIONS = ("accept", "dispatch", "take", "urge", "verify_pass", "close")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class InboxColumn:
    """A column of the inbox and its export: ``locked`` ones are always shown."""

    key: str
    title: str
    default: bool = True
    locked: bool = False
    #: Kept as text in spreadsheets (long digit strings: serials, codes, phone numbers).
    text: bool = False


COLUMNS = (
    InboxColumn("serial", "编号", locked=True, text=True),
    InboxColumn("title", "标题", locked=True),
    InboxColumn("type", "类型"),
    InboxColumn("state", "状态"),
    InboxColumn("urgency", "紧急程度"),
    InboxColumn("supervision", "督办/亮牌"),
    InboxColumn("overdue", "超期"),
    InboxColumn("org", "当前承办单位"),
    InboxColumn("due", "期限"),
    InboxColumn("updated", "更新时间"),
    InboxColumn("created", "上报时间", default=False),
    InboxColumn("channel", "来源渠道", default=False),
    InboxColumn("scale", "规模", default=False),
    InboxColumn("node", "事发地", default=False),
    InboxColumn("area", "区域编码", default=False, text=True),
    InboxColumn("address", "地址", default=False),
    InboxColumn("reporter", "反映人", default=False),
    InboxColumn("reporter_phone", "反映人电话", default=False, text=True),
)
BY_KEY = {c.key: c for c in COLUMNS}


def chosen_columns(session: Session, user_id: int) -> list[InboxColumn]:
    """The columns ``user_id`` chose (unknown keys, e.g. of a column since removed, ignored);
    the defaults until they choose."""
    saved = prefs.get_pref(session, user_id, COLUMNS_PREF)
    if not isinstance(saved, list):
        return [c for c in COLUMNS if c.default or c.locked]
    keys = {k for k in saved if isinstance(k, str)}
    return [c for c in COLUMNS if c.locked or c.key in keys]


# --- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A case as a list shows it: personal data masked, codes turned into names."""

    id: int
    version: int
    serial: str
    title: str
    type_title: str
    state_title: str
    urgency: str
    supervision: str
    card: str
    overdue: bool
    org_name: str
    due_at: datetime | None
    updated_at: datetime | None
    created_at: datetime | None
    channel: str
    scale: str
    node_name: str
    node_code: str
    address: str
    reporter: str
    reporter_phone: str

    def text(self, key: str) -> str:
        """The plain-text value of column ``key`` (the export's cells and the page's plain
        cells); only that column's value is worked out."""
        return _TEXT[key](self)


def _marks(row: Row) -> str:
    marks = [SUPERVISION[row.supervision]] if row.supervision and row.supervision in SUPERVISION else []
    marks += [CARDS[row.card]] if row.card and row.card in CARDS else []
    return "、".join(marks)


_TEXT: dict[str, Callable[[Row], str]] = {
    "serial": lambda r: r.serial, "title": lambda r: r.title, "type": lambda r: r.type_title,
    "state": lambda r: r.state_title, "urgency": lambda r: URGENCY.get(r.urgency, r.urgency),
    "supervision": _marks, "overdue": lambda r: "超期" if r.overdue else "",
    "org": lambda r: r.org_name, "due": lambda r: forms.local(r.due_at) if r.due_at else "",
    "updated": lambda r: forms.local(r.updated_at), "created": lambda r: forms.local(r.created_at),
    "channel": lambda r: CHANNELS.get(r.channel, r.channel), "scale": lambda r: SCALE.get(r.scale, r.scale),
    "node": lambda r: r.node_name, "area": lambda r: r.node_code, "address": lambda r: r.address,
    "reporter": lambda r: r.reporter, "reporter_phone": lambda r: r.reporter_phone,
}  # fmt: skip


def row_of(kernel: Any, r: Any, states: Mapping[str, str], *, reveal: bool = False) -> Row:
    """``reveal``: the reporter's name and phone in plain text (an export with a stated
    purpose, audited as ``privacy.reveal``); masked otherwise."""
    types = kernel.cases.types
    return Row(
        id=r.id, version=r.version, serial=r.serial, title=mask_text(r.title),
        type_title=types[r.case_type].title if r.case_type in types else r.case_type,
        state_title=states.get(r.state, r.state), urgency=r.urgency, supervision=r.supervision,
        card=r.card, overdue=bool(r.overdue), org_name=r.org_name or "—", due_at=r.due_at,
        updated_at=r.updated_at, created_at=r.created_at, channel=r.channel, scale=r.scale,
        node_name=r.node_name or "", node_code=r.node_code or "", address=mask_text(r.address or ""),
        reporter=(r.reporter_name if reveal else mask(r.reporter_name, "name")) if r.reporter_name else "",
        reporter_phone=(r.reporter_phone if reveal else mask(r.reporter_phone, "phone")) if r.reporter_phone else "",
    )  # fmt: skip


# --- queries in URLs -----------------------------------------------------------------------------

QUERY_KEYS = ("tab", *forms.SEARCH_KEYS)


def clean_query(raw: str | Mapping[str, str]) -> str:
    """A query string of only the inbox's own parameters, empty ones and the page dropped: what
    a saved filter keeps and where a form sends the user back to."""
    pairs = (
        parse_qsl(raw.lstrip("?"), keep_blank_values=False)
        if isinstance(raw, str)
        else list(raw.items())
    )
    seen: dict[str, str] = {}
    for k, v in pairs:
        if k in QUERY_KEYS and k not in seen and v.strip():
            seen[k] = v.strip()[:50]
    return urlencode([(k, seen[k]) for k in QUERY_KEYS if k in seen])


def inbox_url(request: Request, query: str) -> str:
    return route_path(request.app, "cases:inbox") + ("?" + query if query else "")


# --- the inbox page ------------------------------------------------------------------------------


def _bulk_offer(
    kernel: Any, s: Session, doer: engine.Doer, rows: Sequence[Any]
) -> tuple[list[Any], list[OrgRow]]:
    """The bulk actions the user may take on at least one of the listed cases, and the units
    those cases may be dispatched to (the engine checks each case's own holder again).

    ``rows`` are the page's rows, which carry what deciding a case's actions reads
    (``queries.ACTION_COLUMNS``); cases alike in all of it are decided once."""
    offered: dict[str, Any] = {}
    holders: set[int] = set()
    decided: dict[tuple[Any, ...], list[Any]] = {}
    for r in rows:
        facts = (r.workflow, r.workflow_version, r.state, r.extension_days, r.rating,
                 r.reporter_id, r.assignee_id, r.node_path, r.org_path)  # fmt: skip
        actions = decided.get(facts)
        if actions is None:
            actions = decided[facts] = [
                a for a in engine.available(kernel, s, doer, r) if a.name in BULK_ACTIONS
            ]
        for a in actions:
            offered.setdefault(a.name, a)
            if a.route == "down" and r.org_id:
                holders.add(r.org_id)
    targets: dict[int, OrgRow] = {}
    for holder in orgs(s, sorted(holders)).values():
        for t in dispatch_targets(s, holder):
            targets.setdefault(int(t.id or 0), t)
    actions = [offered[n] for n in BULK_ACTIONS if n in offered]
    return actions, sorted(targets.values(), key=lambda o: (o.level, o.path, o.name))


def render_inbox(
    request: Request, params: Mapping[str, str], *, status: int = 200, **extra: Any
) -> Response:
    """The inbox for ``params`` (the query string, or the one a form came from)."""
    from yiwang.cases.pages import hx_target, render, state_titles, types_by_category

    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    doer = doer_of(request)
    states = state_titles(kernel)
    with kernel.db.read() as s:
        search = forms.parse_search(kernel, s, who.grants, params, states)
        page = queries.listing(
            kernel, s, who.grants, who.user_id, search.tab, search.filters, search.page
        )
        # Unfiltered, the page's total is its tab's count: one count query fewer.
        unfiltered = search.filters.key() == queries.Filters().key()
        counts = queries.counts(
            kernel, s, who.grants, who.user_id, known={search.tab: page.total} if unfiltered else None
        )
        columns = chosen_columns(s, who.user_id)
        saved = prefs.saved_filters(s, who.user_id, PAGE)
        bulk_actions, bulk_targets = _bulk_offer(kernel, s, doer, page.rows)
    rows = [row_of(kernel, r, states) for r in page.rows]
    query = clean_query({"tab": search.tab, **search.values})
    chosen = {c.key for c in columns}
    may_reveal = bool(chosen & {"reporter", "reporter_phone"}) and bool(
        kernel.authz.scope_paths(who.grants, "privacy.reveal")
    )
    ctx = {
        "tabs": queries.TABS, "tab": search.tab, "counts": counts, "values": search.values,
        "problems": search.problems, "rows": rows, "page": page.page, "pages": page.pages,
        "total": page.total, "url_with": _url_with(request, search), "types": types_by_category(kernel),
        "states": states, "date_fields": queries.DATE_FIELDS, "columns": columns, "column_keys": [c.key for c in columns], "all_columns": COLUMNS, "chosen": chosen,
        "saved": saved, "query": query, "current_url": inbox_url(request, query),
        "export_url": route_path(request.app, "cases:export") + ("?" + query if query else ""),
        "bulk_actions": bulk_actions, "bulk_targets": bulk_targets, "max_bulk": MAX_BULK,
        "max_saved": prefs.MAX_SAVED_FILTERS, "save_problems": [], "save_name": "", "bulk_problems": [],
        "export_problem": "", "may_reveal": may_reveal, **extra,
    }  # fmt: skip
    if hx_target(request) == "case-results":
        return render(request, "cases/_results.html", ctx)
    return render(request, "cases/inbox.html", ctx, status_code=status)


def _url_with(request: Request, search: forms.Search) -> Any:
    """This inbox's URL with some parameters changed (filters kept, empty ones dropped)."""

    base = route_path(request.app, "cases:inbox")

    def url(**changes: Any) -> str:
        params = {"tab": search.tab, **search.values, "page": str(search.page), **changes}
        kept = {
            k: str(v)
            for k, v in params.items()
            if v not in ("", None) and not (k == "page" and str(v) == "1")
        }
        return base + ("?" + urlencode(kept) if kept else "")

    return url


@requires("cases.view")
def inbox(request: Request) -> Response:
    return render_inbox(request, request.query_params)


def _back(request: Request, form: forms.Submitted) -> tuple[str, QueryParams]:
    query = clean_query(form.get("back"))
    return query, QueryParams(query)


def _done(request: Request, query: str, params: QueryParams, **extra: Any) -> Response:
    """After a change made from the inbox: htmx gets the inbox again (the URL stays), a plain
    form a redirect to it."""
    from yiwang.cases.pages import go

    if request.headers.get("HX-Request") == "true":
        return render_inbox(request, params, **extra)
    return go(request, inbox_url(request, query))


# --- 列设置 --------------------------------------------------------------------------------------


@requires("cases.view")
async def set_columns(request: Request) -> Response:
    form = await forms.read_submitted(request, kernel_of(request))
    return await run_in_threadpool(_set_columns, request, form)


def _set_columns(request: Request, form: forms.Submitted) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    if form.get("reset") == "1":
        value: list[str] | None = None
    else:
        value = [c.key for c in COLUMNS if not c.locked and c.key in set(form.getlist("col"))]
    with kernel.db.write() as s:
        prefs.set_pref(s, who.user_id, COLUMNS_PREF, value)
    query, params = _back(request, form)
    return _done(request, query, params)


# --- 常用查询 -------------------------------------------------------------------------------------


@requires("cases.view")
async def save_filter(request: Request) -> Response:
    form = await forms.read_submitted(request, kernel_of(request))
    return await run_in_threadpool(_save_filter, request, form)


def _save_filter(request: Request, form: forms.Submitted) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    query, params = _back(request, form)
    name = form.get("name")
    try:
        with kernel.db.write() as s:
            prefs.save_filter(s, who.user_id, PAGE, name, query)
    except ValidationError as exc:
        return render_inbox(request, params, status=422, save_problems=exc.problems or [str(exc)],
                            save_name=name[:60])  # fmt: skip
    return _done(request, query, params)


@requires("cases.view")
async def delete_filter(request: Request) -> Response:
    form = await forms.read_submitted(request, kernel_of(request))
    return await run_in_threadpool(_delete_filter, request, form)


def _delete_filter(request: Request, form: forms.Submitted) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    with kernel.db.write() as s:
        gone = prefs.delete_filter(s, who.user_id, int(request.path_params["filter_id"]))
    if gone is None:
        raise NotFound("常用查询不存在或已删除")
    query, params = _back(request, form)
    return _done(request, query, params)


# --- 批量办理 -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkResult:
    """One ticked case's outcome: ``serial``/``title`` only when the user may view it."""

    id: int
    serial: str
    title: str
    ok: bool
    reason: str = ""


def _ticked(form: forms.Submitted, problems: list[str]) -> list[tuple[int, int]]:
    """``ids`` values are ``<case id>:<version seen>``; duplicates count once."""
    out: dict[int, int] = {}
    for raw in form.getlist("ids"):
        case_id, _, version = raw.partition(":")
        cid, ver = forms.positive_int(case_id), forms.positive_int(version)
        if cid is None or ver is None:
            problems.append("所选事件的编号无效，请刷新页面后重试")
            return []
        out.setdefault(cid, ver)
    return list(out.items())


@requires("cases.view")
async def bulk(request: Request) -> Response:
    form = await forms.read_submitted(request, kernel_of(request))
    return await run_in_threadpool(_bulk, request, form)


def _bulk(request: Request, form: forms.Submitted) -> Response:
    from yiwang.cases.pages import render

    kernel = kernel_of(request)
    doer = doer_of(request)
    query, params = _back(request, form)
    problems = list(form.problems)
    name = form.get("action")
    if name not in BULK_ACTIONS:
        problems.append("请选择要批量执行的操作")
    ticked = _ticked(form, problems)
    if not ticked and not problems:
        problems.append("请先勾选要办理的事件")
    if len(ticked) > MAX_BULK:
        problems.append(f"一次最多批量办理 {MAX_BULK} 件，您选择了 {len(ticked)} 件")
    target = form.get("target_org")
    target_id = forms.positive_int(target) if target else None
    if name == "dispatch" and target_id is None:
        problems.append("请选择派遣的承办单位")
    if problems:
        return render_inbox(request, params, status=422, bulk_problems=problems)
    given = ActionInput(
        opinion=form.get("opinion"), target_org=target_id if name == "dispatch" else None
    )
    results = [
        _bulk_one(kernel, doer, case_id, version, name, given) for case_id, version in ticked
    ]
    title = next((t for n, t in _titles(kernel) if n == name), name)
    ok = sum(1 for r in results if r.ok)
    ctx = {"results": results, "action_title": title, "ok": ok, "failed": len(results) - ok,
           "back_url": inbox_url(request, query)}  # fmt: skip
    return render(request, "cases/bulk.html", ctx)


def _titles(kernel: Any) -> Iterator[tuple[str, str]]:
    for wf in kernel.cases.workflows.values():
        for a in wf.actions:
            yield a.name, a.title


def _bulk_one(kernel: Any, doer: engine.Doer, case_id: int, version: int, name: str,
              given: ActionInput) -> BulkResult:  # fmt: skip
    """One case, in its own unit of work: it changes completely or not at all."""
    serial = title = ""
    try:
        with kernel.db.write() as s:
            case = s.get(Case, case_id)
            if case is None or not engine.may_view(kernel, s, doer, case):
                raise Forbidden("无权限办理该事件（不在您的辖区内或不存在）")
            serial, title = case.serial, mask_text(case.title)
            engine.act(kernel, s, doer, case_id, name, given, version=version)
    except Conflict:
        return BulkResult(case_id, serial, title, False, "已被他人处理，请刷新后查看最新状态")
    except Forbidden as exc:  # outside the jurisdiction, or no permission for this action here
        return BulkResult(case_id, serial, title, False, str(exc))
    except NotFound:
        return BulkResult(case_id, serial, title, False, "事件不存在")
    except ValidationError as exc:
        return BulkResult(case_id, serial, title, False, "；".join(exc.problems) or str(exc))
    return BulkResult(case_id, serial, title, True)


# --- 导出 -----------------------------------------------------------------------------------------


@requires("cases.view")
async def export(request: Request) -> Response:
    """``GET``: the rows of exactly this tab and filter (every page), chosen columns, masked.
    ``POST`` (the same query in ``back``, a ``purpose``): reporter names and phones in plain
    text for the cases inside the user's ``privacy.reveal`` scope, audited as a reveal."""
    if request.method == "POST":
        form = await forms.read_submitted(request, kernel_of(request))
        return await run_in_threadpool(_export, request, QueryParams(clean_query(form.get("back"))),
                                       form.get("purpose"), True)  # fmt: skip
    return await run_in_threadpool(_export, request, request.query_params, "", False)


def _export(request: Request, params: Mapping[str, str], purpose: str, plain: bool) -> Response:
    from yiwang.cases.pages import state_titles
    from yiwang.grid.tree import is_within
    from yiwang.privacy.reveal import audit_reveal, check_purpose

    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    states = state_titles(kernel)
    reveal_paths = kernel.authz.scope_paths(who.grants, "privacy.reveal") if plain else []
    if plain:
        refusal = "" if reveal_paths else "您没有导出敏感信息原文的权限"
        try:
            purpose = check_purpose(purpose)
        except ValidationError as exc:
            refusal = refusal or str(exc)
        if refusal:
            return render_inbox(request, params, status=403 if not reveal_paths else 422,
                                export_problem=refusal)  # fmt: skip

    def revealed(r: Any) -> bool:
        return any(is_within(r.node_path, p) or is_within(r.org_path, p) for p in reveal_paths)

    # A read unit (a large export must not hold SQLite's write lock); the export is recorded
    # after it, and the file is sent only once its audit record is committed.
    with kernel.db.read() as s:
        search = forms.parse_search(kernel, s, who.grants, params, states)
        total = queries.listing_count(
            kernel, s, who.grants, who.user_id, search.tab, search.filters
        )
        columns = chosen_columns(s, who.user_id)
        if total <= MAX_EXPORT:
            stmt = queries.listing_select(
                kernel, who.grants, who.user_id, search.tab, search.filters
            )
            stmt = stmt.add_columns(CASE.c.node_path, CASE.c.org_path)
            shown = 0
            plain_keys = {"reporter", "reporter_phone"} & {c.key for c in columns}

            def rows() -> Iterator[Row]:
                nonlocal shown
                for r in s.execute(stmt.execution_options(yield_per=1000)):
                    bare = bool(plain_keys) and revealed(r)
                    shown += bare
                    yield row_of(kernel, r, states, reveal=bare)

            data, n = to_xlsx(rows(), columns)
    if total > MAX_EXPORT:
        message = (f"符合条件的事件共 {total} 件，超过单次导出上限 {MAX_EXPORT} 件，"
                   "请缩小查询范围（如按日期或区域）后分批导出")  # fmt: skip
        return render_inbox(request, params, status=422, export_problem=message)
    detail = {"tab": search.tab, "filter": _audit_filter(search.values), "count": n}
    with kernel.db.write() as s:
        if plain and shown:
            fields = ["reporter_name"] * ("reporter" in plain_keys) + ["reporter_phone"] * (
                "reporter_phone" in plain_keys
            )
            audit_reveal(s, actor(request), object_type="case", object_id="export", fields=fields,
                         purpose=purpose, allowed=True, detail={**detail, "revealed": shown})  # fmt: skip
        audit.record(s, "cases.export", actor=actor(request), object_type="case", object_id="export",
                     detail={**detail, "columns": [c.key for c in columns],
                             "masked": not (plain and shown)})  # fmt: skip
    day = forms.local(engine.utcnow(), "%Y%m%d")
    filename = f"事件列表-{queries.TABS[search.tab]}-{day}.xlsx"
    from urllib.parse import quote

    return Response(data, media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"cases-{day}.xlsx\"; filename*=UTF-8''{quote(filename)}",
        "Cache-Control": "no-store",
    })  # fmt: skip


def _audit_filter(values: Mapping[str, str]) -> dict[str, str]:
    """The filter for the audit trail: the keyword may be a name or a number someone typed, so
    it is masked like free text."""
    return {k: (mask_text(v) if k == "q" else v) for k, v in values.items() if v}


def to_xlsx(rows: Iterator[Row], columns: Sequence[InboxColumn]) -> tuple[bytes, int]:
    """The rows as a write-only workbook (memory stays small), and how many there were."""
    from openpyxl import Workbook

    from yiwang.privacy.export import xlsx_cells

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("事件列表")
    ws.append([c.title for c in columns])
    text = {i for i, c in enumerate(columns) if c.text}
    n = 0
    for row in rows:
        ws.append(xlsx_cells(ws, [row.text(c.key) for c in columns], text=text))
        n += 1
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), n


def routes() -> list[BaseRoute]:
    return [
        Route("/cases/", inbox, methods=["GET"], name="cases:inbox"),
        Route("/cases/export.xlsx", export, methods=["GET", "POST"], name="cases:export"),
        Route("/cases/columns", set_columns, methods=["POST"], name="cases:columns"),
        Route("/cases/filters", save_filter, methods=["POST"], name="cases:filter_save"),
        Route(
            "/cases/filters/{filter_id:int}/delete",
            delete_filter,
            methods=["POST"],
            name="cases:filter_delete",
        ),  # fmt: skip
        Route("/cases/bulk", bulk, methods=["POST"], name="cases:bulk"),
    ]


__all__ = ["COLUMNS", "InboxColumn", "Row", "chosen_columns", "clean_query", "routes", "to_xlsx"]
