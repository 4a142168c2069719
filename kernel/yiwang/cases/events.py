"""After-commit case events: plugins hear of a change only once it is durable.

The engine queues ``(case, action, step)`` on the session; when the outermost transaction
commits, ``yiwang_case_changed`` is called for each, at the case's node (plugins active there).
A rolled-back savepoint drops what it queued. A failing plugin is logged, never re-raised: the
change is already committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from yiwang.db.queue import current_transaction, drop_rolled_back

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

log = logging.getLogger("yiwang.cases")
_KEY = "yiwang.cases.events"


@dataclass(frozen=True)
class NodeAt:
    """The node a hook call concerns (what activation needs of it)."""

    id: int | None
    path: str
    level: int = 0


@dataclass
class _Event:
    kernel: Any
    case_id: int
    node: NodeAt
    action: str
    step_id: int
    transaction: SessionTransaction | None = field(default=None, compare=False)


def queue(session: Session, kernel: Kernel, case: Any, action: str, step_id: int | None) -> None:
    items: list[_Event] = session.info.setdefault(_KEY, [])
    items.append(
        _Event(
            kernel,
            int(case.id),
            NodeAt(case.node_id, case.node_path),
            action,
            int(step_id or 0),
            current_transaction(session),
        )  # fmt: skip
    )


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    items: list[_Event] = session.info.pop(_KEY, [])
    for item in items:
        try:
            item.kernel.hook_at(item.node).yiwang_case_changed(
                kernel=item.kernel, case_id=item.case_id, action=item.action, step_id=item.step_id
            )
        except Exception:  # a plugin's bug must not turn a committed change into an error
            log.exception("插件处理事件变更失败: case=%s action=%s", item.case_id, item.action)


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    drop_rolled_back(session, _KEY, previous)


if not event.contains(Session, "after_commit", _after_commit):
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_soft_rollback", _after_soft_rollback)
