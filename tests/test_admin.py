"""Administration pages: users and assignments, roles and grants, plugin activation, login log —
each inside the administrator's own subtree, every change audited, nothing written on error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from yiwang import audit
from yiwang.auth.models import AuthSession, User
from yiwang.errors import ValidationError
from yiwang.rbac.models import Assignment, PolicyLine, Role

PAGES = ("/admin/users", "/admin/users/new", "/admin/logins", "/admin/roles", "/admin/plugins")

#: Which administration pages each role reaches (with the kernel's default grants).
REACHES = {
    "system_admin": {"/admin/users", "/admin/users/new", "/admin/roles", "/admin/plugins"},
    "security_admin": {"/admin/users", "/admin/logins"},
    "audit_admin": set(),
    "province_staff": set(),
    "county_staff": set(),
    "grid_worker": set(),
    "leader": set(),
}


@pytest.fixture
def other(app: Any) -> Iterator[TestClient]:
    """A second browser on the same app (the user being administered)."""
    with TestClient(app) as c:
        yield c


def _csrf(client: Any) -> str:
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/account/password").text)
    assert found
    return found.group(1)


def _post(client: Any, path: str, data: dict[str, str] | None = None) -> Any:
    return client.post(path, data={**(data or {}), "csrf_token": _csrf(client)}, follow_redirects=False)


def _county_admin(kernel: Any) -> None:
    """county_staff may view and manage users (in their county), as the brief's scenario."""
    with kernel.db.write() as s:
        kernel.authz.grant(s, "county_staff", "users.manage")
        kernel.authz.grant(s, "county_staff", "users.view")
    kernel.authz.reload()


def _count(kernel: Any, model: Any, *where: Any) -> int:
    with kernel.db.read() as s:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def _user_id(kernel: Any, username: str) -> int | None:
    with kernel.db.read() as s:
        return s.scalars(select(User.id).where(User.username == username)).first()  # type: ignore[arg-type]


def _actions(kernel: Any, action: str) -> list[Any]:
    with kernel.db.read() as s:
        return list(audit.search(s, action=action))


# --- pages and guards -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(REACHES))
def test_each_page_renders_for_its_role_and_is_refused_for_others(client: Any, login: Any, role: str) -> None:
    login(role, "45")
    for path in PAGES:
        page = client.get(path, follow_redirects=False)
        if path in REACHES[role]:
            assert page.status_code == 200, (role, path, page.text[:300])
            assert "<html" in page.text and "系统管理" in page.text
        else:
            assert page.status_code == 403, (role, path)
    menu = client.get("/grid/").text
    for label, path in (("用户管理", "/admin/users"), ("角色与权限", "/admin/roles"), ("模块启用", "/admin/plugins"),
                        ("登录日志", "/admin/logins")):  # fmt: skip
        assert (f'href="{path}"' in menu) == (path in REACHES[role]), (role, label)


def test_pages_answer_htmx_with_a_fragment(client: Any, login: Any) -> None:
    login("system_admin", "45")
    page = client.get("/admin/users", headers={"HX-Request": "true"})
    assert page.status_code == 200 and "<html" not in page.text and "用户管理" in page.text
    assert page.headers["vary"] == "HX-Request"


# --- users ------------------------------------------------------------------------------------------


def test_a_county_admin_sees_only_the_users_of_their_county(
    client: Any, login: Any, users: Any, grid: Any, kernel: Any
) -> None:
    _county_admin(kernel)
    grid.node("45010700100101")
    grid.node("450108")
    mine = users.make("grid_worker", "45010700100101", username="wangwu")
    users.make("dispatcher", "450107", username="zhaoliu")
    theirs = users.make("grid_worker", "450108", username="sibling1")
    above = users.make("city_staff", "4501", username="cityone")
    login("county_staff", "450107")
    page = client.get("/admin/users").text
    assert "wangwu" in page and "zhaoliu" in page
    assert "sibling1" not in page and "cityone" not in page
    found = client.get("/admin/users", params={"q": "wang"}).text
    assert "wangwu" in found and "zhaoliu" not in found
    by_role = client.get("/admin/users", params={"role": "dispatcher"}).text
    assert "zhaoliu" in by_role and "wangwu" not in by_role
    narrowed = client.get("/admin/users", params={"node": "45010700100101"}).text
    assert "wangwu" in narrowed and "zhaoliu" not in narrowed
    assert client.get("/admin/users", params={"node": "450108"}).status_code == 403
    assert client.get(f"/admin/users/{mine.id}").status_code == 200
    for outsider in (theirs, above):
        page = client.get(f"/admin/users/{outsider.id}")
        assert page.status_code == 403 and outsider.username not in page.text
    assert client.get("/admin/users/999999").status_code == 403  # absent looks like foreign


def test_creating_a_user_gives_a_temporary_password_to_change_at_first_login(
    client: Any, other: Any, login: Any, users: Any, grid: Any, kernel: Any
) -> None:
    _county_admin(kernel)
    grid.node("45010700100101")
    login("county_staff", "450107")
    form = client.get("/admin/users/new")
    assert form.status_code == 200 and "调度员" in form.text
    created = _post(client, "/admin/users/new", {"username": "LiSi", "display_name": "李四", "role": "dispatcher",
                                                  "node": "45010700100101"})  # fmt: skip
    assert created.status_code == 200, created.text[:500]
    assert created.headers["cache-control"] == "no-store"
    password = re.search(r'<p class="mono big">([^<]+)</p>', created.text)
    assert password and "lisi" in created.text
    user_id = _user_id(kernel, "lisi")
    assert user_id is not None
    with kernel.db.read() as s:
        user = s.get(User, user_id)
        assert user is not None and user.must_change_password
        [row] = s.scalars(select(Assignment).where(Assignment.user_id == user_id))  # type: ignore[arg-type]
        assert row.role == "dispatcher"
    assert users.login(other, "lisi", password.group(1)).status_code == 200
    assert other.get("/grid/", follow_redirects=False).headers["location"] == "/account/password"
    [record] = _actions(kernel, "admin.user.create")
    assert record.object_id == str(user_id) and record.result == "ok"
    assert _actions(kernel, "admin.assign")


def test_a_county_admin_cannot_create_a_user_outside_or_above_their_permissions(
    client: Any, login: Any, grid: Any, kernel: Any
) -> None:
    _county_admin(kernel)
    grid.node("450108")
    login("county_staff", "450107")
    before = _count(kernel, User)
    outside = _post(client, "/admin/users/new", {"username": "x1", "display_name": "甲", "role": "dispatcher",
                                                  "node": "450108"})  # fmt: skip
    assert outside.status_code == 403 and "只能在自己的辖区内管理授权" in outside.text
    above = _post(client, "/admin/users/new", {"username": "x2", "display_name": "乙", "role": "grid_worker",
                                                "node": "450107"})  # fmt: skip
    assert above.status_code == 403 and "超出自身权限" in above.text and "privacy.reveal" in above.text
    admin = _post(client, "/admin/users/new", {"username": "x3", "display_name": "丙", "role": "system_admin",
                                                "node": "450107"})  # fmt: skip
    assert admin.status_code == 403 and "管理员角色只能由同类管理员授予" in admin.text
    assert _count(kernel, User) == before  # nothing written, not even the account
    denied = [r for r in _actions(kernel, "admin.user.create") if r.result == "denied"]
    assert len(denied) == 3


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"username": "", "display_name": "甲", "role": "dispatcher", "node": "450107"}, "用户名须为"),
        ({"username": "bad name!", "display_name": "甲", "role": "dispatcher", "node": "450107"}, "用户名须为"),
        ({"username": "ok1", "display_name": "", "role": "dispatcher", "node": "450107"}, "请填写姓名"),
        ({"username": "ok2", "display_name": "甲", "role": "", "node": "450107"}, "请选择角色"),
        ({"username": "ok3", "display_name": "甲", "role": "dispatcher", "node": ""}, "请填写所属节点编码"),
        ({"username": "ok4", "display_name": "甲", "role": "dispatcher", "node": "459999"}, "节点编码 459999 不存在"),
        ({"username": "ok5", "display_name": "甲", "role": "no_such_role", "node": "450107"}, "角色 no_such_role 不存在"),
        ({"username": "taken", "display_name": "甲", "role": "dispatcher", "node": "450107"}, "已存在"),
    ],
)
def test_the_create_form_validates_and_writes_nothing_on_error(
    client: Any, login: Any, users: Any, kernel: Any, form: dict[str, str], problem: str
) -> None:
    _county_admin(kernel)
    login("county_staff", "450107")
    users.make("dispatcher", "450107", username="taken")
    before = (_count(kernel, User), _count(kernel, Assignment))
    page = _post(client, "/admin/users/new", form)
    assert page.status_code == 400 and problem in page.text, page.text[:800]
    assert f'value="{form["display_name"]}"' in page.text  # the form comes back filled in
    assert (_count(kernel, User), _count(kernel, Assignment)) == before


def test_one_account_cannot_be_two_different_administrators(
    client: Any, login: Any, users: Any, grid: Any, kernel: Any
) -> None:
    grid.node("45010700100101")
    target = users.make("security_admin", "45010700100101")
    login("system_admin", "450107")  # a county-level system administrator
    before = _count(kernel, Assignment)
    page = _post(client, f"/admin/users/{target.id}/assignments", {"role": "system_admin", "node": "450107"})
    assert page.status_code == 400 and "不能由同一账号兼任" in page.text
    assert _count(kernel, Assignment) == before


def test_assignments_are_added_and_removed_within_the_rules(
    client: Any, login: Any, users: Any, grid: Any, kernel: Any
) -> None:
    _county_admin(kernel)
    grid.node("45010700100101")
    grid.node("450108")
    me = login("county_staff", "450107")
    target = users.make("dispatcher", "450107")
    added = _post(client, f"/admin/users/{target.id}/assignments", {"role": "leader", "node": "45010700100101"})
    assert added.status_code == 303
    outside = _post(client, f"/admin/users/{target.id}/assignments", {"role": "leader", "node": "450108"})
    assert outside.status_code == 403 and "只能在自己的辖区内管理授权" in outside.text
    more = _post(client, f"/admin/users/{target.id}/assignments", {"role": "grid_worker", "node": "450107"})
    assert more.status_code == 403 and "超出自身权限" in more.text
    with kernel.db.read() as s:
        rows = {a.role: a.id for a in s.scalars(select(Assignment).where(Assignment.user_id == target.id))}  # type: ignore[arg-type]
        [mine] = s.scalars(select(Assignment.id).where(Assignment.user_id == me.id))  # type: ignore[call-overload, arg-type]
    assert set(rows) == {"dispatcher", "leader"}
    assert _post(client, f"/admin/users/{target.id}/assignments/{rows['leader']}/delete").status_code == 303
    last = _post(client, f"/admin/users/{target.id}/assignments/{rows['dispatcher']}/delete")
    assert last.status_code == 403 and "唯一的授权" in last.text
    own = _post(client, f"/admin/users/{me.id}/assignments/{mine}/delete")
    assert own.status_code == 403 and "不能收回自己的授权" in own.text
    # Another user's assignment under this user's id: refused, nothing removed.
    assert _post(client, f"/admin/users/{target.id}/assignments/{mine}/delete").status_code == 403
    assert _count(kernel, Assignment, Assignment.user_id == target.id) == 1  # type: ignore[arg-type]
    assert {r.action for r in _actions(kernel, "admin.") if r.result == "ok"} >= {"admin.assign", "admin.unassign"}


def test_an_account_spanning_jurisdictions_is_shown_partly_and_left_to_the_higher_admin(
    client: Any, login: Any, users: Any, grid: Any, kernel: Any
) -> None:
    _county_admin(kernel)
    grid.node("450108", "兴宁区")
    both = users.make("dispatcher", "450107", extra=(("dispatcher", "450108"),))
    login("county_staff", "450107")
    page = client.get(f"/admin/users/{both.id}")
    assert page.status_code == 200 and "兴宁区" not in page.text and "另有 1 项授权" in page.text
    for action in ("disable", "password"):
        refused = _post(client, f"/admin/users/{both.id}/{action}")
        assert refused.status_code == 403 and "上级管理员" in refused.text
    with kernel.db.read() as s:
        user = s.get(User, both.id)
        assert user is not None and user.active and not user.must_change_password


def test_a_password_reset_cannot_take_over_a_wider_account(
    client: Any, login: Any, users: Any, kernel: Any
) -> None:
    _county_admin(kernel)
    worker = users.make("grid_worker", "450107")  # holds privacy.reveal, the county admin does not
    login("county_staff", "450107")
    refused = _post(client, f"/admin/users/{worker.id}/password")
    assert refused.status_code == 403 and "超出您的权限" in refused.text
    assert "mono big" not in refused.text


def test_disabling_a_user_logs_them_out_at_once(
    client: Any, other: Any, login: Any, users: Any, kernel: Any
) -> None:
    victim = users.make("county_staff", "450107")
    assert users.login(other, victim.username).status_code == 200
    assert other.get("/grid/").status_code == 200
    login("system_admin", "45")
    done = _post(client, f"/admin/users/{victim.id}/disable")
    assert done.status_code == 200 and "已停用" in done.text
    assert _count(kernel, AuthSession, AuthSession.user_id == victim.id) == 0  # type: ignore[arg-type]
    assert other.get("/grid/", follow_redirects=False).headers["location"].startswith("/login")
    assert users.login(other, victim.username).status_code == 400  # cannot log in again
    assert _post(client, f"/admin/users/{victim.id}/enable").status_code == 200
    assert users.login(other, victim.username).status_code == 200
    reset = _post(client, f"/admin/users/{victim.id}/password")
    assert reset.status_code == 200 and reset.headers["cache-control"] == "no-store"
    temporary = re.search(r'<p class="mono big">([^<]+)</p>', reset.text)
    assert temporary
    assert other.get("/grid/", follow_redirects=False).status_code == 303  # reset ends sessions too
    assert users.login(other, victim.username).status_code == 400  # the old password is gone
    assert users.login(other, victim.username, temporary.group(1)).status_code == 200
    actions = {r.action for r in _actions(kernel, "admin.user.")}
    assert actions >= {"admin.user.disable", "admin.user.enable", "admin.user.reset_password"}


def test_an_administrator_does_not_act_on_their_own_account(client: Any, login: Any) -> None:
    me = login("system_admin", "45")
    assert _post(client, f"/admin/users/{me.id}/disable").status_code == 403
    assert client.get("/grid/").status_code == 200


def test_the_security_administrator_unlocks_and_reads_the_login_log(
    client: Any, other: Any, login: Any, users: Any, grid: Any, kernel: Any
) -> None:
    grid.node("450108")
    locked = users.make("county_staff", "450107", username="lockedone")
    outsider = users.make("county_staff", "450108", username="outsider")
    for _ in range(kernel.settings.auth.lockout_threshold):
        users.login(other, locked.username, "wrong-password")
    users.login(other, outsider.username, "wrong-password")
    assert users.login(other, locked.username).status_code == 400  # locked
    login("security_admin", "450107")
    log = client.get("/admin/logins")
    assert log.status_code == 200 and "lockedone" in log.text and "outsider" not in log.text
    detail = client.get(f"/admin/users/{locked.id}")
    assert "已锁定" in detail.text and "解除锁定" in detail.text
    assert _post(client, f"/admin/users/{locked.id}/unlock").status_code == 200
    assert users.login(other, locked.username).status_code == 200
    assert _post(client, f"/admin/users/{outsider.id}/unlock").status_code == 403
    # The security administrator does not manage accounts.
    assert _post(client, f"/admin/users/{locked.id}/disable").status_code == 403


# --- roles and grants ---------------------------------------------------------------------------


def test_a_grant_or_revocation_on_the_roles_page_applies_at_the_next_request(
    client: Any, other: Any, login: Any, users: Any, kernel: Any
) -> None:
    staff = users.make("county_staff", "450107")
    assert users.login(other, staff.username).status_code == 200
    assert other.get("/admin/users").status_code == 403
    login("system_admin", "45")
    listing = client.get("/admin/roles").text
    assert "县级综治中心工作人员" in listing and "平台基础：" in listing and "查看区划与网格" in listing
    page = client.get("/admin/roles/county_staff")
    assert page.status_code == 200 and "查看用户" in page.text and "平台基础" in page.text
    assert _post(client, "/admin/roles/county_staff/grant", {"permission": "users.view"}).status_code == 303
    assert other.get("/admin/users").status_code == 200
    assert _post(client, "/admin/roles/county_staff/revoke", {"permission": "users.view"}).status_code == 303
    assert other.get("/admin/users").status_code == 403
    assert [r.detail_data for r in _actions(kernel, "admin.grant")] == [{"permission": "users.view"}]
    assert len(_actions(kernel, "admin.revoke")) == 1


def test_roles_page_refuses_self_grants_unknown_permissions_and_non_global_admins(
    client: Any, other: Any, login: Any, users: Any, kernel: Any
) -> None:
    login("system_admin", "45")
    own = _post(client, "/admin/roles/system_admin/grant", {"permission": "audit.view"})
    assert own.status_code == 403 and "自己所持角色" in own.text
    unknown = _post(client, "/admin/roles/county_staff/grant", {"permission": "nothing.here"})
    assert unknown.status_code == 400 and "已声明的权限" in unknown.text
    assert client.get("/admin/roles/no_such_role").status_code == 404
    county_admin = users.make("system_admin", "450107")
    users.login(other, county_admin.username)
    # Grants apply everywhere: a county-level administrator may not change them.
    assert other.get("/admin/roles").status_code == 403
    assert other.post("/admin/roles/county_staff/grant", data={"permission": "users.view", "csrf_token": _csrf(other)},
                      follow_redirects=False).status_code == 403  # fmt: skip
    assert not kernel.authz.role_allows("system_admin", "audit.view")
    assert not kernel.authz.role_allows("county_staff", "users.view")


def test_the_audit_administrator_never_gets_a_personal_permission(
    client: Any, login: Any, kernel: Any
) -> None:
    login("system_admin", "45")
    lines = _count(kernel, PolicyLine)
    page = _post(client, "/admin/roles/audit_admin/grant", {"permission": "privacy.reveal"})
    assert page.status_code == 403 and "审计管理员" in page.text and "个人信息" in page.text
    assert not kernel.authz.role_allows("audit_admin", "privacy.reveal")
    with pytest.raises(ValidationError, match="个人信息"), kernel.db.write() as s:
        kernel.authz.grant(s, "audit_admin", "privacy.*")
    with pytest.raises(ValidationError, match="个人信息"), kernel.db.write() as s:
        kernel.authz.inherit(s, "audit_admin", "grid_worker")  # grid_worker may reveal
    with kernel.db.write() as s:  # a harmless role inherited by the audit administrator...
        s.add(Role(name="reader", title="只读"))
        s.flush()
        kernel.authz.inherit(s, "audit_admin", "reader")
    with pytest.raises(ValidationError, match="个人信息"), kernel.db.write() as s:
        kernel.authz.grant(s, "reader", "privacy.reveal")  # ...cannot become a way round
    assert _count(kernel, PolicyLine) == lines + 1  # only the harmless inheritance


def test_a_custom_role_is_created_and_validated(client: Any, login: Any, kernel: Any) -> None:
    login("system_admin", "45")
    made = _post(client, "/admin/roles", {"name": "street_inspector", "title": "街面巡查员"})
    assert made.status_code == 303 and made.headers["location"].endswith("/admin/roles/street_inspector")
    for form, problem in (({"name": "street_inspector", "title": "重复"}, "已存在"),
                          ({"name": "Bad-Name", "title": "甲"}, "角色标识须"),
                          ({"name": "fine_name", "title": ""}, "请填写角色名称")):  # fmt: skip
        page = _post(client, "/admin/roles", form)
        assert page.status_code == 400 and problem in page.text
    assert _count(kernel, Role, Role.declared_by == "") == 1  # type: ignore[arg-type]
    assert "街面巡查员" in client.get("/admin/roles").text
    assert _post(client, "/admin/roles/street_inspector/grant", {"permission": "grid.view"}).status_code == 303
    assert kernel.authz.role_allows("street_inspector", "grid.view")
    assert _actions(kernel, "admin.role.create")


# --- plugin activation ------------------------------------------------------------------------------


@pytest.mark.with_plugins("notice")
def test_switching_a_plugin_off_at_a_node_makes_its_pages_404_there(
    client: Any, other: Any, login: Any, users: Any, grid: Any, kernel: Any
) -> None:
    grid.node("450108")
    grid.node("450107001")
    staff = users.make("city_staff", "4501")
    users.login(other, staff.username)
    assert other.get("/p/notice/", params={"node": "450107"}).status_code == 200
    login("system_admin", "45")
    page = client.get("/admin/plugins", params={"node": "450107"})
    assert page.status_code == 200 and "通知公告" in page.text and "默认" in page.text
    off = _post(client, "/admin/plugins/notice", {"node": "450107", "state": "off"})
    assert off.status_code == 303
    assert other.get("/p/notice/", params={"node": "450107"}).status_code == 404
    assert other.get("/p/notice/", params={"node": "450107001"}).status_code == 404  # inherited below
    assert other.get("/p/notice/", params={"node": "450108"}).status_code == 200
    assert "本节点设置" in client.get("/admin/plugins", params={"node": "450107"}).text
    below = client.get("/admin/plugins", params={"node": "450107001"}).text
    assert "继承自" in below and "本层级不可设置" in below
    level = _post(client, "/admin/plugins/notice", {"node": "450107001", "state": "on"})
    assert level.status_code == 400 and "只能在以下层级开关" in level.text
    assert _post(client, "/admin/plugins/notice", {"node": "450107", "state": "inherit"}).status_code == 303
    assert other.get("/p/notice/", params={"node": "450107"}).status_code == 200
    assert [r.detail_data["active"] for r in _actions(kernel, "plugin.activation")] == [None, False]


@pytest.mark.with_plugins("notice")
def test_a_county_admin_switches_plugins_only_in_their_county(
    client: Any, login: Any, grid: Any, kernel: Any
) -> None:
    grid.node("450108")
    login("system_admin", "450107")
    assert client.get("/admin/plugins", params={"node": "450108"}).status_code == 403
    page = _post(client, "/admin/plugins/notice", {"node": "450108", "state": "off"})
    assert page.status_code == 403
    assert kernel.activation.explicit() == []
    # The city above is not theirs to name: an inherited setting shows only "上级".
    kernel.activation.set("notice", grid.get("4501"), False)
    text = client.get("/admin/plugins", params={"node": "450107"}).text
    assert "上级（辖区以外）" in text and grid.get("4501").name not in text


def _snooping_plugin() -> Any:
    import types

    from yiwang.api import Permission, PluginSpec, hookimpl

    hooks = types.SimpleNamespace()

    @hookimpl
    def yiwang_permissions() -> list[Permission]:
        return [Permission("snoop.reveal", "查看居民原始信息", personal=True)]

    @hookimpl
    def yiwang_grants() -> dict[str, list[str]]:
        return {"audit_admin": ["snoop.reveal"]}

    hooks.yiwang_permissions, hooks.yiwang_grants = yiwang_permissions, yiwang_grants
    return PluginSpec(name="snoop", version="1.0", title="窥探", api=">=1.0,<2", hooks=hooks)


@pytest.mark.with_plugins(_snooping_plugin())
def test_a_plugin_cannot_give_the_audit_administrator_a_personal_permission(kernel: Any) -> None:
    from yiwang.errors import PluginError

    with pytest.raises(PluginError, match="个人信息"):
        kernel.sync_declarations()
    assert not kernel.authz.role_allows("audit_admin", "snoop.reveal")
