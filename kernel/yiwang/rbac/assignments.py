"""Giving and taking roles at nodes, with the rules that keep it safe.

- The three administrator roles (system, security, audit) are disjoint: no account holds two
  different kinds.
- A grantor (an administrator acting in the web UI) may assign a role at a node only where they
  hold ``users.manage``, and only a role whose every permission they hold there themselves — so
  nobody can hand out more than they have, or above their own jurisdiction. The server operator
  (CLI) is not limited.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlmodel import Session, col

from yiwang.auth.principal import Principal
from yiwang.errors import Forbidden, ValidationError
from yiwang.grid.models import Node
from yiwang.rbac.authz import Authz
from yiwang.rbac.models import Assignment, Role


def _admin_kinds(session: Session, user_id: int) -> set[str]:
    rows = session.execute(
        select(col(Role.admin_kind)).join(Assignment, col(Assignment.role) == col(Role.name)).where(col(Assignment.user_id) == user_id)
    ).all()
    return {kind for (kind,) in rows if kind}


def check_grantor(
    authz: Authz,
    grantor: Principal,
    role: str,
    node: Node,
    declared: Iterable[str],
    admin_kinds: dict[str, str] | None = None,
) -> None:
    """Raise Forbidden unless ``grantor`` may give ``role`` at ``node``.

    ``admin_kinds`` maps role name → admin kind ("" for ordinary roles). A system
    administrator (users.manage through a role of kind "system") staffs their jurisdiction:
    they may give any ordinary role there. An administrator role is given only by a holder of
    the same kind. Anyone else may give only roles whose every permission they hold there.
    """
    kinds = admin_kinds or {}
    if not authz.allowed(grantor.grants, "users.manage", node.path):
        raise Forbidden("只能在自己的辖区内管理授权")
    covering = [g for g in grantor.grants if node.path.startswith(g.node_path)]
    grantor_kinds = {kinds.get(g.role, "") for g in covering if authz.role_allows(g.role, "users.manage")}
    target_kind = kinds.get(role, "")
    if target_kind:
        if target_kind not in grantor_kinds:
            raise Forbidden("管理员角色只能由同类管理员授予")
        return
    if "system" in grantor_kinds:
        return
    held = {p for p in declared if authz.allowed(grantor.grants, p, node.path)}
    needed = authz.permissions_of(role, declared)
    missing = needed - held
    if missing:
        raise Forbidden(f"不能授予超出自身权限的角色（缺少: {', '.join(sorted(missing))}）")


def assign(
    session: Session,
    authz: Authz,
    *,
    user_id: int,
    role: str,
    node: Node,
    grantor: Principal | None = None,
    declared: Iterable[str] = (),
) -> Assignment:
    """Give ``role`` at ``node`` to a user, in the caller's transaction."""
    row = session.get(Role, role)
    if row is None:
        raise ValidationError(f"角色 {role} 不存在")
    if grantor is not None:
        kinds = {name: kind for name, kind in session.execute(select(Role.name, Role.admin_kind))}  # type: ignore[call-overload]
        check_grantor(authz, grantor, role, node, declared, kinds)
    held_kinds = _admin_kinds(session, user_id)
    if row.admin_kind and held_kinds - {row.admin_kind}:
        raise ValidationError("系统管理员、安全管理员、审计管理员三种角色不能由同一账号兼任")
    exists = session.execute(
        select(col(Assignment.id)).where(
            col(Assignment.user_id) == user_id, col(Assignment.role) == role, col(Assignment.node_id) == node.id
        )
    ).first()
    if exists:
        raise ValidationError("该用户已在此节点拥有该角色")
    assignment = Assignment(user_id=user_id, role=role, node_id=node.id or 0,
                            created_by=grantor.user_id if grantor else None)  # fmt: skip
    session.add(assignment)
    session.flush()
    return assignment


def unassign(session: Session, *, user_id: int, role: str, node: Node, grantor: Principal | None = None,
             authz: Authz | None = None) -> bool:  # fmt: skip
    """Take a role away; takes effect at the user's very next request."""
    if grantor is not None and authz is not None and not authz.allowed(grantor.grants, "users.manage", node.path):
        raise Forbidden("只能在自己的辖区内管理授权")
    result = session.execute(
        delete(Assignment).where(
            Assignment.user_id == user_id, Assignment.role == role, Assignment.node_id == node.id  # type: ignore[arg-type]
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
