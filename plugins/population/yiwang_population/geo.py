"""楼栋 on the grid map (网格地图): the buildings of a subtree as GeoJSON points with their
address and number of current residents, for the kernel's map layer toggle
(``yiwang_map_layers``). Scoped in SQL to where the user holds ``population.view``; no person
appears in it."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from yiwang.api import (
    Level,
    MapLayer,
    Node,
    NotFound,
    current_node,
    kernel,
    point_inside,
    principal,
    read,
    require,
    requires,
    subtree_filter,
    wgs84_to_gcj02,
)

from yiwang_population.models import Building, House, Residence

#: Most buildings one answer carries; beyond it the map says to zoom in.
MAX_BUILDINGS = 5000
LAYER = MapLayer("buildings", "楼栋", "/p/population/api/buildings.geojson", kind="points",
                 permission="population.view")  # fmt: skip


@requires("population.view")
def buildings_geojson(request: Request) -> Response:
    """Buildings with coordinates in ``?node=``'s subtree (default: the user's jurisdiction)."""
    node = current_node(request)
    if node is None:
        raise NotFound("还没有区划数据")
    require(request, "population.view", node.path)
    who = principal(request)
    scope = kernel(request).authz.scope_filter(who.grants if who else (), "population.view", col(Building.node_path))
    residents = (
        select(col(House.building_id), func.count().label("n"))
        .join(Residence, col(Residence.house_id) == House.id)
        .where(col(Residence.moved_out).is_(None), subtree_filter(col(House.node_path), node.path))
        .group_by(col(House.building_id))
        .subquery()
    )
    with read(request) as s:
        rows = s.execute(
            select(Building.id, Building.name, Building.address, Building.lat, Building.lon,  # type: ignore[call-overload]
                   func.coalesce(residents.c.n, 0))
            .outerjoin(residents, residents.c.building_id == Building.id)
            .where(scope, subtree_filter(col(Building.node_path), node.path),
                   col(Building.lat).is_not(None), col(Building.lon).is_not(None))
            .order_by(col(Building.id)).limit(MAX_BUILDINGS + 1)
        ).all()  # fmt: skip
    truncated = len(rows) > MAX_BUILDINGS
    # Tiles drawn in GCJ-02 (map.tile_crs): show the stored WGS-84 points where the tiles put them.
    gcj = kernel(request).settings.map.tile_crs == "gcj02"
    features = [
        {
            "type": "Feature",
            "id": b_id,
            "geometry": {"type": "Point", "coordinates": _display(lat, lon, gcj)},
            "properties": {
                "title": f"{address}{name}" if name and name not in address else address,
                "residents": int(n),
                "lines": [f"地址：{address}", f"现居住 {int(n)} 人"],
                "href": str(request.app.url_path_for("population:building", building_id=b_id)),
            },
        }
        for b_id, name, address, lat, lon, n in rows[:MAX_BUILDINGS]
    ]
    body: dict[str, Any] = {"type": "FeatureCollection", "features": features, "node": node.code,
                            "truncated": truncated}  # fmt: skip
    if truncated:
        body["note"] = f"楼栋过多，只显示 {MAX_BUILDINGS} 栋——请放大到下级区域查看"
    return JSONResponse(body, media_type="application/geo+json", headers={"Cache-Control": "no-store"})


def _display(lat: float, lon: float, gcj: bool) -> list[float]:
    if gcj:
        lat, lon = wgs84_to_gcj02(lat, lon)
    return [round(lon, 6), round(lat, 6)]


routes = [Route("/api/buildings.geojson", buildings_geojson, name="buildings_geojson")]


def place_demo_buildings(session: Session, seed: int) -> int:
    """Give the demo's buildings without coordinates a spot inside their grid's outline."""
    rng = random.Random(f"buildings-{seed}")
    rows = session.execute(
        select(Building, Node.geometry)  # type: ignore[call-overload]
        .join(Node, col(Node.id) == Building.node_id)
        .where(col(Building.lat).is_(None), col(Node.level) == int(Level.GRID))
        .order_by(col(Building.id))
    ).all()
    placed = 0
    for building, geometry in rows:
        spot = point_inside(geometry, rng.random(), rng.random())
        if spot is not None:
            building.lat, building.lon = spot
            placed += 1
    session.flush()
    return placed
