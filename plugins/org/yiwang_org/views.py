"""Pages (roster, worker detail, coverage) and the phone's patrol API (JSON, bearer token)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlmodel import col
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from yiwang.api import (
    NewCase,
    Node,
    NotFound,
    Organisation,
    Upload,
    ValidationError,
    actor,
    current_node,
    doer_of,
    kernel,
    principal,
    read,
    render,
    report_case,
    require,
    requires,
    write,
)

from yiwang_org import service
from yiwang_org.models import PATROLS_PER_DAY, WORKERS_PER_GRID, Patrol, Staff, Worker


def _scope(request: Request, permission: str, column: Any) -> Any:
    """SQL condition: ``column`` lies where the user holds ``permission``."""
    who = principal(request)
    return kernel(request).authz.scope_filter(who.grants if who else (), permission, column)


def _root(request: Request) -> Any:
    node = current_node(request)
    if node is None:
        raise NotFound("尚无网格数据")
    return node


@requires("org.view")
def roster(request: Request) -> Response:
    """Staff and grid workers of the current node's subtree."""
    node = _root(request)
    with read(request) as s:
        workers = service.workers_within(
            s, node.path, _scope(request, "org.view", Worker.node_path)
        )
        staff = service.staff_within(s, node.path, _scope(request, "org.view", Staff.node_path))
        grids = service.grids_of(s, [w.id or 0 for w in workers])
        org_ids = {m.org_id for m in staff}
        orgs: dict[int, str] = {}
        if org_ids:
            stmt = select(col(Organisation.id), col(Organisation.name)).where(
                col(Organisation.id).in_(org_ids)
            )
            orgs = {i: n for i, n in s.execute(stmt).all()}
    who = principal(request)
    may_manage = who is not None and kernel(request).authz.allowed(
        who.grants, "org.manage", node.path
    )
    return render(request, "org/list.html", {"workers": workers, "staff": staff, "grids": grids, "orgs": orgs,
                                             "may_manage": may_manage})  # fmt: skip


@requires("org.view")
def worker_detail(request: Request) -> Response:
    """One worker: grids, devices and recent patrols."""
    from yiwang_org.models import Device

    with read(request) as s:
        worker = s.get(Worker, request.path_params["worker_id"])
        if worker is None:
            raise NotFound("网格员不存在")
        require(request, "org.view", worker.node_path)
        grids = service.grids_of(s, [worker.id or 0])[worker.id or 0]
        devices = list(s.scalars(select(Device).where(Device.worker_id == worker.id)))  # type: ignore[arg-type]
        patrols = service.recent_patrols(s, worker.id or 0)
        names = {g.id: g.name for g in grids}
        missing = {p.grid_id for p in patrols} - set(names)
        if missing:
            stmt = select(col(Node.id), col(Node.name)).where(col(Node.id).in_(missing))
            names.update({i: n for i, n in s.execute(stmt).all()})
    who = principal(request)
    may_manage = who is not None and kernel(request).authz.allowed(
        who.grants, "org.manage", worker.node_path
    )
    return render(request, "org/worker.html", {"worker": worker, "grids": grids, "devices": devices,
                                                "patrols": patrols, "names": names, "may_manage": may_manage})  # fmt: skip


@requires("org.view")
def coverage(request: Request) -> Response:
    """Today's patrols per grid of the current node's subtree; flags grids under two."""
    node = _root(request)
    with read(request) as s:
        rows = service.coverage(s, node.path, _scope(request, "org.view", Node.path),
                                _scope(request, "org.view", Patrol.node_path))  # fmt: skip
    return render(request, "org/coverage.html", {"rows": rows, "expected": PATROLS_PER_DAY,
                                                  "norm": WORKERS_PER_GRID,
                                                  "under": sum(1 for r in rows if r.under)})  # fmt: skip


# --- the phone API -------------------------------------------------------------------------------


def _problem(err: ValidationError, status: int = 422) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "message": err.args[0], "problems": err.problems}},
                        status_code=status)  # fmt: skip


def _denied(message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": 403, "message": message}}, status_code=403)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("请求有误", ["请求体应为 JSON"]) from None
    if not isinstance(body, dict):
        raise ValidationError("请求有误", ["请求体应为 JSON 对象"])
    return body


def _patrol_json(p: Patrol) -> dict[str, Any]:
    return {"id": p.id, "grid_id": p.grid_id, "started_at": p.started_at.isoformat(),
            "ended_at": p.ended_at.isoformat() if p.ended_at else None, "points": p.point_count}  # fmt: skip


@requires("org.patrol")
async def api_start(request: Request) -> Response:
    """``POST /p/org/api/patrols {grid: <grid code>}`` → the new patrol."""
    try:
        body = await _json(request)
    except ValidationError as err:
        return _problem(err)
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_start, request, str(body.get("grid", "")).strip())


def _start(request: Request, code: str) -> Response:
    who = principal(request)
    with write(request) as s:
        grid = s.scalars(select(Node).where(Node.code == code)).first() if code else None  # type: ignore[arg-type]
        if grid is None:
            raise NotFound("网格不存在")
        require(request, "org.patrol", grid.path)
        worker = service.worker_of_user(s, who.user_id) if who else None
        if worker is None:
            return _denied("您尚未登记为网格员")
        try:
            patrol = service.start_patrol(s, worker, grid, actor=actor(request))
        except ValidationError as err:
            return _problem(err)
        out = _patrol_json(patrol)
    return JSONResponse(out, status_code=201)


def _own_patrol(request: Request, s: Any) -> Patrol | Response:
    patrol = s.get(Patrol, request.path_params["patrol_id"])
    if patrol is None:
        raise NotFound("巡查记录不存在")
    require(request, "org.patrol", patrol.node_path)
    who = principal(request)
    worker = service.worker_of_user(s, who.user_id) if who else None
    if worker is None or worker.id != patrol.worker_id:
        return _denied("只能记录本人的巡查")
    return patrol  # type: ignore[no-any-return]


@requires("org.patrol")
async def api_points(request: Request) -> Response:
    """``POST …/patrols/{id}/points {points: [{lat, lon, at}], coord: "wgs84"|"gcj02"}``."""
    try:
        body = await _json(request)
        coord = str(body.get("coord", request.query_params.get("coord", "wgs84"))).lower()
        points = service.parse_points(body.get("points"), coord)
    except ValidationError as err:
        return _problem(err)
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_points, request, points, coord)


def _points(request: Request, points: list[service.Point], coord: str) -> Response:
    with write(request) as s:
        patrol = _own_patrol(request, s)
        if isinstance(patrol, Response):
            return patrol
        try:
            total = service.add_points(s, patrol, points, coord, actor=actor(request))
        except ValidationError as err:
            return _problem(err, 409)
    return JSONResponse({"id": request.path_params["patrol_id"], "points": total})


@requires("org.patrol")
def api_finish(request: Request) -> Response:
    """``POST …/patrols/{id}/finish`` ends the patrol."""
    with write(request) as s:
        patrol = _own_patrol(request, s)
        if isinstance(patrol, Response):
            return patrol
        try:
            service.finish_patrol(s, patrol, actor=actor(request))
        except ValidationError as err:
            return _problem(err, 409)
        out = _patrol_json(patrol)
    return JSONResponse(out)


@requires("org.patrol")
async def api_finding(request: Request) -> Response:
    """``POST …/patrols/{id}/findings`` — what the worker found becomes a case in one tap.

    JSON ``{case_type, title, description?, lat?, lon?, coord?, urgency?, client_id?}`` or the same
    as a multipart form with ``files`` (photos). The case is reported in the patrol's grid through
    the kernel's case engine (channel ``phone``); ``client_id`` makes a retried tap find the first
    case instead of making a second one.
    """
    ctype = request.headers.get("content-type", "")
    uploads: list[Upload] = []
    try:
        if ctype.startswith("multipart/form-data"):
            async with request.form(max_files=9) as form:
                body: dict[str, Any] = {}
                for key, value in form.multi_items():
                    if isinstance(value, str):
                        body[key] = value
                    elif value.filename:
                        uploads.append(Upload(value.filename, await value.read()))
        else:
            body = await _json(request)
        finding = _finding(body, uploads)
    except ValidationError as err:
        return _problem(err)
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_report_finding, request, finding)


def _number(body: dict[str, Any], key: str, problems: list[str]) -> float | None:
    raw = body.get(key)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        problems.append(f"{key} 应为数字")
        return None


def _finding(body: dict[str, Any], uploads: list[Upload]) -> dict[str, Any]:
    problems: list[str] = []
    lat, lon = _number(body, "lat", problems), _number(body, "lon", problems)
    if problems:
        raise ValidationError("巡查发现有误", problems)
    key = str(body.get("client_id", "") or "").strip()
    return {
        "case_type": str(body.get("case_type", "")), "title": str(body.get("title", "")),
        "description": str(body.get("description", "")), "lat": lat, "lon": lon,
        "coord": str(body.get("coord", "wgs84")).lower(), "urgency": str(body.get("urgency", "normal")),
        "key": key, "files": uploads,
    }  # fmt: skip


def _report_finding(request: Request, f: dict[str, Any]) -> Response:
    k = kernel(request)
    with read(request) as s:
        patrol = _own_patrol(request, s)
        if isinstance(patrol, Response):
            return patrol
        pid, grid_id = patrol.id, patrol.grid_id
    new = NewCase(
        case_type=f["case_type"], title=f["title"], node_id=grid_id, channel="phone",
        description=f"{f['description']}（巡查 #{pid} 发现）".strip(),
        channel_key=f"org-patrol-{pid}-{f['key']}" if f["key"] else None,
        lat=f["lat"], lon=f["lon"], coord=f["coord"], urgency=f["urgency"], files=f["files"],
    )  # fmt: skip
    try:
        with write(request) as s:
            case, created = report_case(k, s, doer_of(request), new)
            out = {"case_id": case.id, "serial": case.serial, "state": case.state, "patrol_id": pid}
    except ValidationError as err:
        return _problem(err)
    return JSONResponse(out, status_code=201 if created else 200)


routes = [
    Route("/", roster, name="list"),
    Route("/coverage", coverage, name="coverage"),
    Route("/workers/{worker_id:int}", worker_detail, name="worker"),
    Route("/api/patrols", api_start, methods=["POST"], name="api_start"),
    Route("/api/patrols/{patrol_id:int}/points", api_points, methods=["POST"], name="api_points"),
    Route("/api/patrols/{patrol_id:int}/finish", api_finish, methods=["POST"], name="api_finish"),
    Route(
        "/api/patrols/{patrol_id:int}/findings", api_finding, methods=["POST"], name="api_finding"
    ),
]
