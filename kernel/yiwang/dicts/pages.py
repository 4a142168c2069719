"""字典管理 pages (``/admin/dictionaries``): every declared dictionary and its items as the
province of the request's node has them, with the forms that rename, reorder, switch off or add
items. Changes apply to the whole province, so they need ``dicts.manage`` at the province node
itself; a city or county administrator sees the province's items read-only.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from yiwang.admin.common import actor, in_jurisdiction, node_by_code, read_form, render, who
from yiwang.calendar.overrides import province_of
from yiwang.dicts.cache import cache_of
from yiwang.dicts.service import reset_item, set_item
from yiwang.errors import NotFound, ValidationError
from yiwang.grid.tree import NodeRow
from yiwang.rbac.guard import require, requires
from yiwang.web.context import current_node, kernel_of

PERMISSION = "dicts.manage"


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/dictionaries", index, methods=["GET"], name="admin:dicts"),
        Route("/admin/dictionaries/{name:str}", detail, methods=["GET"], name="admin:dict"),
        Route("/admin/dictionaries/{name:str}", save, methods=["POST"], name="admin:dict_set"),
        Route("/admin/dictionaries/{name:str}/reset", reset, methods=["POST"], name="admin:dict_reset"),
    ]


def _province(request: Request, node: NodeRow | None) -> NodeRow:
    if node is None:
        raise NotFound("区划为空：请先导入区划")
    with kernel_of(request).db.read() as s:
        return province_of(s, node.path)


@requires(PERMISSION)
def index(request: Request) -> Response:
    node = current_node(request)
    province = _province(request, node)
    cache = cache_of(kernel_of(request))
    rows = []
    for name, d in sorted(cache.declared.items()):
        entries = cache.entries(name, province.id)
        rows.append({"name": name, "title": d.title, "description": d.description,
                     "count": sum(e.active for e in entries), "changed": sum(e.overridden for e in entries),
                     "extensible": d.extensible})  # fmt: skip
    return render(request, "admin/dictionaries.html",
                  {"rows": rows, "province_name": _name(request, province)}, node=node)  # fmt: skip


def _name(request: Request, province: NodeRow) -> str:
    return province.name if in_jurisdiction(who(request), province.path) else "本省"


def _detail(request: Request, name: str, province: NodeRow, problems: list[str], values: dict[str, str],
            status: int = 200) -> Response:  # fmt: skip
    kernel = kernel_of(request)
    cache = cache_of(kernel)
    declared = cache.declared.get(name)
    if declared is None:
        raise NotFound(f"数据字典 {name} 未声明")
    ctx: dict[str, Any] = {
        "d": declared, "entries": cache.entries(name, province.id), "province": province,
        "province_name": _name(request, province), "problems": problems, "values": values,
        "can_edit": kernel.authz.allowed(who(request).grants, PERMISSION, province.path),
    }  # fmt: skip
    return render(request, "admin/dictionary.html", ctx, status_code=status, node=current_node(request))


@requires(PERMISSION)
def detail(request: Request) -> Response:
    province = _province(request, current_node(request))
    return _detail(request, request.path_params["name"], province, [], {})


def _form_province(request: Request, form: dict[str, str]) -> NodeRow:
    with kernel_of(request).db.read() as s:
        node = node_by_code(s, form.get("node", "")) if form.get("node") else None
    if node is None or node.parent_id is not None:
        raise NotFound("请选择要调整数据字典的省（根节点）")
    require(request, PERMISSION, node.path)
    return node


def _back(request: Request, name: str, province: NodeRow) -> Response:
    url = request.url_for("admin:dict", name=name).include_query_params(node=province.code)
    return RedirectResponse(str(url), status_code=303)


@requires(PERMISSION)
async def save(request: Request) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_save, request, form)


def _save(request: Request, form: dict[str, str]) -> Response:
    name = request.path_params["name"]
    province = _form_province(request, form)
    raw = form.get("position", "0") or "0"
    problems: list[str] = []
    position = 0
    try:
        position = int(raw)
    except ValueError:
        problems.append("顺序应为整数")
    if not problems:
        try:
            assert province.id is not None
            set_item(kernel_of(request), province.id, name, form.get("code", ""), label=form.get("label", ""),
                     position=position, active=form.get("active") == "on", actor=actor(request))  # fmt: skip
        except ValidationError as exc:
            problems += exc.problems or [str(exc)]
    if problems:
        return _detail(request, name, province, problems, form, status=400)
    return _back(request, name, province)


@requires(PERMISSION)
async def reset(request: Request) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_reset, request, form)


def _reset(request: Request, form: dict[str, str]) -> Response:
    name = request.path_params["name"]
    province = _form_province(request, form)
    try:
        assert province.id is not None
        reset_item(kernel_of(request), province.id, name, form.get("code", ""), actor=actor(request))
    except (ValidationError, NotFound) as exc:
        return _detail(request, name, province, [str(exc)], {}, status=400)
    return _back(request, name, province)
