"""楼栋 on the grid map: the plugin's map layer (``yiwang_map_layers``) and its scoped GeoJSON."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from sqlalchemy import select, update

from yiwang.api import Node, outline_contains

from yiwang_population import hooks, service
from yiwang_population.geo import place_demo_buildings
from yiwang_population.models import Building, Person

pytestmark = pytest.mark.with_plugins("population")

OWN_GRID = "45010700100101"
OWN_COMMUNITY = "450107001001"
NEIGHBOUR_GRID = "45010700100201"  # another community of the same township
NEIGHBOUR = "450107001002"
OUTLINE = '{"type":"Polygon","coordinates":[[[108.3,22.8],[108.31,22.8],[108.31,22.81],[108.3,22.81],[108.3,22.8]]]}'


def _id(seq: str) -> str:
    body = "450107" + "19850101" + seq
    return body + hooks.checksum(body)


@pytest.fixture
def buildings(kernel: Any, grid: Any) -> dict[str, int]:
    own, other = grid.node(OWN_GRID), grid.node(NEIGHBOUR_GRID)
    with kernel.db.write() as s:
        g = s.get(Node, own.id)
        b = service.add_building(s, g, "民主路8号", name="3栋", lat=22.805, lon=108.305)
        h = service.add_house(s, b, "101")
        for i, name in enumerate(("覃秀英", "韦建国")):
            reg = service.register(s, g, name=name, id_number=_id(f"12{i}"))
            service.move_in(s, s.get(Person, reg.person.id), h)
        service.add_building(s, g, "民主路10号")  # no coordinates: not on the map
        o = service.add_building(s, s.get(Node, other.id), "外社区路1号", lat=22.81, lon=108.33)
        return {"own": int(b.id or 0), "other": int(o.id or 0)}


def _layers(page: str) -> list[dict[str, Any]]:
    found = re.search(r'data-layers="([^"]*)"', page)
    assert found
    return list(json.loads(html.unescape(found.group(1))))


def test_the_map_offers_the_buildings_layer_where_population_is_active(
    client: Any, login: Any, kernel: Any, grid: Any, buildings: Any
) -> None:
    login("community_staff", OWN_COMMUNITY)
    layers = _layers(client.get(f"/grid/map?node={OWN_COMMUNITY}").text)
    assert layers == [{"name": "population.buildings", "title": "楼栋", "kind": "points",
                       "url": "/p/population/api/buildings.geojson"}]  # fmt: skip
    kernel.activation.set("population", grid.get("450107"), False)
    assert _layers(client.get(f"/grid/map?node={OWN_COMMUNITY}").text) == []


def test_the_layer_needs_population_view(client: Any, login: Any, buildings: Any) -> None:
    login("dept_handler", "450107")  # sees the net, not the population registers
    assert _layers(client.get("/grid/map?node=450107").text) == []
    assert client.get("/p/population/api/buildings.geojson?node=450107").status_code == 403


def test_buildings_are_scoped_counted_and_carry_no_person(client: Any, login: Any, buildings: Any) -> None:
    login("community_staff", OWN_COMMUNITY)
    r = client.get(f"/p/population/api/buildings.geojson?node={OWN_COMMUNITY}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["truncated"] is False
    [feature] = body["features"]
    assert feature["id"] == buildings["own"]
    assert feature["geometry"] == {"type": "Point", "coordinates": [108.305, 22.805]}
    props = feature["properties"]
    assert props["residents"] == 2 and props["title"] == "民主路8号3栋"
    assert props["href"] == f"/p/population/buildings/{buildings['own']}"
    assert "覃秀英" not in r.text and "韦建国" not in r.text and "1985" not in r.text
    # Without a node: the user's jurisdiction; a neighbour's subtree: refused.
    assert [f["id"] for f in client.get("/p/population/api/buildings.geojson").json()["features"]] == [buildings["own"]]
    foreign = client.get(f"/p/population/api/buildings.geojson?node={NEIGHBOUR}")
    assert foreign.status_code == 403 and "外社区路" not in foreign.text


def test_township_staff_see_both_communities(client: Any, login: Any, buildings: Any) -> None:
    login("township_staff", "450107001")
    got = client.get("/p/population/api/buildings.geojson?node=450107001").json()
    assert {f["id"] for f in got["features"]} == {buildings["own"], buildings["other"]}


def test_demo_buildings_are_placed_inside_their_grids(kernel: Any, grid: Any) -> None:
    g = grid.node(OWN_GRID)
    with kernel.db.write() as s:
        s.execute(update(Node).where(Node.id == g.id).values(geometry=OUTLINE))  # type: ignore[arg-type]
        node = s.get(Node, g.id)
        for i in range(5):
            service.add_building(s, node, f"演示路{i}号")
        assert place_demo_buildings(s, seed=1) == 5
    with kernel.db.read() as s:
        spots = s.execute(select(Building.lat, Building.lon)).all()  # type: ignore[call-overload]
    assert len(spots) == 5
    assert all(outline_contains(OUTLINE, lon, lat) for lat, lon in spots)


def test_buildings_follow_gcj02_tiles(client: Any, login: Any, kernel: Any, buildings: Any) -> None:
    from dataclasses import replace

    from yiwang.api import wgs84_to_gcj02

    kernel.settings = replace(kernel.settings, map=replace(kernel.settings.map, tile_url="/t/{z}/{x}/{y}.png",
                                                           tile_crs="gcj02"))  # fmt: skip
    login("community_staff", OWN_COMMUNITY)
    [feature] = client.get("/p/population/api/buildings.geojson").json()["features"]
    lat, lon = wgs84_to_gcj02(22.805, 108.305)
    assert feature["geometry"]["coordinates"] == [round(lon, 6), round(lat, 6)]
