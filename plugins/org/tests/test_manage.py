"""Edit pages of the org plugin: registering and editing grid workers (grids, 在岗/停用, phone
kept when left empty), devices and staff — Chinese errors re-rendered with nothing written,
audited, and refused outside the user's subtree."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from yiwang.api import Node, Organisation
from yiwang.testing import Users, audit_entries

from yiwang_org import service
from yiwang_org.models import Device, GridAssignment, Staff, Worker

pytestmark = pytest.mark.with_plugins("org")

OWN_GRID = "45010700100101"
OWN_GRID2 = "45010700100102"
OTHER_GRID = "45010800100101"
PHONE = "13912345678"


def _post(client: Any, kernel: Any, url: str, data: Any) -> Any:
    token = Users(kernel).csrf(client, "/p/org/")
    return client.post(url, data=data, headers={"X-CSRF-Token": token}, follow_redirects=False)


def _count(kernel: Any, model: Any) -> int:
    with kernel.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_workers_are_registered_and_edited(client: Any, kernel: Any, grid: Any, login: Any) -> None:
    for code in (OWN_GRID, OWN_GRID2, OTHER_GRID):
        grid.node(code)
    login("county_staff", "450107")
    form = client.get("/p/org/workers/new")
    assert form.status_code == 200 and OWN_GRID in form.text and OTHER_GRID not in form.text
    bad = _post(
        client, kernel, "/p/org/workers/new", {"name": "", "phone": "12", "grids": [OWN_GRID]}
    )
    assert (
        bad.status_code == 422 and "姓名不能为空" in bad.text and "联系电话格式不正确" in bad.text
    )
    assert _count(kernel, Worker) == 0
    assert (
        _post(
            client, kernel, "/p/org/workers/new", {"name": "外网", "grids": [OTHER_GRID]}
        ).status_code
        == 403
    )
    ok = _post(
        client,
        kernel,
        "/p/org/workers/new",
        {"name": "黄网格", "phone": PHONE, "grids": [OWN_GRID]},
    )
    assert ok.status_code == 303
    with kernel.db.read() as s:
        w = s.scalars(select(Worker)).one()
    edit = client.get(f"/p/org/workers/{w.id}/edit")
    assert edit.status_code == 200 and PHONE not in edit.text and "139****5678" in edit.text
    r = _post(client, kernel, f"/p/org/workers/{w.id}/edit",
              {"name": "黄网格", "phone": "", "grids": [OWN_GRID, OWN_GRID2]})  # fmt: skip
    assert r.status_code == 303
    with kernel.db.read() as s:
        w = s.get(Worker, w.id)
        grids = set(s.scalars(select(GridAssignment.grid_id)))
    assert (
        w.phone == PHONE
        and not w.active
        and grids == {grid.get(OWN_GRID).id, grid.get(OWN_GRID2).id}
    )
    [entry] = audit_entries(kernel, action="org.worker.update")
    assert '"fields":["active","grids"]' in entry.detail and PHONE not in entry.detail
    dev = f"/p/org/workers/{w.id}/devices"
    assert (
        _post(client, kernel, dev, {"imei": "86000000000001", "phone_number": PHONE}).status_code
        == 303
    )
    again = _post(client, kernel, dev, {"imei": "86000000000001"})
    assert again.status_code == 422 and "已登记" in again.text
    assert _count(kernel, Device) == 1


def _two_centres(kernel: Any, grid: Any) -> tuple[int, int]:
    """The 综治中心 of this county (450107) and of the next (450108): (own id, other id)."""
    with kernel.db.write() as s:
        own = Organisation(node_id=grid.node("450107").id, name="本县综治中心", kind="centre")
        other = Organisation(node_id=grid.node("450108").id, name="外县综治中心", kind="centre")
        s.add_all([own, other])
        s.flush()
        return int(own.id or 0), int(other.id or 0)


def test_staff_are_added_to_organisations_of_the_subtree(client: Any, kernel: Any, grid: Any,
                                                         login: Any) -> None:  # fmt: skip
    own_id, other_id = _two_centres(kernel, grid)
    login("county_staff", "450107")
    form = client.get("/p/org/staff/new")
    assert "本县综治中心" in form.text and "外县综治中心" not in form.text
    bad = _post(
        client, kernel, "/p/org/staff/new", {"org": str(own_id), "name": "", "post": "主任"}
    )
    assert bad.status_code == 422 and "姓名不能为空" in bad.text and _count(kernel, Staff) == 0
    assert (
        _post(
            client, kernel, "/p/org/staff/new", {"org": str(other_id), "name": "越权"}
        ).status_code
        == 403
    )
    assert _post(client, kernel, "/p/org/staff/new", {"org": "x", "name": "甲"}).status_code == 422
    ok = _post(
        client,
        kernel,
        "/p/org/staff/new",
        {"org": str(own_id), "name": "蓝主任", "post": "主任", "phone": PHONE},
    )
    assert ok.status_code == 303 and "蓝主任" in client.get("/p/org/").text
    assert audit_entries(kernel, action="org.staff.create")


def test_staff_are_edited_and_marked_as_left_keeping_the_roster(client: Any, kernel: Any, grid: Any,
                                                                 login: Any) -> None:  # fmt: skip
    own_id, other_id = _two_centres(kernel, grid)
    with kernel.db.write() as s:
        mine = service.add_staff(s, s.get_one(Organisation, own_id), "蓝主任", PHONE, "主任")
        theirs = service.add_staff(s, s.get_one(Organisation, other_id), "外县人员", PHONE, "干事")
        mine_id, theirs_id = mine.id, theirs.id
    login("county_staff", "450107")
    form = client.get(f"/p/org/staff/{mine_id}/edit")
    assert form.status_code == 200 and "蓝主任" in form.text and PHONE not in form.text  # masked only
    assert client.get(f"/p/org/staff/{theirs_id}/edit").status_code == 403
    bad = _post(client, kernel, f"/p/org/staff/{mine_id}/edit", {"name": "蓝主任", "post": "主" * 61, "active": "1"})
    assert bad.status_code == 422 and "职务过长" in bad.text
    ok = _post(client, kernel, f"/p/org/staff/{mine_id}/edit", {"name": "蓝主任", "post": "副主任", "phone": ""})
    assert ok.status_code == 303
    with kernel.db.read() as s:
        again = s.get(Staff, mine_id)
        assert (again.post, again.phone, again.active) == ("副主任", PHONE, False)  # empty phone: kept
    assert "已离岗" in client.get("/p/org/").text
    [entry] = audit_entries(kernel, action="org.staff.update")
    assert PHONE not in str(entry.detail) and "active" in str(entry.detail)


def test_edit_pages_refuse_workers_of_another_county(
    client: Any, kernel: Any, grid: Any, login: Any
) -> None:
    g = grid.node(OTHER_GRID)
    with kernel.db.write() as s:
        node = s.get(Node, g.id)
        w = service.add_worker(s, node, "外县网格员", PHONE, [node])
    login("county_staff", "450107")
    assert client.get(f"/p/org/workers/{w.id}/edit").status_code == 403
    assert (
        _post(
            client, kernel, f"/p/org/workers/{w.id}/edit", {"name": "改", "active": "1"}
        ).status_code
        == 403
    )
    assert _post(client, kernel, f"/p/org/workers/{w.id}/devices", {"imei": "1"}).status_code == 403
    client.cookies.clear()
    login("leader", "450108")  # sees, may not manage
    assert client.get(f"/p/org/workers/{w.id}").status_code == 200
    assert client.get(f"/p/org/workers/{w.id}/edit").status_code == 403
    with kernel.db.read() as s:
        assert s.get(Worker, w.id).name == "外县网格员" and _count(kernel, Device) == 0
