"""模块启用: each node-scoped plugin's effective state at a node, where it comes from, and the
switch (on / off / inherit) at the levels the plugin allows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from yiwang.admin.common import (
    actor,
    in_jurisdiction,
    node_by_code,
    read_form,
    render,
    tree_context,
    who,
)
from yiwang.errors import ValidationError
from yiwang.grid.levels import Level
from yiwang.grid.tree import ROW_COLUMNS, NodeRow, T, ancestor_ids
from yiwang.plugins.spec import Scope
from yiwang.rbac.guard import require, requires
from yiwang.web.context import current_node, kernel_of

STATES = {"on": True, "off": False, "inherit": None}


@dataclass(frozen=True)
class PluginState:
    """One plugin at one node."""

    name: str
    title: str
    active: bool
    #: "here" (explicit at this node), "inherited" (from an ancestor) or "default".
    source: str
    #: The ancestor it is inherited from, when the viewer may name it ("" otherwise).
    source_name: str
    explicit_here: bool
    switchable: bool
    levels: str


def _states(request: Request, node: NodeRow) -> tuple[list[PluginState], list[str]]:
    """Node-scoped plugins' states at ``node``, and the titles of the global ones."""
    kernel = kernel_of(request)
    p = who(request)
    explicit: dict[tuple[int, str], bool] = {(n, plugin): a for n, plugin, a in kernel.activation.explicit()}
    chain = list(reversed(ancestor_ids(node.path)))  # the node itself first
    with kernel.db.read() as s:
        rows = s.connection().execute(select(*ROW_COLUMNS).where(T.c.id.in_(chain))).all()
    nodes = {r.id: NodeRow(*r) for r in rows}
    active = kernel.activation.active_plugins(node)
    states, global_ = [], []
    for spec in kernel.host.specs.values():
        if spec.scope == Scope.GLOBAL:
            global_.append(spec.title)
            continue
        source, source_name = "default", ""
        for node_id in chain:
            if (node_id, spec.name) in explicit:
                source = "here" if node_id == node.id else "inherited"
                anc = nodes.get(node_id)
                # Above the jurisdiction the ancestor is not the viewer's to name.
                if source == "inherited" and anc is not None and in_jurisdiction(p, anc.path):
                    source_name = anc.name
                break
        states.append(
            PluginState(
                name=spec.name, title=spec.title, active=spec.name in active, source=source,
                source_name=source_name, explicit_here=source == "here",
                switchable=Level(node.level) in spec.levels,
                levels="、".join(lv.label for lv in spec.levels),
            )
        )  # fmt: skip
    return states, global_


def _page(request: Request, node: NodeRow | None, problems: list[str], status: int = 200) -> Response:
    kernel = kernel_of(request)
    p = who(request)
    states, global_ = _states(request, node) if node is not None else ([], [])
    with kernel.db.read() as s:
        ctx = tree_context(s, p, node)
    return render(
        request,
        "admin/plugins.html",
        {**ctx, "current": node, "states": states, "global_plugins": global_, "problems": problems,
         "level_label": Level(node.level).label if node else ""},
        status_code=status,
        node=node,
    )  # fmt: skip


@requires("plugins.manage")
def activation_page(request: Request) -> Response:
    return _page(request, current_node(request), [])


@requires("plugins.manage")
async def activation_set(request: Request) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_set, request, form)


def _set(request: Request, form: dict[str, str]) -> Response:
    """Switch ``plugin`` at the node named in the form (``node``), checked against its node."""
    kernel = kernel_of(request)
    plugin: str = request.path_params["plugin"]
    code, state = form.get("node", ""), form.get("state", "")
    with kernel.db.read() as s:
        node = node_by_code(s, code) if code else None
    if node is None:
        return _page(request, current_node(request), ["请选择节点"], 400)
    require(request, "plugins.manage", node.path)
    spec = kernel.host.specs.get(plugin)
    problem = ""
    if spec is None or spec.scope != Scope.NODE:
        problem = "该模块不存在或不能按地区开关"
    elif state not in STATES:
        problem = "请选择启用、停用或继承上级"
    else:
        try:
            kernel.activation.set(plugin, node, STATES[state], actor=actor(request))
        except ValidationError as exc:
            problem = str(exc)
    if problem:
        return _page(request, node, [problem], 400)
    url = request.url_for("admin:plugins").include_query_params(node=node.code)
    return RedirectResponse(str(url), status_code=303)
