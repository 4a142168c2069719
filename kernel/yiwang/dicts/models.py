"""A province's changes to a declared dictionary (字典管理): one row per changed or added item."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from yiwang.grid.models import utcnow


class DictOverride(SQLModel, table=True):
    """An item of ``dictionary`` as the province (root node ``node_id``) has it: a new label,
    a position, switched off — or, for an item the declaration lacks, added."""

    __tablename__ = "kernel_dict_override"
    __table_args__ = (UniqueConstraint("node_id", "dictionary", "code", name="uq_kernel_dict_override"),)

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="grid_node.id", index=True)
    dictionary: str = Field(max_length=60)
    code: str = Field(max_length=30)
    label: str = Field(max_length=60)
    position: int = 0
    active: bool = True
    updated_by: int | None = None
    updated_at: datetime = Field(default_factory=utcnow)
