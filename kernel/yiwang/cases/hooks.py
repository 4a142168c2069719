"""The case domain's part in the kernel's own hook implementations (``yiwang.builtin``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlmodel import Session

from yiwang.cases.models import Case, CaseCopy, RoutingRule
from yiwang.grid.tree import move_paths
from yiwang.stats import Indicator

CASE = Case.__table__  # type: ignore[attr-defined]


def node_moved(session: Session, old_path: str, new_path: str) -> None:
    """Cases, copies and rules keep copies of node paths: follow a subtree move."""
    move_paths(session, CASE.c.node_path, old_path, new_path)
    move_paths(session, CASE.c.org_path, old_path, new_path)
    move_paths(session, CaseCopy.__table__.c.org_path, old_path, new_path)  # type: ignore[attr-defined]
    move_paths(session, RoutingRule.__table__.c.node_path, old_path, new_path)  # type: ignore[attr-defined]


def _by_state(session: Session) -> list[tuple[str, str, int]]:
    from yiwang.cases.engine import stat_key

    rows = session.execute(
        select(CASE.c.node_path, CASE.c.state, func.count()).group_by(
            CASE.c.node_path, CASE.c.state
        )
    )
    return [(path, stat_key(state), int(n)) for path, state, n in rows]


def indicators() -> Sequence[Indicator]:
    from yiwang.cases import tallies
    from yiwang.cases.standard import STATES

    keys = (*(s.name for s in STATES), "other")
    return [Indicator("cases.state", "事件（按状态）", keys, _by_state), *tallies.indicators()]
