"""数据字典 as administrators use it: a province renames, reorders, switches off and adds items,
every worker sees it at once, pages show the province's labels, bad input saves nothing, and
nobody below the province or outside it changes them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from yiwang.api import Dictionary, PluginSpec, dictionary, dictionary_labels, hookimpl
from yiwang.audit import Actor
from yiwang.dicts.service import reset_item, set_item
from yiwang.errors import ValidationError
from yiwang.testing import audit_entries


class _Homes:
    @hookimpl
    def yiwang_dictionaries(self) -> list[Dictionary]:
        return [Dictionary("homes.use", "房屋用途", (("own", "自住"), ("rent", "出租"), ("empty", "空置")), extensible=True)]


HOMES = PluginSpec(name="homes", version="1.0", title="房屋", api=">=1.1,<2", hooks=_Homes())
ADMIN = Actor(user_id=None, username="test")


@pytest.mark.with_plugins(HOMES)
def test_a_province_adjusts_an_extensible_dictionary(kernel: Any, grid: Any) -> None:
    path = grid.node("45010700100101").path
    gx = grid.get("45")
    assert dictionary(kernel, "homes.use", path) == {"own": "自住", "rent": "出租", "empty": "空置"}
    set_item(kernel, gx.id, "homes.use", "rent", label="出租屋", position=5, active=True, actor=ADMIN)
    set_item(kernel, gx.id, "homes.use", "empty", label="空置", position=30, active=False, actor=ADMIN)
    set_item(kernel, gx.id, "homes.use", "shop", label="经营", position=40, active=True, actor=ADMIN)
    assert list(dictionary(kernel, "homes.use", path).items()) == [("rent", "出租屋"), ("own", "自住"), ("shop", "经营")]
    # A stored code that was switched off still reads with its label.
    assert dictionary_labels(kernel, "homes.use", path)["empty"] == "空置"
    # Outside the net's provinces (no node) the declaration holds.
    assert dictionary(kernel, "homes.use", None)["rent"] == "出租"
    reset_item(kernel, gx.id, "homes.use", "rent", actor=ADMIN)
    assert dictionary(kernel, "homes.use", path)["rent"] == "出租"
    actions = [e.action for e in audit_entries(kernel)]
    assert actions.count("dicts.item.set") == 3 and actions.count("dicts.item.reset") == 1


@pytest.mark.with_plugins(HOMES)
@pytest.mark.parametrize(
    ("code", "label", "active", "problem"),
    [
        ("rent", "", True, "请填写名称"),
        ("rent", "自住", True, "已有名称"),
        ("bad code!", "新", True, "代码只能"),
        ("rent", "x" * 31, True, "不能超过"),
    ],
)
def test_bad_items_are_refused_and_nothing_is_saved(kernel: Any, grid: Any, code: str, label: str, active: bool, problem: str) -> None:
    grid.node("45010700100101")
    gx = grid.get("45")
    with pytest.raises(ValidationError) as refused:
        set_item(kernel, gx.id, "homes.use", code, label=label, position=1, active=active, actor=ADMIN)
    assert any(problem in p for p in refused.value.problems)
    assert dictionary(kernel, "homes.use", gx.path) == {"own": "自住", "rent": "出租", "empty": "空置"}
    assert not [e for e in audit_entries(kernel) if e.action.startswith("dicts.")]


def test_kernel_codes_can_be_renamed_but_neither_added_nor_switched_off(kernel: Any, grid: Any) -> None:
    grid.node("45010700100101")
    gx = grid.get("45")
    with pytest.raises(ValidationError, match="未保存") as refused:
        set_item(kernel, gx.id, "cases.urgency", "urgent", label="紧急", position=1, active=False, actor=ADMIN)
    assert "不能停用" in " ".join(refused.value.problems)
    with pytest.raises(ValidationError) as refused:
        set_item(kernel, gx.id, "cases.urgency", "extreme", label="极急", position=1, active=True, actor=ADMIN)
    assert "不允许新增" in " ".join(refused.value.problems)
    set_item(kernel, gx.id, "cases.urgency", "critical", label="特别紧急", position=1, active=True, actor=ADMIN)
    assert list(dictionary(kernel, "cases.urgency", gx.path))[0] == "critical"


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_the_admin_page_renames_an_item_and_the_case_pages_show_it(client: Any, case_net: Any, users: Any) -> None:
    admin = users.make("system_admin", "45")
    users.login(client, admin.username)
    index = client.get("/admin/dictionaries")
    assert index.status_code == 200 and "事件紧急程度" in index.text
    page = client.get("/admin/dictionaries/cases.urgency").text
    answer = client.post("/admin/dictionaries/cases.urgency", data={
        "csrf_token": _token(page), "node": "45", "code": "urgent", "label": "加急", "position": "20", "active": "on"},
        follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303
    assert 'value="加急"' in client.get("/admin/dictionaries/cases.urgency").text
    case_net.report("worker", urgency="urgent")
    staff = client.__class__(client.app)
    users.login(staff, case_net.users["station"].username)
    assert "加急" in staff.get("/cases/?tab=all").text
    bad = client.post("/admin/dictionaries/cases.urgency", data={
        "csrf_token": _token(page), "node": "45", "code": "urgent", "label": "", "position": "x", "active": "on"})  # fmt: skip
    assert bad.status_code == 400 and "顺序应为整数" in bad.text


def test_below_the_province_the_dictionary_is_read_only(client: Any, case_net: Any, users: Any) -> None:
    county_admin = users.make("system_admin", "450107")
    users.login(client, county_admin.username)
    page = client.get("/admin/dictionaries/cases.urgency")
    assert page.status_code == 200 and "修改需要在省级节点" in page.text and 'name="label"' not in page.text
    forged = client.post("/admin/dictionaries/cases.urgency", data={
        "csrf_token": _token(client.get("/admin/users").text), "node": "45", "code": "urgent", "label": "改", "position": "1", "active": "on"})  # fmt: skip
    assert forged.status_code == 403
    assert dictionary(client.app.state.kernel, "cases.urgency", None)["urgent"] == "紧急"


def test_staff_without_the_permission_do_not_reach_the_page(client: Any, case_net: Any, users: Any) -> None:
    users.login(client, case_net.users["station"].username)
    assert client.get("/admin/dictionaries").status_code == 403
    assert "/admin/dictionaries" not in client.get("/cases/").text
