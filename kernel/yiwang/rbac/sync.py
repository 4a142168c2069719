"""Bring declared roles, permissions and default grants into the database.

Run at start-up (and by ``yiwang db upgrade`` and ``yiwang demo``). Idempotent: roles missing
from the database are created; each declared default grant is applied once and remembered, so
an administrator's later revocation stands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import Session

from yiwang.errors import PluginError, ValidationError
from yiwang.plugins.records import Permission, RoleSpec
from yiwang.rbac.models import DefaultGrantApplied, Role

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

ADMIN_KINDS = ("system", "security", "audit")


def declared_permissions(kernel: Kernel) -> dict[str, Permission]:
    out: dict[str, Permission] = {}
    for plugin, perm in kernel.host.collect_items("yiwang_permissions"):
        if plugin != "yiwang" and not perm.name.startswith(f"{plugin}."):
            raise PluginError(f"插件 {plugin} 声明的权限 {perm.name} 应以 {plugin}. 开头")
        if perm.name in out:
            raise PluginError(f"权限 {perm.name} 被重复声明")
        out[perm.name] = perm
    return out


def declared_roles(kernel: Kernel) -> dict[str, tuple[str, RoleSpec]]:
    out: dict[str, tuple[str, RoleSpec]] = {}
    for plugin, role in kernel.host.collect_items("yiwang_roles"):
        if role.name in out:
            raise PluginError(f"角色 {role.name} 被重复声明（{out[role.name][0]} 与 {plugin}）")
        if role.admin_kind and role.admin_kind not in ADMIN_KINDS:
            raise PluginError(f"角色 {role.name} 的 admin_kind 应为 {ADMIN_KINDS} 之一")
        out[role.name] = (plugin, role)
    return out


def sync(kernel: Kernel, session: Session) -> int:
    """Create missing roles and apply new default grants; returns grants applied now."""
    perms = declared_permissions(kernel)
    roles = declared_roles(kernel)
    existing = {r.name: r for r in session.scalars(select(Role))}
    for name, (plugin, spec) in roles.items():
        row = existing.get(name)
        if row is None:
            session.add(Role(name=name, title=spec.title, description=spec.description,
                             admin_kind=spec.admin_kind, declared_by=plugin))  # fmt: skip
        elif (row.title, row.description, row.admin_kind) != (spec.title, spec.description, spec.admin_kind):
            row.title, row.description, row.admin_kind = spec.title, spec.description, spec.admin_kind
            session.add(row)
    session.flush()
    known_roles = set(existing) | set(roles)
    applied = {(a.role, a.permission) for a in session.scalars(select(DefaultGrantApplied))}
    count = 0
    for plugin, grants in kernel.host.collect("yiwang_grants"):
        for role, names in grants.items():
            if role not in known_roles:
                raise PluginError(f"{plugin} 的默认授权引用了不存在的角色 {role}")
            for name in names:
                obj, _, act = name.rpartition(".")
                if act != "*" and name not in perms:
                    raise PluginError(f"{plugin} 的默认授权引用了未声明的权限 {name}")
                if (role, name) in applied:
                    continue
                try:
                    kernel.authz.grant(session, role, name)
                except ValidationError as exc:
                    raise PluginError(f"{plugin} 的默认授权 {role}: {name} 被拒绝: {exc}") from None
                session.add(DefaultGrantApplied(role=role, permission=name))
                applied.add((role, name))
                count += 1
    return count
