"""The grid map (网格地图): its page, its GeoJSON routes scoped to the user, the pin limit, the
tile setting, plugins' layers, and the demo net's synthetic outlines."""

from __future__ import annotations

import json
import types
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select, update

from yiwang.api import MapLayer, PluginSpec, Scope, hookimpl
from yiwang.cases.models import Case
from yiwang.errors import SettingsError
from yiwang.grid import shapes
from yiwang.grid.data import guangxi
from yiwang.grid.demo import build_demo_net, outline, plan
from yiwang.grid.levels import Level
from yiwang.grid.models import Node
from yiwang.settings import MapSettings, load_settings
from yiwang.testing.cases import COMMUNITY, COUNTY, GRID, GRID2, TOWNSHIP

OTHER = "450107001002"  # a second community of the same township
OTHER_GRID = OTHER + "01"


def _square(x: float, y: float, d: float = 0.01) -> str:
    return shapes.polygon_json([(x, y), (x + d, y), (x + d, y + d), (x, y + d)])


@pytest.fixture
def mapped(kernel: Any, grid: Any, case_net: Any) -> Any:
    """The case net with outlines: the community west, a second community east, a case in
    each of the first community's grids and one in the second community."""
    grid.node(OTHER_GRID, "东边第1网格")
    boxes = {
        TOWNSHIP: _square(108.30, 22.80, 0.04), COMMUNITY: _square(108.30, 22.80, 0.02),
        GRID: _square(108.30, 22.80), GRID2: _square(108.31, 22.80),
        OTHER: _square(108.32, 22.80, 0.02), OTHER_GRID: _square(108.32, 22.80, 0.02),
    }  # fmt: skip
    with kernel.db.write() as s:
        for code, geo in boxes.items():
            s.execute(update(Node).where(Node.code == code).values(geometry=geo))  # type: ignore[arg-type]
        other_grid = s.execute(select(Node.id).where(Node.code == OTHER_GRID)).scalar_one()  # type: ignore[call-overload]
    case_net.mine = case_net.report("worker", title="井盖缺失", lat=22.805, lon=108.305)
    case_net.mine2 = case_net.report("worker2", title="路灯不亮", node_id=case_net.nodes[GRID2].id, lat=22.805, lon=108.315)
    case_net.theirs = case_net.report(
        "township", title="东边的事件", node_id=other_grid, lat=22.81, lon=108.33,
        reporter_name="韦秀英", reporter_phone="13907710000",
    )  # fmt: skip
    return case_net


def _as(client: Any, users: Any, net: Any, who: str) -> Any:
    assert users.login(client, net.users[who].username).status_code in (200, 303)
    return client


def _features(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection"
    for f in body["features"]:
        assert f["type"] == "Feature" and "properties" in f
        assert f["geometry"] is None or f["geometry"]["type"] in ("Polygon", "MultiPolygon", "Point")
    return list(body["features"])


# --- the page --------------------------------------------------------------------------------------


def test_map_page_lists_the_children_with_open_cases_linked_to_the_case_list(client: Any, users: Any, mapped: Any) -> None:
    page = _as(client, users, mapped, "township").get(f"/grid/map?node={TOWNSHIP}")
    assert page.status_code == 200
    html = page.text
    assert 'data-widget="map"' in html and "js/map.js" in html and "markercluster.js" in html
    assert "MarkerCluster.css" in html and "leaflet.css" in html
    assert f"/grid/map/nodes.geojson?node={TOWNSHIP}" in html
    assert f"/grid/map/cases.geojson?node={TOWNSHIP}&amp;state=open" in html
    # The table says what the map shows: each community with its open cases, linked.
    assert "人民社区" in html or COMMUNITY in html
    assert f'/cases/?tab=all&amp;state=open&amp;area={COMMUNITY}">2</a>' in html
    assert f'/cases/?tab=all&amp;state=open&amp;area={OTHER}">1</a>' in html
    assert "data-tile-url" not in html  # no basemap unless configured


def test_map_page_of_a_node_outside_the_users_subtree_is_refused(client: Any, users: Any, mapped: Any) -> None:
    c = _as(client, users, mapped, "station")
    assert c.get(f"/grid/map?node={OTHER}").status_code == 403
    assert c.get(f"/grid/map?node={TOWNSHIP}").status_code == 403
    own = c.get("/grid/map")  # no node: the user's jurisdiction
    assert own.status_code == 200 and f"nodes.geojson?node={COMMUNITY}" in own.text


def test_tile_layer_appears_only_when_configured(client: Any, users: Any, kernel: Any, mapped: Any) -> None:
    c = _as(client, users, mapped, "station")
    assert "data-tile-url" not in c.get("/grid/map").text
    kernel.settings = replace(kernel.settings, map=MapSettings(
        tile_url="https://tiles.example.gov.cn/{z}/{x}/{y}.png", attribution="某市测绘院"))  # fmt: skip
    html = c.get("/grid/map").text
    assert 'data-tile-url="https://tiles.example.gov.cn/{z}/{x}/{y}.png"' in html
    assert 'data-attribution="某市测绘院"' in html


def test_a_tile_server_is_allowed_in_the_content_security_policy_only_when_set(
    client: Any, users: Any, kernel: Any, mapped: Any
) -> None:
    c = _as(client, users, mapped, "station")
    assert "img-src 'self' data: blob:;" in c.get("/grid/map").headers["content-security-policy"]
    kernel.settings = replace(kernel.settings, map=MapSettings(tile_url="https://{s}.tiles.example.gov.cn/{z}/{x}/{y}.png"))
    csp = c.get("/grid/map").headers["content-security-policy"]
    assert "img-src 'self' data: blob: https://*.tiles.example.gov.cn;" in csp
    assert "script-src 'self';" in csp  # only images from there


def test_map_settings_are_validated(tmp_path: Any) -> None:
    env = {"YIWANG_HOME": str(tmp_path)}
    assert load_settings(env).map == MapSettings()
    ok = load_settings(env, overrides={"map": {"tile_url": "/tiles/{z}/{x}/{y}.png", "tile_crs": "GCJ02"}})
    assert ok.map.tile_url == "/tiles/{z}/{x}/{y}.png" and ok.map.tile_crs == "gcj02"
    for bad, word in (({"tile_url": "https://tiles.example.gov.cn/"}, "map.tile_url"),
                      ({"tile_crs": "bd09"}, "map.tile_crs"), ({"max_pins": 0}, "map.max_pins")):  # fmt: skip
        with pytest.raises(SettingsError, match=word):
            load_settings(env, overrides={"map": bad})


def test_node_page_links_to_its_map(client: Any, users: Any, mapped: Any) -> None:
    html = _as(client, users, mapped, "station").get(f"/grid/{COMMUNITY}").text
    assert f"/grid/map?node={COMMUNITY}" in html


def test_menu_has_the_grid_map(client: Any, users: Any, mapped: Any) -> None:
    html = _as(client, users, mapped, "station").get("/grid/map").text
    assert 'href="/grid/map"' in html and "网格地图" in html


# --- GeoJSON -----------------------------------------------------------------------------------


def test_node_outlines_are_the_node_and_its_children_in_scope(client: Any, users: Any, mapped: Any) -> None:
    c = _as(client, users, mapped, "township")
    feats = _features(c.get(f"/grid/map/nodes.geojson?node={TOWNSHIP}"))
    by_code = {f["id"]: f["properties"] for f in feats}
    assert set(by_code) == {TOWNSHIP, COMMUNITY, OTHER}
    assert by_code[TOWNSHIP]["role"] == "self"
    assert by_code[COMMUNITY]["open"] == 2 and by_code[OTHER]["open"] == 1
    assert by_code[COMMUNITY]["panel"] == f"/grid/map/panel?node={COMMUNITY}"
    assert all(f["geometry"]["type"] == "Polygon" for f in feats)


def test_a_community_user_never_gets_another_communitys_outlines_or_pins(client: Any, users: Any, mapped: Any) -> None:
    c = _as(client, users, mapped, "station")
    feats = _features(c.get(f"/grid/map/nodes.geojson?node={COMMUNITY}"))
    assert {f["id"] for f in feats} == {COMMUNITY, GRID, GRID2}
    for url in (f"/grid/map/nodes.geojson?node={OTHER}", f"/grid/map/cases.geojson?node={OTHER}",
                f"/grid/map/nodes.geojson?node={TOWNSHIP}", f"/grid/map/cases.geojson?node={TOWNSHIP}",
                f"/grid/map/panel?node={OTHER}", f"/grid/map/case/{mapped.theirs.id}"):  # fmt: skip
        r = c.get(url)
        assert r.status_code == 403, url
        assert "东边" not in r.text
    pins = _features(c.get(f"/grid/map/cases.geojson?node={COMMUNITY}"))
    assert {f["id"] for f in pins} == {mapped.mine.id, mapped.mine2.id}
    # Without a node: the user's own jurisdiction.
    assert {f["id"] for f in _features(c.get("/grid/map/cases.geojson"))} == {mapped.mine.id, mapped.mine2.id}


def test_case_pins_carry_title_type_and_state_only(client: Any, users: Any, mapped: Any) -> None:
    r = _as(client, users, mapped, "township").get(f"/grid/map/cases.geojson?node={TOWNSHIP}")
    pins = {f["id"]: f for f in _features(r)}
    assert set(pins) == {mapped.mine.id, mapped.mine2.id, mapped.theirs.id}
    theirs = pins[mapped.theirs.id]
    assert set(theirs["properties"]) == {"title", "type", "state", "panel"}
    assert theirs["properties"]["title"] == "东边的事件" and theirs["properties"]["state"] == "待受理"
    assert theirs["geometry"]["coordinates"] == [108.33, 22.81]
    assert "韦秀英" not in r.text and "13907710000" not in r.text
    assert r.json()["truncated"] is False


def test_open_pins_leave_out_finished_cases_and_all_brings_them(client: Any, users: Any, mapped: Any) -> None:
    mapped.act("station", mapped.mine, "reject", opinion="不属于受理范围")
    c = _as(client, users, mapped, "station")
    assert {f["id"] for f in _features(c.get(f"/grid/map/cases.geojson?node={COMMUNITY}&state=open"))} == {mapped.mine2.id}
    assert len(_features(c.get(f"/grid/map/cases.geojson?node={COMMUNITY}&state=all"))) == 2
    assert [f["id"] for f in _features(c.get(f"/grid/map/cases.geojson?node={COMMUNITY}&state=rejected"))] == [mapped.mine.id]
    bad = c.get(f"/grid/map/cases.geojson?node={COMMUNITY}&state=nonsense")
    assert bad.status_code == 422 and "未知的事件状态" in bad.text


def test_the_open_count_links_to_the_list_of_exactly_those_cases(client: Any, users: Any, mapped: Any) -> None:
    mapped.act("station", mapped.mine, "reject", opinion="不属于受理范围")
    c = _as(client, users, mapped, "township")
    assert f'/cases/?tab=all&amp;state=open&amp;area={COMMUNITY}">1</a>' in c.get(f"/grid/map?node={TOWNSHIP}").text
    listed = c.get(f"/cases/?tab=all&state=open&area={COMMUNITY}").text
    assert "路灯不亮" in listed and "井盖缺失" not in listed
    assert "井盖缺失" in c.get(f"/cases/?tab=all&area={COMMUNITY}").text


def test_pins_are_limited_with_a_note(client: Any, users: Any, kernel: Any, mapped: Any) -> None:
    kernel.settings = replace(kernel.settings, map=MapSettings(max_pins=2))
    body = _as(client, users, mapped, "township").get(f"/grid/map/cases.geojson?node={TOWNSHIP}").json()
    assert len(body["features"]) == 2 and body["truncated"] is True
    assert "放大" in body["note"]


def test_gcj02_tiles_shift_the_display_coordinates(client: Any, users: Any, kernel: Any, mapped: Any) -> None:
    from yiwang.grid.geo import wgs84_to_gcj02

    kernel.settings = replace(kernel.settings, map=MapSettings(tile_url="/t/{z}/{x}/{y}.png", tile_crs="gcj02"))
    c = _as(client, users, mapped, "station")
    pin = next(f for f in _features(c.get("/grid/map/cases.geojson")) if f["id"] == mapped.mine.id)
    lat, lon = wgs84_to_gcj02(22.805, 108.305)
    assert pin["geometry"]["coordinates"] == [round(lon, 6), round(lat, 6)]
    assert pin["geometry"]["coordinates"] != [108.305, 22.805]


def test_side_panels_summarise_and_link(client: Any, users: Any, mapped: Any) -> None:
    c = _as(client, users, mapped, "township")
    node = c.get(f"/grid/map/panel?node={COMMUNITY}")
    assert node.status_code == 200 and "<html" not in node.text
    assert f"/grid/{COMMUNITY}" in node.text and f"/cases/?tab=all&amp;state=open&amp;area={COMMUNITY}" in node.text
    assert f"/grid/map?node={COMMUNITY}" in node.text  # it has grids: the map goes down
    case = c.get(f"/grid/map/case/{mapped.theirs.id}")
    assert case.status_code == 200 and "东边的事件" in case.text
    assert f"/cases/{mapped.theirs.id}" in case.text and "韦秀英" not in case.text


def test_the_panel_links_the_dashboard_of_the_node(client: Any, users: Any, mapped: Any) -> None:
    c = _as(client, users, mapped, "township")
    assert f"/dashboard?node={COMMUNITY}" in c.get(f"/grid/map/panel?node={COMMUNITY}").text


# --- plugins' layers ---------------------------------------------------------------------------

_hooks = types.ModuleType("maplayer_hooks")  # hashable, as pluggy needs for node hooks


@hookimpl
def yiwang_map_layers(node: Any) -> list[MapLayer]:
    return [
        MapLayer("wells", "水井", "/p/maplayer/wells.geojson", kind="points"),
        MapLayer("zones", "片区", "/p/maplayer/zones.geojson", kind="polygons", permission="grid.manage"),
    ]


_hooks.yiwang_map_layers = yiwang_map_layers
LAYERED = PluginSpec(name="maplayer", version="1.0", title="地图图层", api=">=1.0,<2", hooks=_hooks,
                     scope=Scope.NODE, default_active=False)  # fmt: skip


def _layers(html: str) -> list[dict[str, Any]]:
    import html as html_lib
    import re

    found = re.search(r'data-layers="([^"]*)"', html)
    assert found
    return list(json.loads(html_lib.unescape(found.group(1))))


@pytest.mark.with_plugins(LAYERED)
def test_plugin_layers_are_offered_only_where_active_and_permitted(
    client: Any, users: Any, kernel: Any, grid: Any, mapped: Any
) -> None:
    c = _as(client, users, mapped, "township")
    assert _layers(c.get(f"/grid/map?node={TOWNSHIP}").text) == []
    kernel.activation.set("maplayer", grid.get(COUNTY), True)
    layers = _layers(c.get(f"/grid/map?node={TOWNSHIP}").text)
    # "zones" needs grid.manage, which township staff do not hold.
    assert layers == [{"name": "maplayer.wells", "title": "水井", "url": "/p/maplayer/wells.geojson", "kind": "points"}]
    admin = users.make("system_admin", COUNTY)
    assert users.login(client, admin.username).status_code in (200, 303)
    assert [la["name"] for la in _layers(client.get(f"/grid/map?node={TOWNSHIP}").text)] == ["maplayer.wells", "maplayer.zones"]


def test_map_layer_records_are_checked() -> None:
    with pytest.raises(ValueError, match="points 或 polygons"):
        MapLayer("x", "X", "/p/x.geojson", kind="lines")
    with pytest.raises(ValueError, match="以 / 开头"):
        MapLayer("x", "X", "https://elsewhere.example/x.geojson")


# --- geometry helpers and the demo's outlines --------------------------------------------------


def test_point_in_polygon_and_voronoi_cells() -> None:
    square = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    assert shapes.ring_contains(square, 0.5, 0.5) and not shapes.ring_contains(square, 1.5, 0.5)
    cells = shapes.voronoi(square, [(0.25, 0.5), (0.75, 0.5)])
    assert shapes.bbox([cells[0]]) == pytest.approx((0.0, 0.0, 0.5, 1.0))
    assert shapes.bbox([cells[1]]) == pytest.approx((0.5, 0.0, 1.0, 1.0))
    assert shapes.contains(shapes.polygon_json(square), 0.2, 0.9)
    assert not shapes.contains('{"type": "Point", "coordinates": [0, 0]}', 0, 0)
    assert shapes.rings_of("not json") == []


def _inside_bbox(child: list[shapes.Ring], parent: list[shapes.Ring]) -> bool:
    cx0, cy0, cx1, cy1 = shapes.bbox(child)
    px0, py0, px1, py1 = shapes.bbox(parent)
    return px0 <= cx0 and py0 <= cy0 and cx1 <= px1 and cy1 <= py1


def test_demo_outlines_nest_do_not_overlap_and_sit_where_the_cities_are() -> None:
    rows = outline(plan("small", 3), 3)
    assert outline(plan("small", 3), 3) == rows  # deterministic
    assert [(r.code, r.name) for r in rows] == [(r.code, r.name) for r in plan("small", 3)]
    by_code = {r.code: r for r in rows}
    siblings: dict[str | None, list[Any]] = {}
    for r in rows:
        rings = shapes.rings_of(r.geometry)
        assert rings and len(rings[0]) >= 4, r.code
        assert r.lat is not None and r.lon is not None
        assert shapes.ring_contains(rings[0], r.lon, r.lat), r.code  # the centre is inside
        siblings.setdefault(r.parent_code, []).append(r)
        if r.parent_code:
            assert _inside_bbox(rings, shapes.rings_of(by_code[r.parent_code].geometry)), r.code
    for kids in siblings.values():  # each one's centre lies in no sibling's outline
        for a in kids:
            assert not any(shapes.contains(b.geometry, a.lon, a.lat) for b in kids if b is not a), a.code
    for code, (lat, lon) in guangxi.CITY_SEATS.items():
        assert (by_code[code].lat, by_code[code].lon) == (lat, lon)
    nanning = shapes.rings_of(by_code["4501"].geometry)
    assert shapes.ring_contains(nanning[0], 108.366, 22.817)
    assert not shapes.ring_contains(nanning[0], 110.290, 25.274)  # 桂林 is not in 南宁


def test_demo_cases_fall_inside_their_grids(kernel: Any, monkeypatch: Any) -> None:
    from yiwang.cases import demo as case_demo

    monkeypatch.setitem(case_demo.COUNT, "small", 40)
    with kernel.db.write() as s:
        build_demo_net(kernel, s, scale="small", seed=5)
        made = case_demo.build_demo_cases(kernel, s, scale="small", seed=5)
    assert made == 40
    with kernel.db.read() as s:
        rows = s.execute(
            select(Case.lat, Case.lon, Node.geometry, Node.level, Node.code)  # type: ignore[call-overload]
            .join(Node, Node.id == Case.node_id)
        ).all()
        grids = s.execute(select(Node.geometry, Node.code).where(Node.level == int(Level.GRID))).all()  # type: ignore[call-overload]
    assert len(rows) == 40
    for lat, lon, geometry, level, code in rows:
        assert level == Level.GRID
        assert shapes.contains(geometry, lon, lat), (code, lat, lon)
    assert all(g.geometry for g in grids)  # every grid of the demo has an outline
