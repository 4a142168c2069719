"""Tables of the net: nodes (区划与网格) and the organisations that hang on them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from yiwang.pinyin import INITIALS_TYPE


def utcnow() -> datetime:
    return datetime.now(UTC)


#: Column type for a materialised path (and for plugins' copies of one). Subtree filters are
#: range scans that need bytewise order; PostgreSQL's default collation may not be bytewise.
PATH_TYPE = String(255).with_variant(String(255, collation="C"), "postgresql")


class Node(SQLModel, table=True):
    """A node of the net: an administrative division, a grid (网格) or a unit (微网格).

    ``path`` is the delimited chain of ancestor ids including this node (``/1/7/42/``), so
    "is X inside Y" is ``x.path.startswith(y.path)`` and a subtree is one index range scan.
    ``<level>_id`` columns hold the ancestor at each level (this node included) for grouping.
    """

    __tablename__ = "grid_node"
    __table_args__ = (Index("ix_grid_node_parent_code", "parent_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=20, unique=True)
    name: str = Field(max_length=100)
    #: Pinyin initials of the name (``xxtq`` for 西乡塘区), for the global search.
    initials: str = Field(default="", sa_column=Column(INITIALS_TYPE, nullable=False, server_default="", index=True))
    level: int = Field(index=True)
    kind: str = Field(default="", max_length=20)
    parent_id: int | None = Field(default=None, foreign_key="grid_node.id")
    path: str = Field(sa_column=Column(PATH_TYPE, nullable=False, unique=True))
    depth: int
    province_id: int | None = None
    city_id: int | None = None
    county_id: int | None = None
    township_id: int | None = None
    community_id: int | None = None
    grid_id: int | None = None
    #: Direct children; kept in the writing transaction, verified by ``grid recount``.
    child_count: int = 0
    #: Grids in the subtree (this node included when it is one).
    grid_count: int = 0
    geometry: str | None = None  # GeoJSON geometry, WGS-84
    lat: float | None = None
    lon: float | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Organisation(SQLModel, table=True):
    """An organisation on a node: 综治中心, 网格工作站, member department, mediation body.

    Cases move between organisations, not between nodes.
    """

    __tablename__ = "grid_org"
    __table_args__ = (UniqueConstraint("node_id", "name", name="uq_grid_org_node_name"),)

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="grid_node.id", index=True)
    kind: str = Field(max_length=20)
    name: str = Field(max_length=100)
    department: str = Field(default="", max_length=20)
    phone: str = Field(default="", max_length=40)
    address: str = Field(default="", max_length=200)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


#: Organisation kinds (``Organisation.kind``) and their Chinese names.
ORG_KINDS: dict[str, str] = {
    "centre": "综治中心",
    "station": "网格工作站",
    "department": "成员单位",
    "mediation": "调解组织",
}
