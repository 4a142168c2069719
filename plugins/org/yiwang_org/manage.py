"""Edit pages (``org.manage`` at the object's node): register and edit grid workers (grids,
在岗/停用), their 综治专用手机, and organisation staff. Writes go through the service functions
in one unit of work (audited); a bad input re-renders the form (htmx, 422) with Chinese errors
and writes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from yiwang.api import (
    Level,
    Node,
    NotFound,
    Organisation,
    ValidationError,
    actor,
    current_node,
    read,
    render,
    require,
    requires,
    subtree_filter,
    write,
)

from yiwang_org import service
from yiwang_org.models import Device, Staff, Worker
from yiwang_org.views import _scope

MANAGE = "org.manage"


def _go(request: Request, url: str) -> Response:
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=200, headers={"HX-Redirect": url, "Vary": "HX-Request"})
    return RedirectResponse(url, status_code=303)


async def _form(request: Request) -> tuple[dict[str, str], list[str]]:
    """The form's fields, and the codes of the grids ticked (``grids``, repeated)."""
    async with request.form(max_files=0) as form:
        return {k: str(v) for k, v in form.items()}, [str(v) for v in form.getlist("grids")]


def _grid_choices(request: Request, s: Any, path: str) -> list[Node]:
    stmt = select(Node).where(col(Node.level) == int(Level.GRID), subtree_filter(Node.path, path),
                              _scope(request, MANAGE, Node.path))  # fmt: skip
    return list(s.scalars(stmt.order_by(col(Node.code)).limit(500)))


def _grids(request: Request, s: Any, codes: list[str]) -> list[Node]:
    """The ticked grids, each where the user holds org.manage."""
    grids = list(s.scalars(select(Node).where(col(Node.code).in_(codes)))) if codes else []
    for g in grids:
        require(request, MANAGE, g.path)
    return grids


def _owned(request: Request, s: Any, model: Any, key: str, missing: str) -> Any:
    """The row of ``model`` named by the path parameter ``key``, if the user may manage it."""
    row = s.get(model, request.path_params[key])
    if row is None:
        raise NotFound(missing)
    require(request, MANAGE, row.node_path)
    return row


def _worker(request: Request, s: Any) -> Worker:
    return _owned(request, s, Worker, "worker_id", "网格员不存在")  # type: ignore[no-any-return]


def _worker_form(request: Request, values: dict[str, Any], error: Any = None, worker_id: int | None = None,
                 status_code: int = 200, device_error: Any = None,
                 device_values: dict[str, str] | None = None) -> Response:  # fmt: skip
    node = current_node(request)
    with read(request) as s:
        worker = _worker(request, s) if worker_id is not None else None
        path = worker.node_path if worker else (node.path if node else "/")
        grids = _grid_choices(request, s, path)
        devices = (
            list(s.scalars(select(Device).where(col(Device.worker_id) == worker.id)))
            if worker
            else []
        )
        return render(request, "org/worker_form.html", {"worker": worker, "values": values, "error": error,
                      "grids": grids, "devices": devices, "device_error": device_error,
                      "device_values": device_values or {}}, status_code=status_code)  # fmt: skip


@requires(MANAGE)
async def worker_new(request: Request) -> Response:
    """``GET``: the form; ``POST`` (name, phone, grids): register a worker at the current node."""
    from starlette.concurrency import run_in_threadpool

    if request.method == "GET":
        return await run_in_threadpool(_worker_form, request, {"grids": []})
    values, codes = await _form(request)
    return await run_in_threadpool(_worker_new, request, values, codes)


def _worker_new(request: Request, values: dict[str, str], codes: list[str]) -> Response:
    node = current_node(request)
    if node is None:
        raise NotFound("尚无网格数据")
    try:
        with write(request) as s:
            grids = _grids(request, s, codes)
            w = service.add_worker(s, s.get_one(Node, node.id), values.get("name", ""), values.get("phone"), grids,
                                   actor=actor(request))  # fmt: skip
            url = str(request.url_for("org:worker", worker_id=w.id))
    except ValidationError as err:
        return _worker_form(request, {**values, "grids": codes}, err, status_code=422)
    return _go(request, url)


@requires(MANAGE)
async def worker_edit(request: Request) -> Response:
    """``GET``: the edit form with the devices; ``POST`` (name, phone — empty keeps it —,
    grids, active): change the worker."""
    from starlette.concurrency import run_in_threadpool

    worker_id = request.path_params["worker_id"]
    if request.method == "GET":
        return await run_in_threadpool(_worker_edit_form, request, worker_id)
    values, codes = await _form(request)
    return await run_in_threadpool(_worker_edit, request, worker_id, values, codes)


def _worker_edit_form(request: Request, worker_id: int, **kw: Any) -> Response:
    with read(request) as s:
        worker = _worker(request, s)
        codes = [g.code for g in service.grids_of(s, [worker_id])[worker_id]]
    values = {"name": worker.name, "active": "1" if worker.active else "", "grids": codes}
    return _worker_form(request, values, worker_id=worker_id, **kw)


def _worker_edit(
    request: Request, worker_id: int, values: dict[str, str], codes: list[str]
) -> Response:
    try:
        with write(request) as s:
            worker = _worker(request, s)
            phone = values.get("phone", "").strip() or None
            service.update_worker(s, worker, name=values.get("name", ""), phone=phone,
                                  grids=_grids(request, s, codes), active=bool(values.get("active")),
                                  actor=actor(request))  # fmt: skip
    except ValidationError as err:
        return _worker_form(
            request, {**values, "grids": codes}, err, worker_id=worker_id, status_code=422
        )
    return _go(request, str(request.url_for("org:worker", worker_id=worker_id)))


@requires(MANAGE)
async def device_new(request: Request) -> Response:
    """``POST`` (imei, phone_number): register a 综治专用手机 held by the worker."""
    from starlette.concurrency import run_in_threadpool

    values, _ = await _form(request)
    return await run_in_threadpool(_device_new, request, values)


def _device_new(request: Request, values: dict[str, str]) -> Response:
    worker_id = request.path_params["worker_id"]
    try:
        with write(request) as s:
            service.add_device(s, _worker(request, s), values.get("imei", ""), values.get("phone_number"),
                               actor=actor(request))  # fmt: skip
    except ValidationError as err:
        return _worker_edit_form(
            request, worker_id, status_code=422, device_error=err, device_values=values
        )
    return _go(request, str(request.url_for("org:worker_edit", worker_id=worker_id)))


def _orgs(request: Request, s: Any) -> list[Organisation]:
    node = current_node(request)
    if node is None:
        return []
    stmt = (select(Organisation).join(Node, col(Node.id) == Organisation.node_id)
            .where(subtree_filter(Node.path, node.path), _scope(request, MANAGE, Node.path))
            .order_by(col(Node.path), col(Organisation.id)).limit(500))  # fmt: skip
    return list(s.scalars(stmt))


def _staff_form(
    request: Request, values: dict[str, str], error: Any = None, status_code: int = 200,
    staff: Staff | None = None,
) -> Response:  # fmt: skip
    with read(request) as s:
        orgs = _orgs(request, s) if staff is None else []
        return render(request, "org/staff_form.html", {"orgs": orgs, "values": values, "error": error,
                                                       "staff": staff}, status_code=status_code)  # fmt: skip


def _staff(request: Request, s: Any) -> Staff:
    return _owned(request, s, Staff, "staff_id", "人员不存在")  # type: ignore[no-any-return]


@requires(MANAGE)
async def staff_edit(request: Request) -> Response:
    """``GET``: the edit form; ``POST`` (name, post, phone — empty keeps it —, active)."""
    from starlette.concurrency import run_in_threadpool

    if request.method == "GET":
        return await run_in_threadpool(_staff_edit_form, request)
    values, _ = await _form(request)
    return await run_in_threadpool(_staff_edit, request, values)


def _staff_edit_form(request: Request) -> Response:
    with read(request) as s:
        staff = _staff(request, s)
    values = {"name": staff.name, "post": staff.post, "active": "1" if staff.active else ""}
    return _staff_form(request, values, staff=staff)


def _staff_edit(request: Request, values: dict[str, str]) -> Response:
    try:
        with write(request) as s:
            staff = _staff(request, s)
            service.update_staff(s, staff, name=values.get("name", ""), phone=values.get("phone", "").strip() or None,
                                 post=values.get("post", ""), active=bool(values.get("active")),
                                 actor=actor(request))  # fmt: skip
    except ValidationError as err:
        with read(request) as s:
            staff = _staff(request, s)
        return _staff_form(request, values, err, status_code=422, staff=staff)
    return _go(request, str(request.url_for("org:list")))


@requires(MANAGE)
async def staff_new(request: Request) -> Response:
    """``GET``: the form; ``POST`` (org, name, phone, post): add a staff member to an
    organisation of the subtree."""
    from starlette.concurrency import run_in_threadpool

    if request.method == "GET":
        return await run_in_threadpool(_staff_form, request, {})
    values, _ = await _form(request)
    return await run_in_threadpool(_staff_new, request, values)


def _staff_new(request: Request, values: dict[str, str]) -> Response:
    try:
        with write(request) as s:
            try:
                org = s.get(Organisation, int(values.get("org", "")))
            except ValueError:
                org = None
            if org is None:
                raise ValidationError("人员未添加", ["请选择所在机构"])
            require(request, MANAGE, s.get_one(Node, org.node_id).path)
            service.add_staff(s, org, values.get("name", ""), values.get("phone"), values.get("post", ""),
                              actor=actor(request))  # fmt: skip
    except ValidationError as err:
        return _staff_form(request, values, err, status_code=422)
    return _go(request, str(request.url_for("org:list")))


routes = [
    Route("/workers/new", worker_new, methods=["GET", "POST"], name="worker_new"),
    Route(
        "/workers/{worker_id:int}/edit", worker_edit, methods=["GET", "POST"], name="worker_edit"
    ),
    Route("/workers/{worker_id:int}/devices", device_new, methods=["POST"], name="device_new"),
    Route("/staff/new", staff_new, methods=["GET", "POST"], name="staff_new"),
    Route("/staff/{staff_id:int}/edit", staff_edit, methods=["GET", "POST"], name="staff_edit"),
]
