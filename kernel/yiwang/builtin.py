"""The kernel's own hook implementations, registered first as plugin ``yiwang``.

The kernel declares its tables, pages, menu and demo data through the same hooks plugins use,
so there is one mechanism to read and test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, SQLModel
from starlette.routing import BaseRoute

from yiwang.hookspecs import hookimpl
from yiwang.jobs.declarations import Job
from yiwang.plugins.records import MenuItem, Permission, RoleSpec

if TYPE_CHECKING:
    from yiwang.kernel import Kernel


@hookimpl
def yiwang_models() -> Sequence[type[SQLModel]]:
    from yiwang.audit.models import AuditCheckpoint, AuditEvent, AuditHead
    from yiwang.auth.models import ApiToken, AuthSession, LoginAttempt, User
    from yiwang.calendar.models import CalendarDay
    from yiwang.cases.models import Case, CaseCopy, CaseStep, RoutingRule, WorkflowVersion
    from yiwang.dicts.models import DictOverride
    from yiwang.files.models import StoredFile
    from yiwang.grid.models import Node, Organisation
    from yiwang.jobs.models import KernelJob
    from yiwang.notify.models import NotifyMessage
    from yiwang.plugins.models import KernelCounter, PluginActivation
    from yiwang.rbac.models import Assignment, DefaultGrantApplied, PolicyLine, Role
    from yiwang.stats.models import StatsRollup
    from yiwang.web.prefs import UiPref, UiSavedFilter

    return [
        Node, Organisation, PluginActivation, KernelCounter,
        User, AuthSession, LoginAttempt, ApiToken,
        Role, PolicyLine, DefaultGrantApplied, Assignment, CalendarDay,
        AuditEvent, AuditCheckpoint, AuditHead, StatsRollup, KernelJob, NotifyMessage,
        Case, CaseStep, CaseCopy, WorkflowVersion, RoutingRule, StoredFile, DictOverride, UiPref, UiSavedFilter,
    ]  # fmt: skip


@hookimpl
def yiwang_routes() -> Sequence[BaseRoute]:
    from yiwang import admin
    from yiwang.audit import pages as audit_pages
    from yiwang.auth import pages as auth_pages
    from yiwang.auth import totp
    from yiwang.calendar import pages as calendar_pages
    from yiwang.cases import api as cases_api
    from yiwang.cases import badge, dashboard
    from yiwang.cases import mobile as cases_mobile
    from yiwang.cases import pages as cases_pages
    from yiwang.dicts import pages as dict_pages
    from yiwang.jobs import pages as job_pages
    from yiwang.notify import pages as notify_pages
    from yiwang.web import about, pages, search
    from yiwang.web import map as grid_map

    return [
        *dashboard.routes(), *about.routes(), *search.routes(), *badge.routes(), *dict_pages.routes(), *grid_map.routes(),
        *cases_api.routes(), *pages.routes(), *auth_pages.routes(), *totp.routes(), *admin.routes(), *audit_pages.routes(),
        *job_pages.routes(), *calendar_pages.routes(), *notify_pages.routes(), *cases_pages.routes(),
        *cases_mobile.routes(),
    ]  # fmt: skip


@hookimpl
def yiwang_menu_items() -> Sequence[MenuItem]:
    return [
        MenuItem(label="工作台", href="/dashboard", icon="dashboard", order=1, section="首页", permission="cases.view"),
        MenuItem(label="区划与网格", href="/grid/", icon="tree", order=10, section="基础", permission="grid.view"),
        MenuItem(label="网格地图", href="/grid/map", icon="map", order=11, section="基础", permission="grid.view"),
        MenuItem(label="用户管理", href="/admin/users", icon="users", order=80, section="系统管理", permission="users.view"),
        MenuItem(label="角色与权限", href="/admin/roles", icon="key", order=81, section="系统管理", permission="roles.manage"),
        MenuItem(label="模块启用", href="/admin/plugins", icon="toggle", order=82, section="系统管理", permission="plugins.manage"),
        MenuItem(label="登录日志", href="/admin/logins", icon="log", order=83, section="系统管理", permission="security.manage"),
        MenuItem(label="审计日志", href="/audit/", icon="shield", order=84, section="系统管理", permission="audit.view"),
        MenuItem(label="定时任务", href="/admin/jobs", icon="clock", order=85, section="系统管理", permission="jobs.manage"),
        MenuItem(label="工作日历", href="/admin/calendar", icon="calendar", order=86, section="系统管理", permission="calendar.manage"),
        MenuItem(label="通知投递", href="/admin/notifications", icon="send", order=87, section="系统管理", permission="notify.manage"),
        MenuItem(label="我的消息", href="/notifications", icon="bell", order=5, section="个人"),
        MenuItem(label="事件办理", href="/cases/", icon="inbox", order=20, section="事件", permission="cases.view"),
        MenuItem(label="事件上报", href="/cases/new", icon="plus", order=21, section="事件", permission="cases.report"),
        MenuItem(label="手机版", href="/m/", icon="phone", order=6, section="个人", permission="cases.view"),
        MenuItem(label="流转规则", href="/admin/routing", icon="route", order=88, section="系统管理", permission="cases.routing"),
        MenuItem(label="数据字典", href="/admin/dictionaries", icon="list", order=89, section="系统管理", permission="dicts.manage"),
    ]


@hookimpl
def yiwang_dictionaries() -> Sequence[Any]:
    from yiwang.cases.models import SCALE, URGENCY
    from yiwang.plugins.records import Dictionary

    # Routing rules and clocks match these codes: a province renames and reorders, never adds.
    return [
        Dictionary("cases.urgency", "事件紧急程度", tuple(URGENCY.items()), description="事件上报与查询的紧急程度"),
        Dictionary("cases.scale", "事件规模", tuple(SCALE.items()), description="事件上报与流转规则的事件规模"),
    ]


@hookimpl
def yiwang_search(request: Any, q: str, limit: int) -> Sequence[Any]:
    from yiwang.web.search import kernel_hits

    return kernel_hits(request, q, limit)


@hookimpl
def yiwang_demo(kernel: Kernel, session: Session, scale: str, seed: int) -> None:
    from yiwang.auth.demo import create_demo_accounts
    from yiwang.cases.demo import build_demo_cases
    from yiwang.grid.demo import build_demo_net

    build_demo_net(kernel, session, scale=scale, seed=seed)
    create_demo_accounts(kernel, session)
    build_demo_cases(kernel, session, scale=scale, seed=seed)


@hookimpl
def yiwang_template_slot(slot: str, node: Any, request: Any) -> Any:
    """The footer of every page links the licence page (关于与许可)."""
    if slot != "layout.footer" or request.scope.get("yiwang.principal") is None:
        return None
    from markupsafe import Markup

    return Markup('<a href="/about">关于与许可</a>')


@hookimpl
def yiwang_node_moved(session: Session, node: Any, old_path: str) -> None:
    from yiwang.cases.hooks import node_moved as cases_moved
    from yiwang.files.check import node_moved as files_moved
    from yiwang.stats.rollup import node_moved

    # Every kernel table keeping a copy of node paths follows the move.
    node_moved(session, node.id, old_path, node.path)
    cases_moved(session, old_path, node.path)
    files_moved(session, old_path, node.path)


@hookimpl
def yiwang_personal_fields() -> Sequence[Any]:
    from yiwang.auth.models import User
    from yiwang.cases.models import Case
    from yiwang.notify.models import NotifyMessage
    from yiwang.privacy.registry import personal_fields_of

    return personal_fields_of(User, NotifyMessage, Case)


@hookimpl
def yiwang_jobs() -> Sequence[Job]:
    from yiwang.cases.clock import run_clock as cases_clock
    from yiwang.files.check import gc_job as files_gc
    from yiwang.jobs.kernel_jobs import audit_checkpoint
    from yiwang.notify.outbox import deliver_job

    return [
        Job("audit.checkpoint", "审计签名检查点", every=timedelta(minutes=5), run=audit_checkpoint),
        Job("notify.deliver", "通知投递与失败重试", every=timedelta(seconds=10), run=deliver_job),
        Job("files.gc", "清理未引用的附件文件", every=timedelta(hours=6), run=files_gc),
        Job("cases.clock", "事件时限监督（黄牌、红牌、超期）", every=timedelta(minutes=1), run=cases_clock),
    ]


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
        Permission("jobs.manage", "查看与运行定时任务"),
        Permission("calendar.manage", "维护工作日历（节假日与调休）"),
        Permission("dicts.manage", "维护数据字典（按省调整下拉选项）"),
        Permission("notify.manage", "查看与重发失败通知"),
        Permission("privacy.reveal", "查看敏感信息原文（须说明用途，留痕）", personal=True),
        *CASE_PERMISSIONS,
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
    return _with_cases({
        **{role: view for role in (*STAFF_ROLES, *WORK_ROLES)},
        "township_staff": [*view, "privacy.reveal"],
        "community_staff": [*view, "privacy.reveal"],
        "grid_worker": [*view, "privacy.reveal"],
        "system_admin": [*view, "grid.manage", "plugins.manage", "users.view", "users.manage", "roles.manage", "jobs.manage",
                         "calendar.manage", "notify.manage", "dicts.manage"],
        "security_admin": [*view, "users.view", "security.manage"],
        "audit_admin": [*view, "audit.view", "audit.export"],
    })


# --- cases (docs/cases.md) -----------------------------------------------------------------------

CASE_PERMISSIONS = (
    Permission("cases.view", "查看事件"),
    Permission("cases.report", "上报事件"),
    Permission("cases.accept", "受理、不予受理、上报上级"),
    Permission("cases.dispatch", "派遣、交办、抄告"),
    Permission("cases.handle", "处置、反馈、回退、申请延期"),
    Permission("cases.verify", "核查（通过或返工）"),
    Permission("cases.close", "结案"),
    Permission("cases.rate", "登记评价"),
    Permission("cases.reopen", "重开已结案事件"),
    Permission("cases.supervise", "督办、催办"),
    Permission("cases.extend", "审批延期申请"),
    Permission("cases.suspend", "挂起与恢复"),
    Permission("cases.routing", "维护分级流转规则"),
)
#: Default case grants by role (least privilege; an administrator adjusts them on the roles page).
CASE_GRANTS: dict[str, tuple[str, ...]] = {
    "grid_worker": ("view", "report", "handle"),
    "dept_handler": ("view", "handle"),
    "mediator": ("view", "report", "handle"),
    "community_staff": ("view", "report", "accept", "dispatch", "handle", "verify", "close", "rate", "suspend"),
    "township_staff": ("view", "report", "accept", "dispatch", "verify", "close", "rate", "reopen",
                       "supervise", "extend", "suspend", "routing"),
    "county_staff": ("view", "report", "accept", "dispatch", "verify", "close", "rate", "reopen",
                     "supervise", "extend", "suspend", "routing"),
    "city_staff": ("view", "accept", "dispatch", "verify", "close", "reopen", "supervise", "extend", "routing"),
    "province_staff": ("view", "accept", "dispatch", "verify", "close", "reopen", "supervise", "routing"),
    "dispatcher": ("view", "report", "accept", "dispatch", "verify", "close", "rate", "reopen",
                   "supervise", "extend", "suspend"),
    "leader": ("view", "supervise"),
}  # fmt: skip


@hookimpl
def yiwang_workflows() -> Sequence[Any]:
    from yiwang.cases.standard import STANDARD

    return [STANDARD]


@hookimpl
def yiwang_case_types() -> Sequence[Any]:
    from yiwang.cases.standard import KERNEL_TYPES

    return KERNEL_TYPES


@hookimpl
def yiwang_indicators() -> Sequence[Any]:
    from yiwang.cases.hooks import indicators

    return indicators()


def _with_cases(grants: dict[str, list[str]]) -> dict[str, list[str]]:
    for role, verbs in CASE_GRANTS.items():
        grants[role] = [*grants.get(role, []), *(f"cases.{v}" for v in verbs)]
    return grants
