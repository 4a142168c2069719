"""The grid map (网格地图): a node's children as outlines coloured by open cases, the open cases
of its subtree as clustered pins, plugins' layers as toggles, and a side panel for what is
clicked. The GeoJSON routes are scoped in SQL to the user's subtree and bounded; pins carry a
case's title, type and state only, never personal data."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import and_, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from yiwang import stats
from yiwang.cases import engine, forms
from yiwang.cases.api import doer_of
from yiwang.cases.pages import state_titles, visible_case
from yiwang.cases.queries import view_scope
from yiwang.cases.standard import STATES
from yiwang.errors import NotFound, ValidationError
from yiwang.grid import tree
from yiwang.grid.geo import wgs84_to_gcj02
from yiwang.grid.levels import Level
from yiwang.grid.models import Node
from yiwang.grid.tree import NodeRow, within
from yiwang.plugins.host import KERNEL
from yiwang.plugins.records import MapLayer
from yiwang.rbac.guard import require, requires
from yiwang.web.context import current_node, kernel_of, principal

T = tree.T
CASE = engine.CASE
#: The rollup counting cases per node by state (``yiwang.cases.hooks.indicators``).
CASE_STATES = "cases.state"
#: Most node outlines one answer carries (a node rarely has more than a few dozen children).
MAX_NODES = 2000
_NODE_COLUMNS = (T.c.id, T.c.code, T.c.name, T.c.level, T.c.kind, T.c.path, T.c.child_count,
                 T.c.grid_count, T.c.geometry, T.c.lat, T.c.lon)  # fmt: skip


@dataclass(frozen=True)
class Child:
    """A row of the map's tree: a child node and its open cases (None: not the user's to count)."""

    node: NodeRow
    open: int | None


def _terminal(kernel: Any) -> set[str]:
    return {s for wf in kernel.cases.workflows.values() for s in wf.terminal}


def _open_count(kernel: Any, counts: dict[str, int]) -> int:
    """Open cases from a node's rollup by state: the rollup's keys (the standard states and
    ``other``, ``yiwang.cases.hooks.indicators``) outside the terminal states."""
    term = _terminal(kernel)
    keys = [st.name for st in STATES if st.name not in term] + ["other"]
    return sum(counts.get(key, 0) for key in keys)


def _may(request: Request, permission: str, path: str) -> bool:
    who = principal(request)
    return who is not None and kernel_of(request).authz.allowed(who.grants, permission, path)


def _node(request: Request) -> NodeRow:
    """The map's node: ``?node=<code>`` inside the user's assignments, else their jurisdiction."""
    node = current_node(request)
    if node is None:
        code = request.query_params.get("node", "").strip()
        raise NotFound(f"编码为 {code} 的节点不存在" if code else "还没有区划数据")
    require(request, "grid.view", node.path)
    return node


def _children(request: Request, node: NodeRow) -> list[Child]:
    kernel = kernel_of(request)
    with kernel.db.read() as s:
        if _may(request, "cases.view", node.path):
            rows = stats.children(s, CASE_STATES, node.id)
            return [Child(n, _open_count(kernel, c)) for n, c in rows]
        return [Child(n, None) for n in tree.children(s, node.id)]


def layers_at(request: Request, node: NodeRow) -> list[MapLayer]:
    """Plugins' map layers at ``node``: from plugins active there, where the user holds the
    layer's permission (``yiwang_map_layers``)."""
    kernel = kernel_of(request)
    active = kernel.activation.active_plugins(node)
    out = []
    with kernel.db.read() as s:
        full = s.get(Node, node.id)
    for plugin, layer in kernel.host.collect_items("yiwang_map_layers", node=full):
        if plugin != KERNEL and plugin not in active:
            continue
        if layer.permission and not _may(request, layer.permission, node.path):
            continue
        out.append(replace(layer, plugin=plugin))
    return out


@requires("grid.view")
def map_page(request: Request) -> Response:
    kernel = kernel_of(request)
    node = current_node(request)
    if node is None:
        return kernel.templates.render(request, "grid/map.html", {"current": None, "children": []})
    require(request, "grid.view", node.path)
    who = principal(request)
    assert who is not None
    with kernel.db.read() as s:
        trail = [a for a in tree.ancestors(s, node) if any(a.path.startswith(g.node_path) for g in who.grants)]
        cases_here = _may(request, "cases.view", node.path)
        open_here = _open_count(kernel, stats.by_key(s, CASE_STATES, node.id)) if cases_here else None
    children = _children(request, node)
    layers = [
        {"name": f"{la.plugin}.{la.name}", "title": la.title, "url": la.url, "kind": la.kind}
        for la in layers_at(request, node)
    ]
    settings = kernel.settings.map
    return kernel.templates.render(
        request,
        "grid/map.html",
        {
            "current": node,
            "level_label": Level(node.level).label,
            "trail": trail,
            "children": children,
            "cases_here": cases_here,
            "open_here": open_here,
            "layers_json": json.dumps(layers, ensure_ascii=False),
            "map": settings,
            "dashboard": _dashboard(request, node.code),
        },
        node=node,
    )


# --- GeoJSON ------------------------------------------------------------------------------------


def _shift(coords: Any, gcj: bool) -> Any:
    """Coordinates for display: WGS-84 as stored, or GCJ-02 for tiles drawn in it."""
    if not gcj:
        return coords
    if coords and isinstance(coords[0], (int, float)):
        lat, lon = wgs84_to_gcj02(float(coords[1]), float(coords[0]))
        return [round(lon, 6), round(lat, 6)]
    return [_shift(c, gcj) for c in coords]


def _geometry(text: str | None, gcj: bool) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        geo = json.loads(text)
    except ValueError:
        return None
    if not isinstance(geo, dict) or "coordinates" not in geo:
        return None
    return {"type": geo.get("type"), "coordinates": _shift(geo["coordinates"], gcj)}


def _path(request: Request, name: str, *, node: str = "", **params: Any) -> str:
    """A route's path (relative, so it survives a reverse proxy), with ``?node=`` when given."""
    path = str(request.app.url_path_for(name, **params))
    return f"{path}?{urlencode({'node': node})}" if node else path


def _dashboard(request: Request, code: str) -> str:
    """The node's dashboard (工作台) for a user who may see its cases, else ""."""
    who = principal(request)
    node = current_node(request)
    if who is None or not kernel_of(request).authz.allowed(who.grants, "cases.view", node.path if node else None):
        return ""
    return _path(request, "dashboard", node=code)


def _collection(features: list[dict[str, Any]], **extra: Any) -> JSONResponse:
    return JSONResponse({"type": "FeatureCollection", "features": features, **extra},
                        media_type="application/geo+json", headers={"Cache-Control": "no-store"})  # fmt: skip


@requires("grid.view")
def nodes_geojson(request: Request) -> Response:
    """The node's outline (``role: "self"``) and its children's, inside the user's scope, each
    with its open cases when the user may count them."""
    kernel = kernel_of(request)
    node = _node(request)
    who = principal(request)
    assert who is not None
    gcj = kernel.settings.map.tile_crs == "gcj02"
    scope = kernel.authz.scope_filter(who.grants, "grid.view", T.c.path)
    counts = _may(request, "cases.view", node.path)
    with kernel.db.read() as s:
        conn = s.connection()
        own = conn.execute(select(*_NODE_COLUMNS).where(T.c.id == node.id, scope)).all()
        kids = conn.execute(
            select(*_NODE_COLUMNS).where(T.c.parent_id == node.id, scope).order_by(T.c.code).limit(MAX_NODES)
        ).all()
        open_by_id: dict[int, int] = {}
        if counts:
            open_by_id = {n.id: _open_count(kernel, c) for n, c in stats.children(s, CASE_STATES, node.id)}
            if own:
                open_by_id[node.id] = _open_count(kernel, stats.by_key(s, CASE_STATES, node.id))
    features = []
    for role, rows in (("self", own), ("child", kids)):
        for r in rows:
            props: dict[str, Any] = {
                "code": r.code, "name": r.name, "level": Level(r.level).label, "kind": r.kind,
                "role": role, "children": r.child_count, "grids": r.grid_count,
                "open": open_by_id.get(r.id) if counts else None,
                "panel": _path(request, "grid:map_panel", node=r.code),
                "map": _path(request, "grid:map", node=r.code) if r.child_count else "",
            }  # fmt: skip
            geometry = _geometry(r.geometry, gcj)
            if geometry is None and r.lat is not None and r.lon is not None:
                geometry = {"type": "Point", "coordinates": _shift([r.lon, r.lat], gcj)}
            features.append({"type": "Feature", "id": r.code, "geometry": geometry, "properties": props})
    return _collection(features, node=node.code)


@requires("cases.view")
def cases_geojson(request: Request) -> Response:
    """Pins of the cases occurring in the node's subtree that the user may see: open ones by
    default (``state=open``), ``state=all``, or one state by name; at most ``map.max_pins``."""
    kernel = kernel_of(request)
    node = _node(request)
    who = principal(request)
    assert who is not None
    titles = state_titles(kernel)
    state = request.query_params.get("state", "open").strip() or "open"
    conds = [view_scope(kernel, who.grants, who.user_id), within(CASE.c.node_path, node.path),
             CASE.c.lat.is_not(None), CASE.c.lon.is_not(None)]  # fmt: skip
    if state == "open":
        conds.append(CASE.c.state.not_in(sorted(_terminal(kernel))))
    elif state in titles:
        conds.append(CASE.c.state == state)
    elif state != "all":
        raise ValidationError(f"未知的事件状态: {state}（可用 open、all 或状态名）")
    limit = kernel.settings.map.max_pins
    gcj = kernel.settings.map.tile_crs == "gcj02"
    with kernel.db.read() as s:
        rows = s.execute(
            select(CASE.c.id, CASE.c.title, CASE.c.case_type, CASE.c.state, CASE.c.lat, CASE.c.lon)
            .where(and_(*conds)).order_by(CASE.c.id.desc()).limit(limit + 1)
        ).all()  # fmt: skip
    truncated = len(rows) > limit
    types = kernel.cases.types
    features = [
        {
            "type": "Feature",
            "id": r.id,
            "geometry": {"type": "Point", "coordinates": _shift([round(r.lon, 6), round(r.lat, 6)], gcj)},
            "properties": {
                "title": r.title,
                "type": types[r.case_type].title if r.case_type in types else r.case_type,
                "state": titles.get(r.state, r.state),
                "panel": _path(request, "grid:map_case", case_id=r.id),
            },
        }
        for r in rows[:limit]
    ]
    extra: dict[str, Any] = {"node": node.code, "truncated": truncated}
    if truncated:
        extra["note"] = f"事件过多，只显示最新的 {limit} 件——请放大到下级区域查看"
    return _collection(features, **extra)


# --- side panel ---------------------------------------------------------------------------------


@requires("grid.view")
def node_panel(request: Request) -> Response:
    """The side panel of a clicked outline: the node's numbers and where to go from there."""
    kernel = kernel_of(request)
    node = _node(request)
    with kernel.db.read() as s:
        cases_here = _may(request, "cases.view", node.path)
        open_here = _open_count(kernel, stats.by_key(s, CASE_STATES, node.id)) if cases_here else None
    return _fragment(request, "grid/_map_node.html", {
        "n": node, "level_label": Level(node.level).label, "cases_here": cases_here, "open_here": open_here,
        "dashboard": _dashboard(request, node.code),
    })  # fmt: skip


@requires("cases.view")
def case_panel(request: Request) -> Response:
    """The side panel of a clicked pin: the case's title, type, state and a link to it."""
    kernel = kernel_of(request)
    case_id = int(request.path_params["case_id"])
    with kernel.db.read() as s:
        case = visible_case(kernel, s, doer_of(request), case_id)
        place = s.execute(select(T.c.name, T.c.code).where(T.c.id == case.node_id)).first()
    types = kernel.cases.types
    return _fragment(request, "grid/_map_case.html", {
        "case": case,
        "type_title": types[case.case_type].title if case.case_type in types else case.case_type,
        "state_title": state_titles(kernel).get(case.state, case.state),
        "place": place,
        "created": forms.local(case.created_at),
    })  # fmt: skip


def _fragment(request: Request, name: str, context: dict[str, Any]) -> Response:
    kernel = kernel_of(request)
    html = kernel.templates.render_fragment(name, {"request": request, **context})
    return Response(html, media_type="text/html; charset=utf-8", headers={"Vary": "HX-Request"})


def routes() -> list[BaseRoute]:
    return [
        Route("/grid/map", map_page, name="grid:map"),
        Route("/grid/map/nodes.geojson", nodes_geojson, name="grid:map_nodes"),
        Route("/grid/map/cases.geojson", cases_geojson, name="grid:map_cases"),
        Route("/grid/map/panel", node_panel, name="grid:map_panel"),
        Route("/grid/map/case/{case_id:int}", case_panel, name="grid:map_case"),
    ]
