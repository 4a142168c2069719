"""Tables of authorisation: roles, casbin policy lines, role assignments at nodes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from yiwang.grid.models import utcnow


class Role(SQLModel, table=True):
    """A role (角色). ``admin_kind`` marks the three disjoint administrators."""

    __tablename__ = "rbac_role"

    name: str = Field(max_length=60, primary_key=True)
    title: str = Field(max_length=60)
    description: str = Field(default="", max_length=200)
    #: "" or one of "system", "security", "audit": no account may hold two different kinds.
    admin_kind: str = Field(default="", max_length=10)
    #: Declared by the kernel or a plugin (vs created by an administrator).
    declared_by: str = Field(default="", max_length=40)


class PolicyLine(SQLModel, table=True):
    """A casbin policy line: ``p, role, object, action`` or ``g, role, parent_role``."""

    __tablename__ = "rbac_policy"
    __table_args__ = (UniqueConstraint("ptype", "v0", "v1", "v2", name="uq_rbac_policy_line"),)

    id: int | None = Field(default=None, primary_key=True)
    ptype: str = Field(max_length=2)
    v0: str = Field(max_length=60)
    v1: str = Field(max_length=60)
    v2: str = Field(default="", max_length=60)


class DefaultGrantApplied(SQLModel, table=True):
    """A declared default grant already applied once; an administrator's later revocation of
    it is therefore respected, not re-applied at the next start."""

    __tablename__ = "rbac_default_applied"

    role: str = Field(max_length=60, primary_key=True)
    permission: str = Field(max_length=120, primary_key=True)


class Assignment(SQLModel, table=True):
    """A role held by a user at a node; it covers that node's subtree (辖区)."""

    __tablename__ = "rbac_assignment"
    __table_args__ = (UniqueConstraint("user_id", "role", "node_id", name="uq_rbac_assignment"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="auth_user.id", index=True)
    role: str = Field(foreign_key="rbac_role.name", max_length=60)
    node_id: int = Field(foreign_key="grid_node.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: int | None = None
