"""角色与权限: roles with their permissions; grant, revoke, custom roles.

A role's grants apply in every jurisdiction, so these pages need ``roles.manage`` over the
whole net (at every root), and nobody changes the grants of a role they hold themselves
(directly or through inheritance) — that would be granting oneself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from yiwang import audit
from yiwang.admin.common import actor, read_form, record_denied, render, require_global, who
from yiwang.auth.principal import Principal
from yiwang.errors import NotFound, ValidationError
from yiwang.kernel import Kernel
from yiwang.plugins.host import KERNEL
from yiwang.rbac.authz import role_closure
from yiwang.rbac.guard import requires
from yiwang.rbac.models import Role
from yiwang.web.context import current_node, kernel_of

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
KIND_LABELS = {"system": "系统管理员", "security": "安全管理员", "audit": "审计管理员"}


@dataclass(frozen=True)
class PermissionState:
    """A declared permission as one role has it."""

    name: str
    title: str
    personal: bool
    granted: bool
    #: Granted by a line naming it (so revocable here), not only by a wildcard or inheritance.
    direct: bool


def _groups(kernel: Kernel, role: str | None, lines: list[str]) -> list[tuple[str, list[PermissionState]]]:
    """Declared permissions grouped by declaring plugin (kernel first), with ``role``'s state."""
    out: dict[str, list[PermissionState]] = {}
    for plugin, perm in kernel.host.collect_items("yiwang_permissions"):
        title = "平台基础" if plugin == KERNEL else kernel.host.specs[plugin].title
        granted = role is not None and kernel.authz.role_allows(role, perm.name)
        out.setdefault(title, []).append(
            PermissionState(perm.name, perm.title, perm.personal, granted, perm.name in lines)
        )
    return list(out.items())


def _role(session: Session, name: str) -> Role:
    row = session.get(Role, name)
    if row is None:
        raise NotFound(f"角色 {name} 不存在")
    return row


def _own_roles(session: Session, p: Principal) -> set[str]:
    """Roles whose grants reach the principal: those they hold and those these inherit from."""
    out: set[str] = set()
    for g in p.grants:
        out |= role_closure(session, g.role, up=True)
    return out


def _kind(row: Role) -> str:
    if row.admin_kind:
        return KIND_LABELS.get(row.admin_kind, row.admin_kind)
    return "内置" if row.declared_by else "自定义"


@requires("roles.manage")
def role_list(request: Request) -> Response:
    return _list(request, {}, [])


def _list(request: Request, values: dict[str, str], problems: list[str], status: int = 200) -> Response:
    kernel = kernel_of(request)
    with kernel.db.read() as s:
        require_global(request, s, "roles.manage")
        roles = list(s.scalars(select(Role).order_by(Role.declared_by == "", Role.name)))  # type: ignore[arg-type]
    rows: list[dict[str, Any]] = []
    for r in roles:
        groups = [(title, [p.title for p in perms if p.granted]) for title, perms in _groups(kernel, r.name, [])]
        rows.append({"role": r, "kind": _kind(r), "groups": [(t, g) for t, g in groups if g]})
    return render(
        request,
        "admin/roles.html",
        {"rows": rows, "values": values, "problems": problems},
        status_code=status,
        node=current_node(request),
    )


@requires("roles.manage")
async def role_create(request: Request) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_create, request, form)


def _create(request: Request, form: dict[str, str]) -> Response:
    kernel = kernel_of(request)
    name, title = form.get("name", ""), form.get("title", "")
    description = form.get("description", "")
    values = {"name": name, "title": title, "description": description}
    problems = []
    if not ROLE_NAME.match(name):
        problems.append("角色标识须以小写字母开头，由 2–40 位小写字母、数字或下划线组成")
    if not title or len(title) > 60:
        problems.append("请填写角色名称（不超过 60 个字）")
    if len(description) > 200:
        problems.append("说明不能超过 200 个字")
    with kernel.db.write() as s:
        require_global(request, s, "roles.manage")
        if not problems and s.get(Role, name) is not None:
            problems.append(f"角色标识 {name} 已存在")
        if not problems:
            s.add(Role(name=name, title=title, description=description))
            audit.record(s, "admin.role.create", actor=actor(request), object_type="role", object_id=name,
                         detail={"title": title})  # fmt: skip
    if problems:
        return _list(request, values, problems, 400)
    return RedirectResponse(request.url_for("admin:role", role=name), status_code=303)


def _detail(request: Request, name: str, problems: list[str], status: int = 200, message: str = "") -> Response:
    kernel = kernel_of(request)
    p = who(request)
    with kernel.db.read() as s:
        require_global(request, s, "roles.manage")
        row = _role(s, name)
        lines = kernel.authz.grants_of(s).get(name, [])
        own = name in _own_roles(s, p)
    return render(
        request,
        "admin/role.html",
        {"role": row, "kind": _kind(row), "groups": _groups(kernel, name, lines), "own": own,
         "problems": problems, "message": message},
        status_code=status,
        node=current_node(request),
    )  # fmt: skip


@requires("roles.manage")
def role_detail(request: Request) -> Response:
    return _detail(request, request.path_params["role"], [])


@requires("roles.manage")
async def role_grant(request: Request) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_change, request, form, True)


@requires("roles.manage")
async def role_revoke(request: Request) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_change, request, form, False)


def _change(request: Request, form: dict[str, str], grant: bool) -> Response:
    """Grant or revoke one declared permission; applies from the very next request."""
    kernel = kernel_of(request)
    p = who(request)
    name: str = request.path_params["role"]
    permission = form.get("permission", "")
    action = "admin.grant" if grant else "admin.revoke"
    declared = {perm.name for _, perm in kernel.host.collect_items("yiwang_permissions")}
    problem = ""
    refused = False
    with kernel.db.write() as s:
        require_global(request, s, "roles.manage")
        _role(s, name)
        if permission not in declared:
            problem = "请选择一项已声明的权限"
        elif name in _own_roles(s, p):
            problem, refused = "不能修改自己所持角色（含其继承的角色）的权限", True
        else:
            try:
                changed = kernel.authz.grant(s, name, permission) if grant else kernel.authz.revoke(s, name, permission)
            except ValidationError as exc:
                problem, refused = str(exc), True
            else:
                if changed:
                    audit.record(s, action, actor=actor(request), object_type="role", object_id=name,
                                 detail={"permission": permission})  # fmt: skip
    if problem:
        if refused:
            record_denied(request, action, "role", name, problem, {"permission": permission})
        return _detail(request, name, [problem], 403 if refused else 400)
    kernel.authz.reload()
    return RedirectResponse(request.url_for("admin:role", role=name), status_code=303)
