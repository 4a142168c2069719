"""Tables of the plugin host."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from yiwang.grid.models import utcnow


class PluginActivation(SQLModel, table=True):
    """An explicit on/off setting of a plugin at a node; it covers the node's subtree
    down to the next explicit setting. Absence means "inherit"."""

    __tablename__ = "plugin_activation"

    node_id: int = Field(foreign_key="grid_node.id", primary_key=True)
    plugin: str = Field(max_length=40, primary_key=True)
    active: bool
    updated_at: datetime = Field(default_factory=utcnow)


class KernelCounter(SQLModel, table=True):
    """Named counters shared by every worker (e.g. the activation epoch)."""

    __tablename__ = "kernel_counter"

    name: str = Field(max_length=60, primary_key=True)
    value: int = 0
