"""Tables of the org plugin. Every table carries ``node_path``, a copy of its node's path
(PATH_TYPE), so lists are scoped by one range scan and follow moves via ``move_paths``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from yiwang.api import PATH_TYPE, blind_index_field, personal_field, sensitive_field

#: Field norm: grid workers per grid (outside it the grid gets a warning badge, never a refusal).
WORKERS_PER_GRID = (2, 3)
#: Expected patrols per grid per day.
PATROLS_PER_DAY = 2


def _now() -> datetime:
    return datetime.now(UTC)


class Staff(SQLModel, table=True):
    """A staff member of an organisation (kernel table ``grid_org``)."""

    __tablename__ = "org_staff"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="grid_org.id", index=True)
    node_id: int = Field(foreign_key="grid_node.id", index=True)
    node_path: str = Field(sa_type=PATH_TYPE, index=True)
    name: str = personal_field("name", "姓名", max_length=60)
    phone: str | None = sensitive_field("phone", "联系电话", default=None)
    phone_bidx: str | None = blind_index_field()
    post: str = Field(default="", max_length=60)
    active: bool = True
    created_at: datetime = Field(default_factory=_now)


class Worker(SQLModel, table=True):
    """A grid worker (网格员) registered at a node, optionally linked to a login user."""

    __tablename__ = "org_worker"

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="grid_node.id", index=True)
    node_path: str = Field(sa_type=PATH_TYPE, index=True)
    name: str = personal_field("name", "姓名", max_length=60)
    phone: str | None = sensitive_field("phone", "联系电话", default=None)
    phone_bidx: str | None = blind_index_field()
    user_id: int | None = Field(default=None, foreign_key="auth_user.id", index=True)
    active: bool = True
    created_at: datetime = Field(default_factory=_now)


class GridAssignment(SQLModel, table=True):
    """A worker ↔ grid link (a worker serves 1..n grids)."""

    __tablename__ = "org_grid_assignment"
    __table_args__ = (UniqueConstraint("worker_id", "grid_id", name="uq_org_grid_assignment"),)

    id: int | None = Field(default=None, primary_key=True)
    worker_id: int = Field(foreign_key="org_worker.id", index=True)
    grid_id: int = Field(foreign_key="grid_node.id", index=True)
    node_path: str = Field(sa_type=PATH_TYPE, index=True)


class Device(SQLModel, table=True):
    """A 综治专用手机 held by a worker."""

    __tablename__ = "org_device"

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="grid_node.id", index=True)
    node_path: str = Field(sa_type=PATH_TYPE, index=True)
    imei: str = Field(max_length=40, unique=True)
    phone_number: str | None = personal_field("phone", "设备号码", default=None, max_length=20)
    worker_id: int | None = Field(default=None, foreign_key="org_worker.id", index=True)


class Patrol(SQLModel, table=True):
    """A patrol (巡查) of a worker in one grid; ``node_path`` is the grid's path."""

    __tablename__ = "org_patrol"

    id: int | None = Field(default=None, primary_key=True)
    worker_id: int = Field(foreign_key="org_worker.id", index=True)
    grid_id: int = Field(foreign_key="grid_node.id", index=True)
    node_path: str = Field(sa_type=PATH_TYPE, index=True)
    started_at: datetime = Field(default_factory=_now, index=True)
    ended_at: datetime | None = None
    point_count: int = 0


class PatrolPoint(SQLModel, table=True):
    """A GPS check-in of a patrol, stored in WGS-84."""

    __tablename__ = "org_patrol_point"

    id: int | None = Field(default=None, primary_key=True)
    patrol_id: int = Field(foreign_key="org_patrol.id", index=True)
    lat: float
    lon: float
    at: datetime
    #: The coordinate system the phone sent ("wgs84" or "gcj02", converted on the way in).
    source: str = Field(default="wgs84", max_length=10)
