"""The grid hierarchy (the net): levels, codes, nodes, organisations, roster import/export."""

from __future__ import annotations

from yiwang.grid.levels import Level
from yiwang.grid.models import Node, Organisation

__all__ = ["Level", "Node", "Organisation"]
