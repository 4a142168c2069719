"""Changes to the net that other modules must hear about: tree writes plus data hooks.

``tree`` holds the data operations; these wrappers add the ``yiwang_node_*`` hook calls, inside
the same transaction, so every writer (admin pages, roster import, demo) behaves the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import Session, col

from yiwang.grid import tree
from yiwang.grid.models import Node

if TYPE_CHECKING:
    from yiwang.kernel import Kernel


def add_nodes(
    kernel: Kernel,
    session: Session,
    new: Sequence[tree.NewNode],
    labels: Sequence[str] | None = None,
) -> list[int]:
    """Create nodes (parents first) and tell every enabled plugin, parents first.

    ``labels`` name each row in error messages (e.g. "第 5 行").
    """
    ids = tree.bulk_create(session, new, kernel.settings.grid_codes, labels)
    hook = kernel.hook.yiwang_node_created
    if hook.get_hookimpls():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            stmt = select(Node).where(col(Node.id).in_(chunk)).order_by(col(Node.depth), col(Node.id))
            for node in session.scalars(stmt):
                hook(session=session, node=node)
    return ids


def move_node(
    kernel: Kernel, session: Session, node: Node, new_parent: Node, new_code: str | None = None
) -> int:
    """Move a subtree and tell every enabled plugin; returns the number of nodes moved."""
    old_path = node.path
    moved = tree.move(session, node, new_parent, kernel.settings.grid_codes, new_code)
    fresh = tree.get(session, node.id or 0)
    kernel.hook.yiwang_node_moved(session=session, node=fresh, old_path=old_path, moved=moved)
    return moved
