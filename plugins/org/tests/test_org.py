"""Workers, patrols and coverage: scope isolation, the phone API, GCJ-02, masking, moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from yiwang import api as geo
from yiwang.api import Node, ValidationError

from yiwang_org import service
from yiwang_org.models import GridAssignment, Patrol, PatrolPoint, Staff, Worker

pytestmark = pytest.mark.with_plugins("org")

OWN_GRID = "45010700100101"
OTHER_GRID = "45010800100101"
PHONE = "13912345678"


def _worker(
    kernel: Any, grid: Any, code: str, name: str, user_id: int | None = None, phone: str = PHONE
) -> Worker:
    g = grid.node(code)
    community = grid.get(code[:12])
    with kernel.db.write() as s:
        return service.add_worker(
            s, s.get(Node, community.id), name, phone, [s.get(Node, g.id)], user_id=user_id
        )


def _patrol(
    kernel: Any, worker: Worker, code: str, grid: Any, at: datetime | None = None
) -> Patrol:
    with kernel.db.write() as s:
        w = s.get(Worker, worker.id)
        return service.start_patrol(s, w, s.get(Node, grid.get(code).id), at=at)


# --- GCJ-02 -----------------------------------------------------------------------------------


def test_gcj02_conversion_is_accurate_to_a_few_metres() -> None:
    # 天安门 (WGS-84 39.907375, 116.391349) and its published GCJ-02 position (39.908775, 116.397590)
    lat, lon = geo.gcj02_to_wgs84(39.908775, 116.397590)
    assert geo.distance_m(lat, lon, 39.907375, 116.391349) < 5
    # the inverse of the forward formula is exact to centimetres everywhere in China
    for wlat, wlon in ((22.8170, 108.3665), (45.75, 126.63), (18.25, 109.5), (39.9, 116.4)):
        g = geo.wgs84_to_gcj02(wlat, wlon)
        assert geo.distance_m(wlat, wlon, *g) > 50  # the offset is real
        assert geo.distance_m(wlat, wlon, *geo.gcj02_to_wgs84(*g)) < 0.05
    assert geo.gcj02_to_wgs84(48.85, 2.35) == (48.85, 2.35)  # outside China: unchanged


def test_points_are_validated_and_gcj02_converted() -> None:
    [p] = service.parse_points(
        [{"lat": 39.908775, "lon": 116.397590, "at": "2026-11-25T08:00:00+08:00"}], "gcj02"
    )
    assert geo.distance_m(p.lat, p.lon, 39.907375, 116.391349) < 5
    assert p.at == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    with pytest.raises(ValidationError) as err:
        service.parse_points([{"lat": 95, "lon": 1}, {"lon": 1}], "wgs84")
    assert "第 1 个点坐标超出范围" in str(err.value) and "第 2 个点格式不正确" in str(err.value)
    with pytest.raises(ValidationError):
        service.parse_points([{"lat": 1, "lon": 1}], "bd09")


# --- coverage and staffing --------------------------------------------------------------------


def test_coverage_counts_todays_patrols_and_flags_staffing(kernel: Any, grid: Any) -> None:
    from sqlalchemy import true

    w1 = _worker(kernel, grid, OWN_GRID, "甲一")
    _worker(kernel, grid, OWN_GRID, "甲二")
    lone = _worker(kernel, grid, "45010700100102", "乙一")
    _patrol(kernel, w1, OWN_GRID, grid)
    _patrol(kernel, w1, OWN_GRID, grid)
    _patrol(kernel, lone, "45010700100102", grid)
    _patrol(
        kernel, lone, "45010700100102", grid, at=datetime.now(UTC) - timedelta(days=2)
    )  # not today
    with kernel.db.read() as s:
        rows = {r.code: r for r in service.coverage(s, grid.get("450107").path, true(), true())}
    assert (rows[OWN_GRID].patrols, rows[OWN_GRID].under, rows[OWN_GRID].staffing_off) == (
        2,
        False,
        False,
    )
    assert (rows["45010700100102"].patrols, rows["45010700100102"].under) == (1, True)
    assert rows["45010700100102"].staffing_off  # one worker: outside 2–3, warned, not refused


def test_a_patrol_needs_an_assigned_grid(kernel: Any, grid: Any) -> None:
    w = _worker(kernel, grid, OWN_GRID, "甲一")
    grid.node("45010700100102")
    with pytest.raises(ValidationError, match="不是该网格员负责的网格"):
        _patrol(kernel, w, "45010700100102", grid)
    with pytest.raises(ValidationError, match="不是网格"), kernel.db.write() as s:
        service.add_worker(
            s, s.get(Node, grid.get("450107").id), "丙", None, [s.get(Node, grid.get("450107").id)]
        )


# --- pages: scope and masking -----------------------------------------------------------------


def test_pages_mask_phones_and_stay_in_the_county(
    client: Any, kernel: Any, grid: Any, login: Any
) -> None:
    own = _worker(kernel, grid, OWN_GRID, "本县网格员")
    other = _worker(kernel, grid, OTHER_GRID, "外县网格员")
    _patrol(kernel, other, OTHER_GRID, grid)
    org = grid.org(grid.get("450107"), "西乡塘区综治中心")
    with kernel.db.write() as s:
        service.add_staff(s, org, "综治主任", "13800001111", "主任")
    login("county_staff", "450107")
    page = client.get("/p/org/")
    assert page.status_code == 200
    assert "本县网格员" in page.text and "外县网格员" not in page.text and "综治主任" in page.text
    assert PHONE not in page.text and "139****5678" in page.text and "138****1111" in page.text
    detail = client.get(f"/p/org/workers/{own.id}")
    assert detail.status_code == 200 and PHONE not in detail.text and "139****5678" in detail.text
    # another county's worker, by id in the path and with the node in the query
    assert client.get(f"/p/org/workers/{other.id}").status_code == 403
    assert client.get(f"/p/org/workers/{other.id}?node=450108").status_code == 403
    assert client.get("/p/org/?node=450108").status_code == 403
    cover = client.get("/p/org/coverage")
    assert cover.status_code == 200 and OWN_GRID in cover.text and OTHER_GRID not in cover.text
    assert "未达标" in cover.text and "配备异常" in cover.text


# --- the phone API ----------------------------------------------------------------------------


def _token(client: Any, username: str) -> dict[str, str]:
    from yiwang.testing import PASSWORD

    r = client.post(
        "/api/auth/login", json={"username": username, "password": PASSWORD, "device_id": "phone-1"}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}", "Accept": "application/json"}


def test_patrol_api_flow_with_a_bearer_token(app: Any, kernel: Any, grid: Any, users: Any) -> None:
    from starlette.testclient import TestClient

    user = users.make("grid_worker", OWN_GRID)
    _worker(kernel, grid, OWN_GRID, "打卡员", user_id=user.id)
    with TestClient(app) as phone:  # no cookies: the token alone authenticates, no CSRF needed
        auth = _token(phone, user.username)
        started = phone.post("/p/org/api/patrols", json={"grid": OWN_GRID}, headers=auth)
        assert started.status_code == 201, started.text
        pid = started.json()["id"]
        pts = [
            {"lat": 22.8170 + i * 1e-4, "lon": 108.3665, "at": datetime.now(UTC).isoformat()}
            for i in range(3)
        ]
        added = phone.post(
            f"/p/org/api/patrols/{pid}/points", json={"points": pts, "coord": "gcj02"}, headers=auth
        )
        assert added.status_code == 200 and added.json()["points"] == 3, added.text
        bad = phone.post(
            f"/p/org/api/patrols/{pid}/points", json={"points": [{"lat": "x"}]}, headers=auth
        )
        assert bad.status_code == 422 and "格式不正确" in bad.text
        done = phone.post(f"/p/org/api/patrols/{pid}/finish", headers=auth)
        assert done.status_code == 200 and done.json()["ended_at"]
        late = phone.post(f"/p/org/api/patrols/{pid}/points", json={"points": pts}, headers=auth)
        assert late.status_code == 409
        assert phone.post(
            "/p/org/api/patrols", headers={"Accept": "application/json"}, json={}
        ).status_code == 401  # no token: refused as an API call
    with kernel.db.read() as s:
        points = list(s.scalars(select(PatrolPoint).where(PatrolPoint.patrol_id == pid)))
    from yiwang.testing import audit_entries

    actions = {e.action for e in audit_entries(kernel, action="org.patrol.start")}
    assert len(points) == 3 and {p.source for p in points} == {"gcj02"}
    assert (
        geo.distance_m(points[0].lat, points[0].lon, 22.8170, 108.3665) > 50
    )  # converted to WGS-84
    assert actions == {"org.patrol.start"}


def test_patrol_api_refuses_foreign_grids_and_patrols(
    app: Any, kernel: Any, grid: Any, users: Any
) -> None:
    from starlette.testclient import TestClient

    user = users.make("grid_worker", OWN_GRID)
    _worker(kernel, grid, OWN_GRID, "打卡员", user_id=user.id)
    foreign_user = users.make("grid_worker", OTHER_GRID)
    foreign = _worker(kernel, grid, OTHER_GRID, "外县员", user_id=foreign_user.id)
    foreign_patrol = _patrol(kernel, foreign, OTHER_GRID, grid)
    with TestClient(app) as phone:
        auth = _token(phone, user.username)
        assert (
            phone.post("/p/org/api/patrols", json={"grid": OTHER_GRID}, headers=auth).status_code
            == 403
        )
        pts = {"points": [{"lat": 22.8, "lon": 108.3}]}
        assert (
            phone.post(
                f"/p/org/api/patrols/{foreign_patrol.id}/points", json=pts, headers=auth
            ).status_code
            == 403
        )
        assert (
            phone.post(f"/p/org/api/patrols/{foreign_patrol.id}/finish", headers=auth).status_code
            == 403
        )
        assert phone.post("/p/org/api/patrols/999999/finish", headers=auth).status_code == 404
    with kernel.db.read() as s:
        p = s.get(Patrol, foreign_patrol.id)
    assert p is not None and p.ended_at is None and p.point_count == 0


# --- moves ------------------------------------------------------------------------------------


def test_moving_a_subtree_moves_every_path_copy(kernel: Any, grid: Any) -> None:
    w = _worker(kernel, grid, OWN_GRID, "甲一")
    _patrol(kernel, w, OWN_GRID, grid)
    org = grid.org(grid.get("450107"), "综治中心")
    with kernel.db.write() as s:
        service.add_staff(s, org, "某人")
        service.add_device(s, s.get(Worker, w.id), "860000000000001", "13900000000")
    grid.node("4502")
    moved = grid.move("450107", "4502", new_code="450207")
    new_grid = grid.get("45020700100101")
    with kernel.db.read() as s:
        assert s.get(Worker, w.id).node_path == grid.get("450207001001").path
        assert {a.node_path for a in s.scalars(select(GridAssignment))} == {new_grid.path}
        assert {p.node_path for p in s.scalars(select(Patrol))} == {new_grid.path}
        assert {m.node_path for m in s.scalars(select(Staff))} == {moved.path}
        assert (
            service.workers_within(s, grid.get("4501").path, __import__("sqlalchemy").true()) == []
        )


def test_demo_is_deterministic_and_within_the_norm(kernel: Any, grid: Any) -> None:
    from yiwang_org import hooks

    for code in (OWN_GRID, "45010700100102", OTHER_GRID):
        grid.node(code)
    with kernel.db.write() as s:
        hooks.yiwang_demo(kernel, s, "small", 7)
    with kernel.db.read() as s:
        names = [w.name for w in s.scalars(select(Worker).order_by(Worker.id))]
        rows = service.coverage(
            s, grid.get("45").path, __import__("sqlalchemy").true(), __import__("sqlalchemy").true()
        )
    assert all(2 <= r.workers <= 3 for r in rows) and len(rows) == 3
    import random

    rng = random.Random(7)
    rng.choice((2, 2, 3))  # the demo first draws the first grid's number of workers
    assert names[0] == hooks._fake_name(rng)


def test_a_patrol_finding_becomes_a_case_in_one_tap(app: Any, kernel: Any, grid: Any, users: Any) -> None:
    from starlette.testclient import TestClient

    user = users.make("grid_worker", OWN_GRID)
    other = users.make("grid_worker", OWN_GRID)
    _worker(kernel, grid, OWN_GRID, "巡查员", user_id=user.id)
    _worker(kernel, grid, OWN_GRID, "另一名网格员", user_id=other.id)
    with TestClient(app) as phone:
        auth = _token(phone, user.username)
        pid = phone.post("/p/org/api/patrols", json={"grid": OWN_GRID}, headers=auth).json()["id"]
        tap = {"case_type": "safety_hazard", "title": "楼道堆放杂物", "lat": 22.8170, "lon": 108.3665,
               "coord": "gcj02", "client_id": "tap-1"}  # fmt: skip
        first = phone.post(f"/p/org/api/patrols/{pid}/findings", json=tap, headers=auth)
        assert first.status_code == 201, first.text
        again = phone.post(f"/p/org/api/patrols/{pid}/findings", json=tap, headers=auth)
        assert again.status_code == 200 and again.json()["case_id"] == first.json()["case_id"]
        case = phone.get(f"/api/cases/{first.json()['case_id']}", headers=auth).json()
        assert case["state"] == "reported" and case["node"]["code"] == OWN_GRID
        assert f"巡查 #{pid}" in case["description"]
        bad = phone.post(f"/p/org/api/patrols/{pid}/findings", json={"case_type": "x", "title": ""}, headers=auth)
        assert bad.status_code == 422 and "请填写标题" in bad.json()["error"]["problems"]
        # Someone else's patrol: refused.
        auth2 = _token(phone, other.username)
        assert phone.post(f"/p/org/api/patrols/{pid}/findings", json=tap | {"client_id": "x"},
                          headers=auth2).status_code == 403  # fmt: skip
