"""Work queued on a session and done at its outermost commit (audit records, statistics
deltas): what a rolled-back savepoint queued must be dropped with it. Shared by every queue."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session, SessionTransaction


class Queued(Protocol):
    """An item queued by a writer, remembering the transaction it was queued in."""

    transaction: SessionTransaction | None


def current_transaction(session: Session) -> SessionTransaction | None:
    """The transaction (savepoint first) an item queued now belongs to."""
    return session.get_nested_transaction() or session.get_transaction()


def drop_rolled_back(session: Session, key: str, previous: SessionTransaction) -> None:
    """``after_soft_rollback``: remove from ``session.info[key]`` what ``previous`` queued
    (itself or any transaction nested in it); a root rollback drops everything."""
    queued: list[Queued] | None = session.info.get(key)
    if not queued:
        return
    root = previous.parent is None

    def undone(item: Queued) -> bool:
        tx = item.transaction
        if tx is None:
            return root
        while tx is not None:
            if tx is previous:
                return True
            tx = tx.parent
        return False

    kept = [item for item in queued if not undone(item)]
    if kept:
        session.info[key] = kept
    else:
        session.info.pop(key, None)
