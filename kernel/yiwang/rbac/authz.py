"""Authorisation: casbin decides *what* a role may do, the grid decides *where*.

A decision "may user U do P at node N" is: some assignment (U, role, A) has A's path as a
prefix of N's path, and casbin allows (role, object, action) for P = "<object>.<action>".
Role decisions are cached per (role, permission) and dropped whenever the policy changes — in
this worker at once, in others at their next request (``check_epoch``, one primary-key read).
Data scope for lists is an SQL path-prefix filter, never a per-row check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casbin
from casbin import persist
from sqlalchemy import ColumnElement, delete, false, or_, select
from sqlmodel import Session, col

from yiwang.db import Database
from yiwang.errors import ValidationError
from yiwang.grid.tree import within
from yiwang.plugins.models import KernelCounter
from yiwang.rbac.models import PolicyLine, Role
from yiwang.settings import config_dir

EPOCH = "rbac_policy_epoch"


def split(permission: str) -> tuple[str, str]:
    """``"notice.post"`` → ``("notice", "post")``."""
    obj, _, act = permission.rpartition(".")
    if not obj or not act:
        raise ValidationError(f"权限名 {permission!r} 应为 <对象>.<动作>，如 notice.post")
    return obj, act


class _DbAdapter(persist.Adapter):  # type: ignore[misc]
    """casbin adapter over our ``rbac_policy`` table (read side; writes go through Authz)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def load_policy(self, model: Any) -> None:
        with self.db.read() as s:
            rows = s.execute(select(PolicyLine.ptype, PolicyLine.v0, PolicyLine.v1, PolicyLine.v2)).all()  # type: ignore[call-overload]
        for ptype, v0, v1, v2 in rows:
            values = [v0, v1] + ([v2] if ptype == "p" else [])
            persist.load_policy_line(", ".join([ptype, *values]), model)


@dataclass(frozen=True)
class Grant:
    """One of a principal's role assignments, with its node."""

    assignment_id: int
    role: str
    node_id: int
    node_path: str
    node_code: str
    node_name: str
    node_level: int


class Authz:
    """Role decisions for one deployment.

    Parameters
    ----------
    db: the database holding the policy.
    model_file: casbin model; default ``config/rbac_model.conf``.
    personal: the names of declared permissions marked ``personal`` (asked at each change):
        no role of the audit administrator's kind may ever get one, directly, by a wildcard
        or by inheritance.
    """

    def __init__(
        self,
        db: Database,
        model_file: Path | None = None,
        personal: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self.db = db
        self.model_file = model_file or config_dir() / "rbac_model.conf"
        self.personal = personal or (lambda: ())
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], bool] = {}
        self._epoch: int | None = None
        self._enforcer: casbin.Enforcer | None = None

    # --- policy ---------------------------------------------------------------------------------

    def reload(self) -> None:
        enforcer = casbin.Enforcer(str(self.model_file), _DbAdapter(self.db))
        with self.db.read() as s:
            epoch = _read_epoch(s)
        with self._lock:
            self._enforcer = enforcer
            self._cache = {}
            self._epoch = epoch

    def check_epoch(self) -> None:
        """Reload when another worker changed the policy (call once per request).

        One prebuilt primary-key read on a bare connection: it runs on every request, and an
        ORM session plus a freshly built ``select`` cost three times the query itself."""
        if self._enforcer is None:
            self.reload()
            return
        with self.db.engine.connect() as conn:
            value = conn.execute(_EPOCH_VALUE).scalar()
        if int(value or 0) != self._epoch:
            self.reload()

    def role_allows(self, role: str, permission: str) -> bool:
        key = (role, permission)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if self._enforcer is None:
            self.reload()
        assert self._enforcer is not None
        obj, act = split(permission)
        allowed = bool(self._enforcer.enforce(role, obj, act))
        self._cache[key] = allowed
        return allowed

    def permissions_of(self, role: str, declared: Iterable[str]) -> set[str]:
        return {p for p in declared if self.role_allows(role, p)}

    # --- decisions with the grid ----------------------------------------------------------------

    def allowed(self, grants: Sequence[Grant], permission: str, node_path: str | None) -> bool:
        """May a holder of ``grants`` exercise ``permission`` at the node at ``node_path``?

        ``node_path`` None asks "anywhere in their jurisdiction" (e.g. to show a menu item).
        """
        for g in grants:
            if node_path is not None and not node_path.startswith(g.node_path):
                continue
            if self.role_allows(g.role, permission):
                return True
        return False

    def scope_paths(self, grants: Sequence[Grant], permission: str) -> list[str]:
        """The subtree roots where ``permission`` holds, without nested duplicates."""
        paths = sorted({g.node_path for g in grants if self.role_allows(g.role, permission)})
        out: list[str] = []
        for p in paths:
            if not any(p.startswith(q) for q in out):
                out.append(p)
        return out

    def scope_filter(self, grants: Sequence[Grant], permission: str, path_column: Any) -> ColumnElement[bool]:
        """SQL condition: ``path_column`` lies where ``permission`` holds (false when nowhere)."""
        paths = self.scope_paths(grants, permission)
        if not paths:
            return false()
        return or_(*(within(path_column, p) for p in paths))

    # --- changing the policy (in the caller's transaction; call reload() after commit) ---------

    def grant(self, session: Session, role: str, permission: str) -> bool:
        obj, act = split(permission)
        self._refuse_personal_to_audit(session, role, {obj: {act}})
        return _add_line(session, "p", role, obj, act)

    def revoke(self, session: Session, role: str, permission: str) -> bool:
        obj, act = split(permission)
        result = session.execute(
            delete(PolicyLine).where(
                PolicyLine.ptype == "p", PolicyLine.v0 == role, PolicyLine.v1 == obj, PolicyLine.v2 == act  # type: ignore[arg-type]
            )
        )
        bump_epoch(session)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def inherit(self, session: Session, role: str, parent: str) -> bool:
        """``role`` gets every permission of ``parent``."""
        held: dict[str, set[str]] = {}
        for ancestor in role_closure(session, parent, up=True):
            for obj, act in session.execute(
                select(PolicyLine.v1, PolicyLine.v2).where(PolicyLine.ptype == "p", PolicyLine.v0 == ancestor)  # type: ignore[call-overload]
            ):
                held.setdefault(obj, set()).add(act)
        self._refuse_personal_to_audit(session, role, held)
        return _add_line(session, "g", role, parent, "")

    def _refuse_personal_to_audit(self, session: Session, role: str, grants: Mapping[str, set[str]]) -> None:
        """The audit administrator reads the trail and nothing personal (MLPS / PIPL): refuse
        ``grants`` (object → actions, ``*`` allowed) when they would reach a personal permission
        for a role of the audit kind — ``role`` itself or any role inheriting from it."""
        reached = [
            name for name in self.personal()
            if (pair := split(name))[0] in grants and ({pair[1], "*"} & grants[pair[0]])
        ]  # fmt: skip
        if not reached:
            return
        audit_roles = set(
            session.scalars(select(Role.name).where(Role.admin_kind == "audit"))  # type: ignore[call-overload]
        )
        hit = audit_roles & role_closure(session, role, up=False)
        if hit:
            raise ValidationError(
                f"审计管理员角色（{'、'.join(sorted(hit))}）不能获得涉及个人信息的权限: {'、'.join(sorted(reached))}"
            )

    def grants_of(self, session: Session) -> Mapping[str, list[str]]:
        rows = session.execute(
            select(col(PolicyLine.v0), col(PolicyLine.v1), col(PolicyLine.v2)).where(col(PolicyLine.ptype) == "p")
        ).all()
        out: dict[str, list[str]] = {}
        for role, obj, act in rows:
            out.setdefault(role, []).append(f"{obj}.{act}")
        return out


def role_closure(session: Session, role: str, *, up: bool) -> set[str]:
    """``role`` and the roles it inherits from (``up``), or the roles inheriting from it."""
    edges = session.execute(select(PolicyLine.v0, PolicyLine.v1).where(PolicyLine.ptype == "g")).all()  # type: ignore[call-overload]
    out, todo = {role}, [role]
    while todo:
        current = todo.pop()
        for child, parent in edges:
            nxt = parent if up and child == current else child if not up and parent == current else None
            if nxt is not None and nxt not in out:
                out.add(nxt)
                todo.append(nxt)
    return out


_EPOCH_VALUE = select(col(KernelCounter.value)).where(col(KernelCounter.name) == EPOCH)


def _read_epoch(session: Session) -> int:
    return int(session.execute(_EPOCH_VALUE).scalar() or 0)


def _add_line(session: Session, ptype: str, v0: str, v1: str, v2: str) -> bool:
    exists = session.execute(
        select(col(PolicyLine.id)).where(
            col(PolicyLine.ptype) == ptype, col(PolicyLine.v0) == v0, col(PolicyLine.v1) == v1, col(PolicyLine.v2) == v2
        )
    ).first()
    if exists:
        return False
    session.add(PolicyLine(ptype=ptype, v0=v0, v1=v1, v2=v2))
    session.flush()
    bump_epoch(session)
    return True


def bump_epoch(session: Session) -> None:
    from yiwang.db.epoch import bump_counter

    bump_counter(session, EPOCH)
