"""The notice table. ``node_path`` copies the posting node's path so the notices that reach a
node (those posted at any of its ancestors) are found by an indexed IN on ids, and the notices
posted inside a subtree by one range scan."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel

from yiwang.api import PATH_TYPE

URGENCIES = {"normal": "普通", "important": "重要", "urgent": "紧急"}


def _now() -> datetime:
    return datetime.now(UTC)


class Notice(SQLModel, table=True):
    """A notice (通知公告) posted at a node."""

    __tablename__ = "notice_notice"

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="grid_node.id", index=True)
    # PATH_TYPE: bytewise order on every backend, so subtree filters are correct range scans.
    node_path: str = Field(sa_type=PATH_TYPE, index=True)
    title: str = Field(max_length=200)
    body: str = Field(default="")
    urgency: str = Field(default="normal", max_length=20)
    author: str = Field(default="", max_length=60)
    published_at: datetime = Field(default_factory=_now, index=True)
