"""Factories for tests: nodes of the net by code, parents created on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

from yiwang.grid import tree
from yiwang.grid.levels import Level
from yiwang.grid.models import Node, Organisation
from yiwang.grid.service import add_nodes, move_node

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

_LEVEL_BY_LENGTH = {2: Level.PROVINCE, 4: Level.CITY, 6: Level.COUNTY, 9: Level.TOWNSHIP, 12: Level.COMMUNITY}
_NAMES = {
    Level.PROVINCE: "省{}", Level.CITY: "{}市", Level.COUNTY: "{}区", Level.TOWNSHIP: "{}街道",
    Level.COMMUNITY: "{}社区", Level.GRID: "第{}网格", Level.UNIT: "{}单元",
}  # fmt: skip


def level_of(code: str) -> Level:
    """Level implied by a canonical code's length (grids 14–15 digits, units longer)."""
    if len(code) in _LEVEL_BY_LENGTH:
        return _LEVEL_BY_LENGTH[len(code)]
    if len(code) in (14, 15):
        return Level.GRID
    return Level.UNIT


class GridFactory:
    """``grid.node("45010700100101")`` creates that grid and every missing ancestor.

    Parameters
    ----------
    kernel: the kernel whose database and hooks to use.
    """

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def node(self, code: str, name: str | None = None, parent: str | None = None) -> Node:
        with self.kernel.db.write() as s:
            existing = tree.find_code(s, code)
            if existing is not None:
                return existing
        level = level_of(code)
        if parent is None and level > Level.PROVINCE:
            parent = self._parent_code(code, level)
        if parent is not None:
            self.node(parent)
        with self.kernel.db.write() as s:
            [node_id] = add_nodes(
                self.kernel,
                s,
                [tree.NewNode(code, name or _NAMES[level].format(code[-2:]), level, parent)],
            )
            return tree.get(s, node_id)

    def _parent_code(self, code: str, level: Level) -> str:
        if level == Level.GRID:
            return code[:12]
        if level == Level.UNIT:
            for cut in (2, 3):
                candidate = code[:-cut]
                if len(candidate) in (14, 15):
                    return candidate
            raise ValueError(f"cannot infer the grid of unit {code}")
        lengths = sorted(_LEVEL_BY_LENGTH)
        return code[: lengths[lengths.index(len(code)) - 1]]

    def org(self, node: Node, name: str, kind: str = "centre", department: str = "") -> Organisation:
        with self.kernel.db.write() as s:
            org = Organisation(node_id=node.id or 0, name=name, kind=kind, department=department)
            s.add(org)
            s.flush()
            return org

    def move(self, code: str, new_parent: str, new_code: str | None = None) -> Node:
        """Move a subtree the way ``yiwang grid move`` does (data hooks included)."""
        with self.kernel.db.write() as s:
            move_node(self.kernel, s, tree.by_code(s, code), tree.by_code(s, new_parent), new_code)
        return self.get(new_code or code)

    def get(self, code: str) -> Node:
        with self.kernel.db.read() as s:
            return tree.by_code(s, code)
