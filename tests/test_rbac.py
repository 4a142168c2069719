"""Authorisation: roles decide what, the grid decides where; every route declares a guard."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from starlette.routing import Mount, Route

from yiwang.errors import Forbidden, ValidationError
from yiwang.grid.tree import T
from yiwang.rbac.assignments import assign
from yiwang.rbac.guard import ATTR
from yiwang.rbac.models import Assignment
from yiwang.rbac.sync import declared_permissions


def _routes(routes: list[Any], prefix: str = "") -> list[tuple[str, Route]]:
    out = []
    for route in routes:
        if isinstance(route, Mount):
            inner = getattr(route.app, "routes", None)
            if inner is not None:
                out += _routes(list(inner), prefix + route.path)
        elif isinstance(route, Route):
            out.append((prefix + route.path, route))
    return out


@pytest.mark.with_plugins("notice")
def test_every_route_declares_its_permission(app: Any, kernel: Any) -> None:
    routes = _routes(app.routes)
    assert len(routes) > 10
    declared = set(declared_permissions(kernel)) | {"public", "authenticated"}
    unguarded = [path for path, r in routes if getattr(r.endpoint, ATTR, None) is None]
    assert unguarded == [], f"这些路由没有声明权限: {unguarded}"
    unknown = [(path, getattr(r.endpoint, ATTR)) for path, r in routes if getattr(r.endpoint, ATTR) not in declared]
    assert unknown == []


def test_a_role_works_inside_its_subtree_only(client: Any, login: Any, grid: Any) -> None:
    grid.node("450108")
    grid.node("45010700100101")
    login("county_staff", "450107")
    assert client.get("/grid/450107").status_code == 200
    assert client.get("/grid/45010700100101").status_code == 200
    for outside in ("450108", "4501", "45", "4502"):
        grid.node(outside)
        page = client.get(f"/grid/{outside}")
        assert page.status_code == 403, outside
        assert f">{outside}<" not in page.text


def test_search_is_scoped_in_sql(client: Any, login: Any, grid: Any) -> None:
    grid.node("450108", "良庆区")
    login("county_staff", "450107")
    assert "良庆区" not in client.get("/grid/search", params={"q": "良庆"}).text
    assert "450107" in client.get("/grid/search", params={"q": "4501"}).text


def test_node_query_parameter_cannot_leave_the_jurisdiction(client: Any, login: Any, grid: Any) -> None:
    grid.node("450108")
    grid.node("45010700100101")
    login("county_staff", "450107")
    assert client.get("/grid/", params={"node": "450108"}).status_code == 403
    assert client.get("/grid/", params={"node": "45010700100101"}).status_code == 200


def test_revoking_a_grant_applies_to_the_very_next_request(client: Any, login: Any, kernel: Any) -> None:
    login("county_staff", "450107")
    assert client.get("/grid/450107").status_code == 200
    with kernel.db.write() as s:
        kernel.authz.revoke(s, "county_staff", "grid.view")
    assert client.get("/grid/450107").status_code == 403


def test_removing_an_assignment_applies_at_once(client: Any, login: Any, kernel: Any) -> None:
    user = login("county_staff", "450107")
    with kernel.db.write() as s:
        for row in s.scalars(select(Assignment).where(Assignment.user_id == user.id)):
            s.delete(row)
    assert client.get("/grid/450107").status_code == 403


def test_another_worker_sees_a_policy_change(kernel: Any, users: Any, settings: Any, yiwang_db: Any) -> None:
    from yiwang.kernel import Kernel

    users.make("county_staff", "450107")
    other = Kernel(settings, db=yiwang_db)
    other.authz.reload()
    assert other.authz.role_allows("county_staff", "grid.view")
    with kernel.db.write() as s:
        kernel.authz.revoke(s, "county_staff", "grid.view")
    other.authz.check_epoch()
    assert not other.authz.role_allows("county_staff", "grid.view")


def test_scope_filter_is_the_union_of_subtrees(kernel: Any, users: Any, grid: Any) -> None:
    from yiwang.auth.service import grants_of

    grid.node("450108")
    user = users.make("county_staff", "450107", extra=(("county_staff", "450108"), ("county_staff", "45010700100101")))
    with kernel.db.read() as s:
        grants = grants_of(s, user.id)
        paths = kernel.authz.scope_paths(grants, "grid.view")
        assert len(paths) == 2  # the grid lies inside 450107
        rows = s.execute(select(T.c.code).where(kernel.authz.scope_filter(grants, "grid.view", T.c.path))).all()
    codes = {c for (c,) in rows}
    assert "450108" in codes and "450107" in codes and "4501" not in codes


def test_the_three_administrators_are_disjoint(kernel: Any, users: Any, grid: Any) -> None:
    admin = users.make("system_admin", "45")
    with pytest.raises(ValidationError, match="不能由同一账号兼任"), kernel.db.write() as s:
        assign(s, kernel.authz, user_id=admin.id, role="audit_admin", node=grid.get("45"))
    with kernel.db.write() as s:  # the same kind elsewhere is fine
        assign(s, kernel.authz, user_id=admin.id, role="system_admin", node=grid.node("4501"))


def test_the_audit_administrator_gets_nothing_personal(kernel: Any, users: Any) -> None:
    users.make("audit_admin", "45")
    personal = [p.name for p in declared_permissions(kernel).values() if p.personal]
    assert personal and not any(kernel.authz.role_allows("audit_admin", p) for p in personal)


def test_nobody_grants_more_than_they_hold_or_above_their_scope(kernel: Any, users: Any, grid: Any) -> None:
    from yiwang.auth.principal import Principal
    from yiwang.auth.service import grants_of

    with kernel.db.write() as s:
        kernel.authz.grant(s, "county_staff", "users.manage")
    kernel.authz.reload()
    boss = users.make("county_staff", "450107")
    target = users.make("grid_worker", "45010700100101")
    with kernel.db.read() as s:
        grants = grants_of(s, boss.id)
    who = Principal(user_id=boss.id, username=boss.username, display_name="", grants=grants, current=grants[0])
    declared = list(declared_permissions(kernel))
    with kernel.db.write() as s:  # a role within their own permissions, inside their county: fine
        assign(s, kernel.authz, user_id=target.id, role="dispatcher", node=grid.get("450107"), grantor=who, declared=declared)
    with pytest.raises(Forbidden, match="辖区"), kernel.db.write() as s:
        assign(s, kernel.authz, user_id=target.id, role="dispatcher", node=grid.node("450108"), grantor=who, declared=declared)
    with pytest.raises(Forbidden, match="超出自身权限"), kernel.db.write() as s:  # reveals personal data
        assign(s, kernel.authz, user_id=target.id, role="grid_worker", node=grid.get("450107"), grantor=who, declared=declared)
    with pytest.raises(Forbidden, match="管理员角色只能由同类管理员授予"), kernel.db.write() as s:
        assign(s, kernel.authz, user_id=target.id, role="system_admin", node=grid.get("450107"), grantor=who, declared=declared)


def test_a_system_administrator_staffs_their_jurisdiction(kernel: Any, users: Any, grid: Any) -> None:
    from yiwang.auth.principal import Principal
    from yiwang.auth.service import grants_of

    admin = users.make("system_admin", "4501")
    target = users.make("leader", "4501")
    with kernel.db.read() as s:
        grants = grants_of(s, admin.id)
    who = Principal(user_id=admin.id, username=admin.username, display_name="", grants=grants, current=grants[0])
    declared = list(declared_permissions(kernel))
    with kernel.db.write() as s:  # an ordinary role with more than the admin holds: allowed
        assign(s, kernel.authz, user_id=target.id, role="grid_worker", node=grid.node("45010700100101"), grantor=who, declared=declared)
    with pytest.raises(Forbidden, match="同类管理员"), kernel.db.write() as s:
        assign(s, kernel.authz, user_id=target.id, role="audit_admin", node=grid.get("4501"), grantor=who, declared=declared)
    with pytest.raises(Forbidden, match="辖区"), kernel.db.write() as s:
        assign(s, kernel.authz, user_id=target.id, role="grid_worker", node=grid.node("4502"), grantor=who, declared=declared)


def test_menu_shows_only_what_the_user_may_use(client: Any, login: Any) -> None:
    login("audit_admin", "45")
    page = client.get("/grid/")
    assert "区划与网格" in page.text
    assert "通知公告" not in page.text


def _declaring_plugin() -> Any:
    import types

    from yiwang.api import Permission, PluginSpec, RoleSpec, hookimpl

    hooks = types.SimpleNamespace()

    @hookimpl
    def yiwang_permissions() -> list[Permission]:
        return [Permission("ledger.view", "查看台账"), Permission("ledger.edit", "编辑台账")]

    @hookimpl
    def yiwang_roles() -> list[RoleSpec]:
        return [RoleSpec("ledger_keeper", "台账员")]

    @hookimpl
    def yiwang_grants() -> dict[str, list[str]]:
        return {"ledger_keeper": ["ledger.*"], "county_staff": ["ledger.view"]}

    hooks.yiwang_permissions, hooks.yiwang_roles, hooks.yiwang_grants = yiwang_permissions, yiwang_roles, yiwang_grants
    return PluginSpec(name="ledger", version="1.0", title="台账", api=">=1.0,<2", hooks=hooks)


LEDGER = _declaring_plugin()


@pytest.mark.with_plugins(LEDGER)
def test_declared_roles_and_default_grants_are_applied_once(kernel: Any) -> None:
    assert kernel.sync_declarations() > 0
    assert kernel.authz.role_allows("ledger_keeper", "ledger.edit")  # "ledger.*"
    assert kernel.authz.role_allows("county_staff", "ledger.view")
    assert not kernel.authz.role_allows("county_staff", "ledger.edit")
    with kernel.db.write() as s:  # an administrator revokes a default grant...
        kernel.authz.revoke(s, "county_staff", "ledger.view")
    assert kernel.sync_declarations() == 0  # ...and the next start does not bring it back
    assert not kernel.authz.role_allows("county_staff", "ledger.view")
