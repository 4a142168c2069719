"""The phone JSON API: device-bound tokens, reporting with photos, GPS and an idempotency key,
duplicate suggestion, my tasks, acting with conflict detection, timeline, OpenAPI document."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image
from starlette.routing import Route

from yiwang.testing import PASSWORD

GRID = "45010700100101"
GRID2 = "45010700100102"
COMMUNITY = "450107001001"


@pytest.fixture
def phone(client: Any, users: Any, grid: Any) -> Any:
    grid.node(GRID2)
    grid.org(grid.node(COMMUNITY), "人民社区网格工作站", kind="station")
    grid.org(grid.get("450107001"), "民生街道综治中心")

    def sign_in(role: str, node: str) -> dict[str, str]:
        user = users.make(role, node)
        r = client.post("/api/auth/login", json={"username": user.username, "password": PASSWORD,
                                                  "device_id": f"dev-{user.username}"})  # fmt: skip
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    return sign_in


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(out, "JPEG")
    return out.getvalue()


REPORT = {"case_type": "public_facility", "title": "路灯不亮", "node_code": GRID, "description": "三盏路灯不亮",
          "lat": 22.8170, "lon": 108.3665, "coord": "gcj02"}  # fmt: skip


def test_report_with_photo_and_idempotency_key(client: Any, phone: Any) -> None:
    worker = phone("grid_worker", GRID)
    headers = {**worker, "Idempotency-Key": "phone-123"}
    data = {k: str(v) for k, v in REPORT.items()}
    answers = [
        client.post(
            "/api/cases",
            headers=headers,
            data=data,
            files={"files": ("现场.jpg", _jpeg(), "image/jpeg")},
        )
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 200, 200]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    case = answers[0].json()
    assert case["state"] == "reported" and case["org"]["name"] == "人民社区网格工作站"
    assert abs(case["lat"] - 22.8170) > 1e-4  # converted from GCJ-02
    [photo] = case["files"]
    got = client.get(photo["url"], headers=worker)
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-content-type-options"] == "nosniff"


def test_duplicate_suggestion_then_confirm(client: Any, phone: Any) -> None:
    worker = phone("grid_worker", GRID)
    first = client.post("/api/cases", headers=worker, json=REPORT)
    assert first.status_code == 201
    again = client.post("/api/cases", headers=worker, json=REPORT | {"title": "路灯坏了"})
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "similar_cases" and "同类事件" in error["message"]
    assert [c["id"] for c in error["candidates"]] == [first.json()["id"]]
    nearby = client.get("/api/cases/similar", headers=worker,
                        params={"case_type": "public_facility", "lat": 22.8170, "lon": 108.3665, "coord": "gcj02"})  # fmt: skip
    assert [c["id"] for c in nearby.json()["candidates"]] == [first.json()["id"]]
    forced = client.post(
        "/api/cases", headers=worker, json=REPORT | {"title": "路灯坏了", "confirm_new": True}
    )
    assert forced.status_code == 201 and forced.json()["id"] != first.json()["id"]


def test_errors_are_json_with_chinese_problems(client: Any, phone: Any) -> None:
    worker = phone("grid_worker", GRID)
    r = client.post(
        "/api/cases", headers=worker, json={"case_type": "nope", "title": "", "node_code": GRID}
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["message"] == "上报信息有误"
    assert "请填写标题" in error["problems"] and "事件类型无效: nope" in error["problems"]
    assert client.get("/api/cases").status_code == 401
    assert client.get("/api/cases?tab=bogus", headers=worker).json()["error"]["code"] == 422


def test_tasks_act_conflict_and_timeline(client: Any, phone: Any) -> None:
    worker = phone("grid_worker", GRID)
    station = phone("community_staff", COMMUNITY)
    case = client.post("/api/cases", headers=worker, json=REPORT).json()
    todo = client.get("/api/cases", headers=station, params={"tab": "todo"}).json()
    assert [c["id"] for c in todo["items"]] == [case["id"]]
    detail = client.get(f"/api/cases/{case['id']}", headers=station).json()
    assert {"accept", "reject"} <= {a["name"] for a in detail["actions"]}
    ok = client.post(
        f"/api/cases/{case['id']}/actions/accept",
        headers=station,
        json={"version": detail["version"]},
    )
    assert ok.status_code == 200 and ok.json()["case"]["state"] == "accepted"
    stale = client.post(f"/api/cases/{case['id']}/actions/reject", headers=station,
                        json={"version": detail["version"], "opinion": "重复"})  # fmt: skip
    assert stale.status_code == 409 and "已被他人处理" in stale.json()["error"]["message"]
    missing = client.post(f"/api/cases/{case['id']}/actions/accept", headers=station, json={})
    assert missing.status_code == 422 and "version" in missing.json()["error"]["problems"][0]
    # Assign to the grid worker: it shows up in their tasks.
    fresh = client.get(f"/api/cases/{case['id']}", headers=station).json()
    worker_id = client.get("/api/me", headers=worker).json()["id"]
    assigned = client.post(f"/api/cases/{case['id']}/actions/dispatch", headers=station,
                           json={"version": fresh["version"], "assignee": worker_id})  # fmt: skip
    assert assigned.status_code == 200, assigned.text
    tasks = client.get("/api/cases", headers=worker).json()
    assert [c["id"] for c in tasks["items"]] == [case["id"]]
    steps = client.get(f"/api/cases/{case['id']}/timeline", headers=worker).json()["steps"]
    assert [s["action"] for s in steps] == ["report", "accept", "dispatch"]


def test_scope_other_grid_worker_cannot_see(client: Any, phone: Any) -> None:
    worker = phone("grid_worker", GRID)
    other = phone("grid_worker", GRID2)
    case = client.post("/api/cases", headers=worker, json=REPORT).json()
    assert client.get(f"/api/cases/{case['id']}", headers=other).status_code == 403
    assert client.get("/api/cases", headers=other, params={"tab": "all"}).json()["total"] == 0
    assert client.get(f"/api/cases/{case['id']}/timeline", headers=other).status_code == 403


def test_openapi_document_is_valid_and_covers_every_api_route(app: Any, client: Any) -> None:
    from openapi_spec_validator import validate

    doc = client.get("/api/openapi.json").json()
    validate(doc)
    documented = {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops}
    served = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            path = route.path.replace(":int", "")
            served |= {(path, m) for m in (route.methods or ()) if m != "HEAD"}
    assert served == documented
    assert json.dumps(doc, ensure_ascii=False).count("已被他人处理") >= 1
