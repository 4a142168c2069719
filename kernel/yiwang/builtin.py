"""The kernel's own hook implementations, registered first as plugin ``yiwang``.

The kernel declares its tables, pages, menu and demo data through the same hooks plugins use,
so there is one mechanism to read and test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, SQLModel
from starlette.routing import BaseRoute

from yiwang.hookspecs import hookimpl
from yiwang.plugins.records import MenuItem, Permission, RoleSpec

if TYPE_CHECKING:
    from yiwang.kernel import Kernel


@hookimpl
def yiwang_models() -> Sequence[type[SQLModel]]:
    from yiwang.audit.models import AuditCheckpoint, AuditEvent, AuditHead
    from yiwang.auth.models import ApiToken, AuthSession, LoginAttempt, User
    from yiwang.grid.models import Node, Organisation
    from yiwang.plugins.models import KernelCounter, PluginActivation
    from yiwang.rbac.models import Assignment, DefaultGrantApplied, PolicyLine, Role
    from yiwang.stats.models import StatsRollup

    return [
        Node, Organisation, PluginActivation, KernelCounter,
        User, AuthSession, LoginAttempt, ApiToken,
        Role, PolicyLine, DefaultGrantApplied, Assignment,
        AuditEvent, AuditCheckpoint, AuditHead, StatsRollup,
    ]  # fmt: skip


@hookimpl
def yiwang_routes() -> Sequence[BaseRoute]:
    from yiwang import admin
    from yiwang.audit import pages as audit_pages
    from yiwang.auth import pages as auth_pages
    from yiwang.auth import totp
    from yiwang.web import pages

    return [
        *pages.routes(), *auth_pages.routes(), *totp.routes(), *admin.routes(), *audit_pages.routes(),
    ]  # fmt: skip


@hookimpl
def yiwang_menu_items() -> Sequence[MenuItem]:
    return [
        MenuItem(label="区划与网格", href="/grid/", icon="tree", order=10, section="基础", permission="grid.view"),
        MenuItem(label="用户管理", href="/admin/users", icon="users", order=80, section="系统管理", permission="users.view"),
        MenuItem(label="角色与权限", href="/admin/roles", icon="key", order=81, section="系统管理", permission="roles.manage"),
        MenuItem(label="模块启用", href="/admin/plugins", icon="toggle", order=82, section="系统管理", permission="plugins.manage"),
        MenuItem(label="登录日志", href="/admin/logins", icon="log", order=83, section="系统管理", permission="security.manage"),
        MenuItem(label="审计日志", href="/audit/", icon="shield", order=84, section="系统管理", permission="audit.view"),
    ]


@hookimpl
def yiwang_demo(kernel: Kernel, session: Session, scale: str, seed: int) -> None:
    from yiwang.auth.demo import create_demo_accounts
    from yiwang.grid.demo import build_demo_net

    build_demo_net(kernel, session, scale=scale, seed=seed)
    create_demo_accounts(kernel, session)


@hookimpl
def yiwang_node_moved(session: Session, node: Any, old_path: str) -> None:
    from yiwang.stats.rollup import node_moved

    node_moved(session, node.id, old_path, node.path)


@hookimpl
def yiwang_personal_fields() -> Sequence[Any]:
    from yiwang.auth.models import User
    from yiwang.privacy.registry import personal_fields_of

    return personal_fields_of(User)


# --- authorisation declarations ------------------------------------------------------------------

STAFF_ROLES = ("province_staff", "city_staff", "county_staff", "township_staff", "community_staff")
WORK_ROLES = ("dispatcher", "grid_worker", "dept_handler", "mediator", "leader")


@hookimpl
def yiwang_permissions() -> Sequence[Permission]:
    return [
        Permission("grid.view", "查看区划与网格"),
        Permission("grid.manage", "管理区划与网格（导入、移动）"),
        Permission("plugins.manage", "按地区启用或停用模块"),
        Permission("users.view", "查看用户"),
        Permission("users.manage", "管理用户与授权"),
        Permission("roles.manage", "管理角色与权限"),
        Permission("security.manage", "安全管理（解锁账号、结束会话、登录日志）"),
        Permission("audit.view", "查看审计日志"),
        Permission("audit.export", "导出审计日志"),
        Permission("privacy.reveal", "查看敏感信息原文（须说明用途，留痕）", personal=True),
    ]


@hookimpl
def yiwang_roles() -> Sequence[RoleSpec]:
    return [
        RoleSpec("province_staff", "省级综治中心工作人员"),
        RoleSpec("city_staff", "市级综治中心工作人员"),
        RoleSpec("county_staff", "县级综治中心工作人员"),
        RoleSpec("township_staff", "乡镇（街道）综治中心工作人员"),
        RoleSpec("community_staff", "社区（村）网格工作站工作人员"),
        RoleSpec("dispatcher", "调度员", "受理、派遣与督办事件"),
        RoleSpec("grid_worker", "网格员", "巡查网格、上报与处置事件"),
        RoleSpec("dept_handler", "部门办理人员", "成员单位办理交办事件"),
        RoleSpec("mediator", "调解员", "矛盾纠纷调解"),
        RoleSpec("leader", "领导", "只读查看辖区概况与统计"),
        RoleSpec("system_admin", "系统管理员", "用户、区划、模块与角色管理", admin_kind="system"),
        RoleSpec("security_admin", "安全管理员", "账号安全与会话管理", admin_kind="security"),
        RoleSpec("audit_admin", "审计管理员", "查看与导出审计日志，不接触个人信息", admin_kind="audit"),
    ]


@hookimpl
def yiwang_grants() -> Mapping[str, Sequence[str]]:
    view = ["grid.view"]
    return {
        **{role: view for role in (*STAFF_ROLES, *WORK_ROLES)},
        "township_staff": [*view, "privacy.reveal"],
        "community_staff": [*view, "privacy.reveal"],
        "grid_worker": [*view, "privacy.reveal"],
        "system_admin": [*view, "grid.manage", "plugins.manage", "users.view", "users.manage", "roles.manage"],
        "security_admin": [*view, "users.view", "security.manage"],
        "audit_admin": [*view, "audit.view", "audit.export"],
    }
