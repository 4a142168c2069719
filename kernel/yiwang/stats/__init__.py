"""Statistics: per-node rollups of the indicators plugins declare (docs/stats.md).

Write with ``add``/``move`` in the unit of work that writes the records (applied at commit, in
the same transaction); read with ``value``/``by_key``/``children``; verify and repair with
``recount`` (``yiwang stats recount``).
"""

from __future__ import annotations

from yiwang.stats.indicators import Indicator, day_key, declared_indicators
from yiwang.stats.recount import Discrepancy, recount
from yiwang.stats.rollup import (
    add,
    by_key,
    children,
    children_days,
    days,
    flush,
    move,
    pending,
    value,
)

__all__ = [
    "Discrepancy",
    "Indicator",
    "add",
    "by_key",
    "children",
    "children_days",
    "day_key",
    "days",
    "declared_indicators",
    "flush",
    "move",
    "pending",
    "recount",
    "value",
]
