"""The JSON API for grid workers' phones and integrations (described at /api/openapi.json).

Same guards, scopes and engine as the pages: a phone token (``Authorization: Bearer``, bound to
a device) or a session. Errors are ``{"error": {"code", "message", "problems"?}}`` in Chinese.
A report carries an idempotency key (``Idempotency-Key`` header or ``client_id``), so a phone
retrying after a lost answer gets the same case back instead of a second one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from yiwang.cases import engine, queries
from yiwang.cases.engine import CASE, NODE, STEP, ActionInput, Doer, NewCase, Upload
from yiwang.cases.models import CARDS, CHANNELS, SCALE, URGENCY, Case, CaseStep
from yiwang.cases.routing import OrgRow, orgs
from yiwang.cases.workflow import Action, FormField
from yiwang.errors import Forbidden, NotFound, ValidationError
from yiwang.grid.levels import Level
from yiwang.privacy.masking import mask
from yiwang.rbac.guard import public, requires
from yiwang.web.context import actor, kernel_of, principal

TZ = ZoneInfo("Asia/Shanghai")
#: The largest request body a report or action may carry (photos included).
MAX_BODY = 64 * 1024 * 1024


def doer_of(request: Request) -> Doer:
    who = principal(request)
    if who is None:  # guarded routes never get here without one
        raise Forbidden("请先登录")
    return Doer(actor(request), who.grants, who.name)


def iso(value: datetime | None) -> str | None:
    value = engine.aware(value)
    return value.astimezone(TZ).isoformat(timespec="seconds") if value else None


# --- serialisation -------------------------------------------------------------------------------


def field_json(f: FormField) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "label": f.label, "kind": f.kind, "required": f.required}
    if f.choices:
        out["choices"] = [{"value": v, "label": label} for v, label in f.choices]
    if f.min is not None:
        out["min"] = f.min
    if f.max is not None:
        out["max"] = f.max
    return out


def action_json(a: Action) -> dict[str, Any]:
    return {
        "name": a.name, "title": a.title, "opinion_required": a.opinion,
        "attachment_required": a.attachment, "route": a.route,
        "fields": [field_json(f) for f in a.fields],
    }  # fmt: skip


_CASE_NODE = select(NODE.c.id, NODE.c.code, NODE.c.name).where(NODE.c.id == bindparam("id"))


def case_json(
    kernel: Any, s: Session, case: Case, doer: Doer | None = None, *, full: bool = False,
    names: dict[int, OrgRow] | None = None,
) -> dict[str, Any]:
    """``names``: organisation rows already read (holding the case's ``org_id``)."""
    wf = engine.workflow_of(kernel, s, case)
    ct = kernel.cases.types.get(case.case_type)
    node = s.execute(_CASE_NODE, {"id": case.node_id}).first()
    if case.org_id and (names is None or case.org_id not in names):
        names = orgs(s, [case.org_id])
    holder = names.get(case.org_id) if case.org_id and names else None
    out: dict[str, Any] = {
        "id": case.id, "serial": case.serial, "case_type": case.case_type,
        "case_type_title": ct.title if ct else case.case_type, "title": case.title,
        "state": case.state, "state_title": wf.state(case.state).title,
        "channel": case.channel, "urgency": case.urgency, "scale": case.scale,
        "node": {"id": node.id, "code": node.code, "name": node.name} if node else None,
        "org": {"id": holder.id, "name": holder.name} if holder else None,
        "assignee_id": case.assignee_id, "lat": case.lat, "lon": case.lon, "address": case.address,
        "due_at": iso(case.due_at), "card": case.card, "card_title": CARDS.get(case.card, ""),
        "overdue": case.overdue, "supervision": case.supervision, "rating": case.rating,
        "close_type": case.close_type, "version": case.version,
        "created_at": iso(case.created_at), "updated_at": iso(case.updated_at),
    }  # fmt: skip
    if full:
        out |= {
            "description": case.description,
            "reporter_name": mask(case.reporter_name, "name"),
            "reporter_phone": mask(case.reporter_phone, "phone") if case.reporter_phone else "",
            "extra": json.loads(case.extra or "{}"),
            "yellow_at": iso(case.yellow_at), "red_at": iso(case.red_at),
            "extension_days": case.extension_days,
            "actions": [action_json(a) for a in engine.available(kernel, s, doer, case)] if doer else [],
            "files": files_json(s, case),
        }  # fmt: skip
    return out


def files_json(s: Session, case: Case) -> list[dict[str, Any]]:
    from yiwang.files import files_of

    return [
        {"id": f.id, "name": f.original_name, "mime": f.mime, "size": f.size, "step_id": f.owner_ref,
         "url": f"/api/cases/{case.id}/files/{f.id}"}
        for f in files_of(s, "case", int(case.id or 0))
    ]  # fmt: skip


def step_json(s: Session, step: CaseStep, names: dict[int, OrgRow] | None = None) -> dict[str, Any]:
    """``names``: organisation rows already read (holding the step's from and to units)."""
    wanted = [i for i in (step.from_org_id, step.to_org_id) if i]
    if names is None or any(i not in names for i in wanted):
        names = orgs(s, wanted)
    return {
        "seq": step.seq, "action": step.action, "title": step.title,
        "from_state": step.from_state, "to_state": step.to_state,
        "from_org": names[step.from_org_id].name if step.from_org_id in names else None,
        "to_org": names[step.to_org_id].name if step.to_org_id in names else None,
        "actor": step.actor_name, "opinion": step.opinion, "data": json.loads(step.data or "{}"),
        "entered_at": iso(step.entered_at), "finished_at": iso(step.finished_at),
    }  # fmt: skip


# --- request bodies ------------------------------------------------------------------------------


async def _body(request: Request) -> tuple[dict[str, Any], list[Upload]]:
    """JSON or multipart (fields + ``files``) → (values, uploads)."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise ValidationError(f"请求过大（上限 {MAX_BODY // 1024 // 1024} MB）")
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        values: dict[str, Any] = {}
        uploads: list[Upload] = []
        async with request.form(max_files=20, max_part_size=MAX_BODY) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if value.filename:
                        uploads.append(Upload(value.filename, await value.read()))
                elif key in ("copy_orgs",):
                    values.setdefault(key, []).append(value)
                else:
                    values[key] = value
        if "fields" in values and isinstance(values["fields"], str):
            values["fields"] = _loads(values["fields"], "fields")
        if "extra" in values and isinstance(values["extra"], str):
            values["extra"] = _loads(values["extra"], "extra")
        return values, uploads
    raw = await request.body()
    if not raw:
        return {}, []
    data = _loads(raw.decode("utf-8", "replace"), "请求体")
    if not isinstance(data, dict):
        raise ValidationError("请求体应为 JSON 对象")
    return data, []


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValidationError(f"{what}不是有效的 JSON") from None


def _number(values: dict[str, Any], key: str, kind: type[int] | type[float], problems: list[str]) -> Any:
    """``values[key]`` as ``kind`` (None when absent); a bad value is a problem in Chinese."""
    raw = values.get(key)
    if raw in (None, ""):
        return None
    try:
        return kind(raw)
    except (TypeError, ValueError):
        problems.append(f"{key} 应为{'整数' if kind is int else '数字'}")
        return None


def _float(values: dict[str, Any], key: str, problems: list[str]) -> float | None:
    return _number(values, key, float, problems)  # type: ignore[no-any-return]


def _int(values: dict[str, Any], key: str, problems: list[str]) -> int | None:
    return _number(values, key, int, problems)  # type: ignore[no-any-return]


def _strings(raw: Any, what: str) -> dict[str, str]:
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise ValidationError(f"{what}应为对象")
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


# --- endpoints -----------------------------------------------------------------------------------


@requires("cases.view")
def my_grids(request: Request) -> Response:
    """Grids in the user's assignments (a grid worker's own grids first)."""
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    out = []
    with kernel.db.read() as s:
        for g in who.grants:
            if g.node_level >= Level.GRID:
                out.append(
                    {"id": g.node_id, "code": g.node_code, "name": g.node_name, "role": g.role}
                )
        if not out:
            paths = kernel.authz.scope_paths(who.grants, "cases.report")
            from yiwang.grid.tree import within

            for p in paths[:5]:
                rows = s.execute(
                    select(NODE.c.id, NODE.c.code, NODE.c.name)
                    .where(within(NODE.c.path, p), NODE.c.level == Level.GRID)
                    .order_by(NODE.c.code).limit(200)
                ).all()  # fmt: skip
                out += [{"id": r.id, "code": r.code, "name": r.name, "role": ""} for r in rows]
    return JSONResponse({"grids": out})


@requires("cases.view")
def case_types(request: Request) -> Response:
    kernel = kernel_of(request)
    return JSONResponse({"case_types": [
        {"name": ct.name, "title": ct.title, "category": ct.category,
         "fields": [field_json(f) for f in ct.fields]}
        for ct in kernel.cases.types.values()
    ], "urgency": URGENCY, "scale": SCALE, "channels": CHANNELS})  # fmt: skip


@requires("cases.view")
def list_cases(request: Request) -> Response:
    """``?tab=todo|done|overdue|all&page=N&q=…&state=…&case_type=…`` (20 per page)."""
    kernel = kernel_of(request)
    doer = doer_of(request)
    who = principal(request)
    assert who is not None
    tab = request.query_params.get("tab", "todo")
    if tab not in queries.TABS:
        raise ValidationError(f"tab 无效: {tab}（可选 {', '.join(queries.TABS)}）")
    page = request.query_params.get("page", "1")
    if not page.isdigit():
        raise ValidationError("page 应为正整数")
    q = request.query_params
    filters = queries.Filters(
        q=q.get("q", "")[:50], case_type=q.get("case_type", ""), state=q.get("state", "")
    )
    with kernel.db.read() as s:
        result = queries.listing(kernel, s, who.grants, who.user_id, tab, filters, int(page))
        items = [case_json(kernel, s, c, doer) for c in _cases(s, [r.id for r in result.rows])]
    return JSONResponse(
        {"items": items, "total": result.total, "page": result.page, "pages": result.pages}
    )


def _cases(s: Session, ids: list[int]) -> list[Case]:
    if not ids:
        return []
    found = {c.id: c for c in s.execute(select(Case).where(CASE.c.id.in_(ids))).scalars()}
    return [found[i] for i in ids if i in found]


def _visible(kernel: Any, s: Session, doer: Doer, case_id: int) -> Case:
    case = s.get(Case, case_id)
    if case is None:
        raise NotFound(f"事件不存在: {case_id}")
    if not engine.may_view(kernel, s, doer, case):
        raise Forbidden("该事件不在您的辖区内")
    return case


@requires("cases.view")
def get_case(request: Request) -> Response:
    kernel = kernel_of(request)
    doer = doer_of(request)
    with kernel.db.read() as s:
        case = _visible(kernel, s, doer, int(request.path_params["case_id"]))
        return JSONResponse(case_json(kernel, s, case, doer, full=True))


@requires("cases.view")
def timeline(request: Request) -> Response:
    kernel = kernel_of(request)
    doer = doer_of(request)
    with kernel.db.read() as s:
        case = _visible(kernel, s, doer, int(request.path_params["case_id"]))
        steps = s.execute(
            select(CaseStep).where(STEP.c.case_id == case.id).order_by(STEP.c.seq)
        ).scalars()
        return JSONResponse({"case_id": case.id, "steps": [step_json(s, st) for st in steps]})


@requires("cases.view")
def case_file(request: Request) -> Response:
    from yiwang.files import file_response, get_file

    kernel = kernel_of(request)
    doer = doer_of(request)
    with kernel.db.read() as s:
        case = _visible(kernel, s, doer, int(request.path_params["case_id"]))
        stored = get_file(s, int(request.path_params["file_id"]))
        if stored.owner_type != "case" or stored.owner_id != case.id:
            raise NotFound("附件不存在")
    return file_response(kernel, stored, download=request.query_params.get("download") == "1")


@requires("cases.report")
def similar_cases(request: Request) -> Response:
    """``?case_type=…&lat=…&lon=…[&coord=gcj02]``: same-type cases nearby in recent days."""
    q = dict(request.query_params)
    problems: list[str] = []
    lat, lon = _float(q, "lat", problems), _float(q, "lon", problems)
    if lat is None or lon is None:
        problems.append("请提供 lat 与 lon")
    if problems:
        raise ValidationError("参数有误", problems)
    assert lat is not None and lon is not None
    if q.get("coord") == "gcj02":
        from yiwang.grid.geo import gcj02_to_wgs84

        lat, lon = gcj02_to_wgs84(lat, lon)
    return JSONResponse({"candidates": _similar(request, str(q.get("case_type", "")), lat, lon)})


def _similar(request: Request, case_type: str, lat: float, lon: float) -> list[dict[str, Any]]:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    with kernel.db.read() as s:
        found = queries.similar(
            s,
            queries.view_scope(kernel, who.grants, who.user_id),
            case_type,
            lat,
            lon,
            now=engine.utcnow(),
        )
    return [{**c, "created_at": iso(c["created_at"])} for c in found]


@requires("cases.report")
async def report_case(request: Request) -> Response:
    """Report a case. 201 with the case; 200 with the same case for a repeated idempotency key;
    409 ``similar_cases`` with candidates unless ``confirm_new`` is true."""
    values, uploads = await _body(request)
    return await run_in_threadpool(_report, request, values, uploads)


def _report(request: Request, values: dict[str, Any], uploads: list[Upload]) -> Response:
    kernel = kernel_of(request)
    doer = doer_of(request)
    problems: list[str] = []
    key = request.headers.get("idempotency-key") or values.get("client_id") or None
    lat, lon = _float(values, "lat", problems), _float(values, "lon", problems)
    node_id = _int(values, "node_id", problems)
    node_code = str(values.get("node_code", "") or "")
    extra = _strings(values.get("extra"), "extra")
    if problems:
        raise ValidationError("上报信息有误", problems)
    with kernel.db.read() as s:
        if node_id is None and node_code:
            node_id = s.execute(select(NODE.c.id).where(NODE.c.code == node_code)).scalar()
        if node_id is None:
            raise ValidationError("上报信息有误", ["请提供事发网格 node_id 或 node_code"])
        if key:
            found = engine.by_channel_key(s, str(values.get("channel", "phone")), str(key))
            if found is not None:  # a retry: the same case, if this reporter may see it
                found = engine.retried_case(kernel, s, doer, found)
                return JSONResponse(case_json(kernel, s, found, doer, full=True), status_code=200)
    confirm = str(values.get("confirm_new", "")).lower() in ("1", "true", "yes")
    case_type = str(values.get("case_type", ""))
    if not confirm and lat is not None and lon is not None:
        plat, plon = lat, lon
        if values.get("coord") == "gcj02":
            from yiwang.grid.geo import gcj02_to_wgs84

            plat, plon = gcj02_to_wgs84(lat, lon)
        found_similar = _similar(request, case_type, plat, plon)
        if found_similar:
            return JSONResponse({"error": {
                "code": "similar_cases", "message": "附近近期已有同类事件，请确认是否为同一事件；如不是，请带 confirm_new=true 重新提交",
                "candidates": found_similar}}, status_code=409)  # fmt: skip
    new = NewCase(
        case_type=case_type, title=str(values.get("title", "")), node_id=node_id,
        channel=str(values.get("channel", "phone")), description=str(values.get("description", "")),
        channel_key=str(key) if key else None, lat=lat, lon=lon, coord=str(values.get("coord", "wgs84")),
        address=str(values.get("address", "")), urgency=str(values.get("urgency", "normal")),
        scale=str(values.get("scale", "small")), reporter_name=str(values.get("reporter_name", "")),
        reporter_phone=str(values.get("reporter_phone", "")) or None, extra=extra,
        files=engine.prepare_uploads(kernel, uploads),
    )  # fmt: skip
    with kernel.db.write() as s:
        made, created = engine.report(kernel, s, doer, new)
    # The answer is built after commit: the write unit (SQLite's lock) stays short.
    with kernel.db.read() as s:
        case = s.get(Case, made.id)
        assert case is not None
        body = case_json(kernel, s, case, doer, full=True)
    return JSONResponse(body, status_code=201 if created else 200)


@requires("cases.view")
async def act_on_case(request: Request) -> Response:
    """Take an action: ``{"version": n, "opinion": "…", "target_org": id, "assignee": id,
    "copy_orgs": [ids], "fields": {…}}`` (JSON or multipart with files)."""
    values, uploads = await _body(request)
    return await run_in_threadpool(_act, request, values, uploads)


def _act(request: Request, values: dict[str, Any], uploads: list[Upload]) -> Response:
    kernel = kernel_of(request)
    doer = doer_of(request)
    problems: list[str] = []
    version = _int(values, "version", problems)
    if version is None and not problems:
        problems.append("请提供事件版本号 version（防止覆盖他人的处理）")
    target = _int(values, "target_org", problems)
    assignee = _int(values, "assignee", problems)
    copies_raw = values.get("copy_orgs") or []
    if not isinstance(copies_raw, list):
        copies_raw = [copies_raw]
    copies: list[int] = []
    for c in copies_raw:
        try:
            copies.append(int(c))
        except (TypeError, ValueError):
            problems.append("copy_orgs 应为单位编号列表")
    if problems:
        raise ValidationError("操作参数有误", problems)
    case_id = int(request.path_params["case_id"])
    if uploads:  # a stranger's upload must not even reach the blob store
        with kernel.db.read() as s:
            _visible(kernel, s, doer, case_id)
    given = ActionInput(
        opinion=str(values.get("opinion", "") or ""), target_org=target, assignee=assignee,
        copy_orgs=copies, fields=_strings(values.get("fields"), "fields"),
        files=engine.prepare_uploads(kernel, uploads),
    )  # fmt: skip
    with kernel.db.write() as s:
        case = _visible(kernel, s, doer, case_id)
        step_id = engine.act(
            kernel, s, doer, case_id, str(request.path_params["action"]), given, version=version
        ).id
    # Built after commit (the write unit stays short), from the case as the unit left it: the
    # engine keeps the loaded row in step with what it wrote, so it need not be read again.
    with kernel.db.read() as s:
        case = s.merge(case, load=False)
        step = s.get(CaseStep, step_id)
        assert step is not None
        names = orgs(s, [i for i in {case.org_id, step.from_org_id, step.to_org_id} if i])
        body = {"case": case_json(kernel, s, case, doer, full=True, names=names),
                "step": step_json(s, step, names)}  # fmt: skip
    return JSONResponse(body)


@public
def openapi_document(request: Request) -> Response:
    from yiwang.web.openapi import document

    return JSONResponse(document(kernel_of(request)))


def routes() -> list[Route]:
    return [
        Route("/api/openapi.json", openapi_document, methods=["GET"], name="api:openapi"),
        Route("/api/grids", my_grids, methods=["GET"], name="api:grids"),
        Route("/api/case-types", case_types, methods=["GET"], name="api:case-types"),
        Route("/api/cases", list_cases, methods=["GET"], name="api:cases"),
        Route("/api/cases", report_case, methods=["POST"], name="api:cases-report"),
        Route("/api/cases/similar", similar_cases, methods=["GET"], name="api:cases-similar"),
        Route("/api/cases/{case_id:int}", get_case, methods=["GET"], name="api:case"),
        Route(
            "/api/cases/{case_id:int}/timeline", timeline, methods=["GET"], name="api:case-timeline"
        ),
        Route(
            "/api/cases/{case_id:int}/files/{file_id:int}",
            case_file,
            methods=["GET"],
            name="api:case-file",
        ),
        Route(
            "/api/cases/{case_id:int}/actions/{action}",
            act_on_case,
            methods=["POST"],
            name="api:case-act",
        ),
    ]
