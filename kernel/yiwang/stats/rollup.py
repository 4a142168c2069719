"""Kept counts: deltas queued on the session, applied in the same transaction at commit.

``add`` only records a delta in ``session.info`` (summed per node path, indicator and key). A
``before_commit`` listener on every Session expands each path to its ancestors, sums per rollup
row and applies the sums with one batched upsert (``INSERT … ON CONFLICT DO UPDATE SET value =
value + excluded.value``), rows in primary-key order so concurrent PostgreSQL writers never
deadlock. Deltas queued inside a savepoint that rolls back are dropped with it, like audit
records; nothing is written for a transaction that rolls back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction

from yiwang.db.queue import current_transaction, drop_rolled_back
from yiwang.grid.models import Node
from yiwang.grid.tree import ROW_COLUMNS, NodeRow, ancestor_ids, is_within
from yiwang.stats.models import StatsRollup

ROLLUP = StatsRollup.__table__  # type: ignore[attr-defined]
NODE = Node.__table__  # type: ignore[attr-defined]
_PENDING = "yiwang.stats.pending"
_CHUNK = 1000

#: ``(node path, indicator, key) → delta`` as queued; ``(node id, indicator, key) → delta`` applied.
PathDeltas = dict[tuple[str, str, str], int]
RowDeltas = dict[tuple[int, str, str], int]


@dataclass
class _Batch:
    """Deltas queued while one (possibly nested) transaction was current."""

    transaction: SessionTransaction | None
    deltas: PathDeltas = field(default_factory=dict)


# --- writing -------------------------------------------------------------------------------------


def add(session: Session, indicator: str, node_path: str, key: str = "", delta: int = 1) -> None:
    """Count ``delta`` records of ``indicator`` (under ``key``) at the node at ``node_path``.

    The node and every ancestor change when the session's transaction commits, in that
    transaction. Call it in the unit of work that writes the records themselves.
    """
    if not delta:
        return
    if len(node_path) < 3 or node_path[0] != "/" or node_path[-1] != "/":
        raise ValueError(f"not a node path: {node_path!r}")
    if not session.in_transaction():
        session.begin()  # tie the delta to a transaction, so a rollback drops it
    tx = current_transaction(session)
    batches: list[_Batch] = session.info.setdefault(_PENDING, [])
    if not batches or batches[-1].transaction is not tx:
        batches.append(_Batch(tx))
    deltas = batches[-1].deltas
    k = (node_path, indicator, key)
    deltas[k] = deltas.get(k, 0) + delta


def move(
    session: Session,
    indicator: str,
    key: str,
    old_path: str,
    new_path: str,
    delta: int = 1,
    *,
    new_key: str | None = None,
) -> None:
    """Move ``delta`` records from ``(old_path, key)`` to ``(new_path, new_key or key)``: a
    record moved to another grid, or whose kind changed (same path, ``new_key``), or both."""
    add(session, indicator, old_path, key, -delta)
    add(session, indicator, new_path, key if new_key is None else new_key, delta)


def pending(session: Session) -> PathDeltas:
    """Deltas queued on ``session`` and not yet written, summed."""
    out: PathDeltas = {}
    for batch in session.info.get(_PENDING, []):
        for k, d in batch.deltas.items():
            out[k] = out.get(k, 0) + d
    return {k: d for k, d in out.items() if d}


def expand(deltas: Iterable[tuple[tuple[str, str, str], int]]) -> RowDeltas:
    """Path deltas to rollup-row deltas: every node of each path gets the delta; zeros dropped."""
    rows: RowDeltas = {}
    for (path, indicator, key), d in deltas:
        for node_id in ancestor_ids(path):
            k = (node_id, indicator, key)
            rows[k] = rows.get(k, 0) + d
    return {k: d for k, d in rows.items() if d}


def _insert(session: Session) -> Any:
    dialect = session.connection().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(ROLLUP)


def _adding(dialect: str) -> Any:
    """The delta upsert for ``dialect``, built once (each transition runs it)."""
    stmt = _ADDING.get(dialect)
    if stmt is None:
        ins = (postgresql if dialect == "postgresql" else sqlite).insert(ROLLUP)
        stmt = _ADDING[dialect] = ins.on_conflict_do_update(
            index_elements=["node_id", "indicator", "key"],
            set_={"value": ROLLUP.c.value + ins.excluded.value},
        )
    return stmt


_ADDING: dict[str, Any] = {}


def apply(session: Session, rows: Mapping[tuple[int, str, str], int]) -> int:
    """Add ``rows`` deltas to the rollup table now: one batched upsert; returns rows touched."""
    if not rows:
        return 0
    stmt = _adding(session.connection().dialect.name)
    params = [
        {"node_id": n, "indicator": i, "key": k, "value": d}
        for (n, i, k), d in sorted(rows.items())
    ]
    for start in range(0, len(params), _CHUNK):
        session.execute(stmt, params[start : start + _CHUNK])
    return len(params)


def set_values(session: Session, rows: Mapping[tuple[int, str, str], int]) -> None:
    """Overwrite rollup rows with absolute values (repairs); one batched upsert."""
    if not rows:
        return
    ins = _insert(session)
    stmt = ins.on_conflict_do_update(
        index_elements=["node_id", "indicator", "key"], set_={"value": ins.excluded.value}
    )
    params = [
        {"node_id": n, "indicator": i, "key": k, "value": v}
        for (n, i, k), v in sorted(rows.items())
    ]
    for start in range(0, len(params), _CHUNK):
        session.execute(stmt, params[start : start + _CHUNK])


def flush(session: Session) -> int:
    """Write the queued deltas now (still in the caller's transaction); returns rows touched.

    Not needed normally — commit does it. Do not call it inside a savepoint that may roll back.
    """
    rows = expand(pending(session).items())
    session.info.pop(_PENDING, None)
    return apply(session, rows)


def node_moved(session: Session, node_id: int, old_path: str, new_path: str) -> None:
    """Keep rollups right after the kernel moved a subtree from ``old_path`` to ``new_path``.

    The subtree root's rows are its whole subtree's counts: they are subtracted from the old
    ancestors and added to the new ones (shared ancestors are untouched). Deltas still queued
    for paths inside the subtree are re-pathed, so they land on the new ancestors at commit.
    """
    for batch in session.info.get(_PENDING, []):
        moved = {k: d for k, d in batch.deltas.items() if is_within(k[0], old_path)}
        for k, d in moved.items():
            del batch.deltas[k]
            nk = (new_path + k[0][len(old_path) :], k[1], k[2])
            batch.deltas[nk] = batch.deltas.get(nk, 0) + d
    old_anc = ancestor_ids(old_path)[:-1]
    new_anc = ancestor_ids(new_path)[:-1]
    shared = set(old_anc) & set(new_anc)
    totals = session.execute(
        select(ROLLUP.c.indicator, ROLLUP.c.key, ROLLUP.c.value).where(
            ROLLUP.c.node_id == node_id, ROLLUP.c.value != 0
        )
    ).all()
    rows: RowDeltas = {}
    for indicator, key, value in totals:
        for a in old_anc:
            if a not in shared:
                rows[(a, indicator, key)] = rows.get((a, indicator, key), 0) - int(value)
        for a in new_anc:
            if a not in shared:
                rows[(a, indicator, key)] = rows.get((a, indicator, key), 0) + int(value)
    apply(session, rows)


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: deltas are written when the outermost transaction commits
    if session.info.get(_PENDING):
        flush(session)


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    drop_rolled_back(session, _PENDING, previous)


if not event.contains(Session, "before_commit", _before_commit):
    event.listen(Session, "before_commit", _before_commit)
    event.listen(Session, "after_soft_rollback", _after_soft_rollback)


# --- reading -------------------------------------------------------------------------------------


def value(session: Session, indicator: str, node_id: int, key: str = "") -> int:
    """The node's committed count of ``indicator`` under ``key`` (its subtree included)."""
    got = session.execute(
        select(ROLLUP.c.value).where(
            ROLLUP.c.node_id == node_id, ROLLUP.c.indicator == indicator, ROLLUP.c.key == key
        )
    ).scalar()
    return int(got or 0)


def by_key(
    session: Session, indicator: str, node_id: int, keys: Sequence[str] = ()
) -> dict[str, int]:
    """The node's counts of ``indicator`` per key (``keys`` are filled with 0 when absent)."""
    out = dict.fromkeys(keys, 0)
    rows = session.execute(
        select(ROLLUP.c.key, ROLLUP.c.value).where(
            ROLLUP.c.node_id == node_id, ROLLUP.c.indicator == indicator
        )
    )
    for key, v in rows:
        if v or key in out:
            out[key] = int(v)
    return out


def children(
    session: Session, indicator: str, parent_id: int, keys: Sequence[str] = ()
) -> list[tuple[NodeRow, dict[str, int]]]:
    """Every child of ``parent_id`` (ordered by code) with its counts per key: two indexed reads
    (the children, then their rollup rows by primary key) whatever the size of the subtrees."""
    conn = session.connection()
    kids = [
        NodeRow(*r)
        for r in conn.execute(
            select(*ROW_COLUMNS).where(NODE.c.parent_id == parent_id).order_by(NODE.c.code)
        )
    ]
    counts: dict[int, dict[str, int]] = {k.id: dict.fromkeys(keys, 0) for k in kids}
    rows = conn.execute(
        select(ROLLUP.c.node_id, ROLLUP.c.key, ROLLUP.c.value)
        .join(NODE, NODE.c.id == ROLLUP.c.node_id)
        .where(NODE.c.parent_id == parent_id, ROLLUP.c.indicator == indicator)
    )
    for node_id, key, v in rows:
        mine = counts.setdefault(node_id, {})
        if v or key in mine:
            mine[key] = int(v)
    return [(k, counts[k.id]) for k in kids]


# --- dated indicators (counts per day) -------------------------------------------------------


def _day_range(keys: Sequence[str], first: date, last: date) -> Any:
    """The rollup rows of ``keys`` between two days: one primary-key range per key."""
    from sqlalchemy import or_

    from yiwang.stats.indicators import day_key

    return or_(
        *(ROLLUP.c.key.between(day_key(k, first), day_key(k, last)) for k in keys)
    )


def _split(key: str) -> tuple[str, date] | None:
    base, _, day = key.rpartition(":")
    try:
        return base, date.fromisoformat(day)
    except ValueError:
        return None


def days(
    session: Session, indicator: str, node_id: int, keys: Sequence[str], first: date, last: date
) -> dict[str, dict[date, int]]:
    """A dated indicator's counts at the node per key and day, ``first`` to ``last`` inclusive
    (every day present, 0 when nothing was counted): a few primary-key range reads."""
    span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    out = {k: dict.fromkeys(span, 0) for k in keys}
    rows = session.execute(
        select(ROLLUP.c.key, ROLLUP.c.value).where(
            ROLLUP.c.node_id == node_id, ROLLUP.c.indicator == indicator,
            _day_range(keys, first, last),
        )
    )  # fmt: skip
    for key, v in rows:
        got = _split(str(key))
        if got and got[0] in out and got[1] in out[got[0]]:
            out[got[0]][got[1]] = int(v)
    return out


def children_days(
    session: Session, indicator: str, parent_id: int, keys: Sequence[str], first: date, last: date
) -> list[tuple[NodeRow, dict[str, int]]]:
    """Every child of ``parent_id`` (ordered by code) with a dated indicator's totals per key
    over ``first`` … ``last``: two indexed reads, whatever the size of the subtrees."""
    conn = session.connection()
    kids = [
        NodeRow(*r)
        for r in conn.execute(
            select(*ROW_COLUMNS).where(NODE.c.parent_id == parent_id).order_by(NODE.c.code)
        )
    ]
    counts: dict[int, dict[str, int]] = {k.id: dict.fromkeys(keys, 0) for k in kids}
    rows = conn.execute(
        select(ROLLUP.c.node_id, ROLLUP.c.key, ROLLUP.c.value)
        .join(NODE, NODE.c.id == ROLLUP.c.node_id)
        .where(NODE.c.parent_id == parent_id, ROLLUP.c.indicator == indicator,
               _day_range(keys, first, last))
    )  # fmt: skip
    for node_id, key, v in rows:
        got = _split(str(key))
        mine = counts.get(int(node_id))
        if got and mine is not None and got[0] in mine and first <= got[1] <= last:
            mine[got[0]] += int(v)
    return [(k, counts[k.id]) for k in kids]
