"""Verify and repair the rollups from the indicators' sources (``yiwang stats recount``).

The truth is rebuilt in memory: each source yields ``(path, key, count)`` rows (usually one
GROUP BY over the plugin's table), and every path is walked to its ancestors, as
``grid.tree.actual_counts`` does for the kept grid counts. Rows that differ are repaired with
one batched upsert; rows with no truth behind them are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, text, tuple_
from sqlalchemy.sql import Select
from sqlmodel import Session

from yiwang.errors import ValidationError
from yiwang.grid.tree import ancestor_ids
from yiwang.stats.indicators import Indicator, SourceRows, declared_indicators
from yiwang.stats.rollup import NODE, ROLLUP, set_values

if TYPE_CHECKING:
    from yiwang.kernel import Kernel


@dataclass(frozen=True)
class Discrepancy:
    """A kept count that differs from the recount."""

    indicator: str
    node_id: int
    key: str
    kept: int
    actual: int
    node_code: str = ""

    def describe(self) -> str:
        where = self.node_code or f"节点 {self.node_id}"
        key = f"[{self.key}]" if self.key else ""
        return f"{self.indicator}{key} @ {where}: 记录值 {self.kept}，实际 {self.actual}"


def source_rows(session: Session, indicator: Indicator) -> SourceRows:
    """The indicator's ``(path, key, count)`` rows: its callable called, or its select run."""
    src = indicator.source
    if isinstance(src, Select):
        return ((str(p), str(k), int(c)) for p, k, c in session.execute(src))
    if callable(src):
        return src(session)
    raise ValidationError(f"统计指标 {indicator.name} 没有声明计数来源，无法重算")


def truth(session: Session, indicator: Indicator) -> dict[tuple[int, str], int]:
    """``(node id, key) → count`` for every node, built from the indicator's source."""
    by_path: dict[tuple[str, str], int] = {}
    for path, key, count in source_rows(session, indicator):
        if not indicator.allows(key):
            raise ValidationError(f"统计指标 {indicator.name} 的来源返回了未声明的分类键 {key!r}")
        by_path[(path, key)] = by_path.get((path, key), 0) + int(count)
    out: dict[tuple[int, str], int] = {}
    for (path, key), count in by_path.items():
        for node_id in ancestor_ids(path):
            out[(node_id, key)] = out.get((node_id, key), 0) + count
    return {k: v for k, v in out.items() if v}


def recount(
    kernel: Kernel, session: Session, *, check: bool = False, indicators: list[str] | None = None
) -> list[Discrepancy]:
    """Compare every recountable indicator's rollups with its source; unless ``check``, repair
    the differences in the caller's transaction. Returns the differences found (before repair).

    On PostgreSQL the rollup table is locked against writers for the transaction, so a writer's
    records and their deltas land wholly before or wholly after the recount.
    """
    declared = declared_indicators(kernel)
    unknown = sorted(set(indicators or ()) - set(declared))
    if unknown:
        raise ValidationError(f"未声明的统计指标: {'、'.join(unknown)}")
    chosen = [declared[n] for n in (indicators or declared) if declared[n].source is not None]
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE stats_rollup IN EXCLUSIVE MODE"))
    found: list[Discrepancy] = []
    for ind in chosen:
        actual = truth(session, ind)
        kept = {
            (int(n), str(k)): int(v)
            for n, k, v in conn.execute(
                select(ROLLUP.c.node_id, ROLLUP.c.key, ROLLUP.c.value).where(
                    ROLLUP.c.indicator == ind.name
                )
            )
        }
        diff = [
            Discrepancy(ind.name, n, k, kept.get((n, k), 0), actual.get((n, k), 0))
            for n, k in sorted(set(kept) | set(actual))
            if kept.get((n, k), 0) != actual.get((n, k), 0)
        ]
        found += diff
        if check or not diff:
            continue
        set_values(session, {(d.node_id, ind.name, d.key): d.actual for d in diff if d.actual})
        gone = [(d.node_id, d.key) for d in diff if not d.actual]
        for start in range(0, len(gone), 500):
            conn.execute(
                delete(ROLLUP).where(
                    ROLLUP.c.indicator == ind.name,
                    tuple_(ROLLUP.c.node_id, ROLLUP.c.key).in_(gone[start : start + 500]),
                )
            )
    return _with_codes(session, found)


def _with_codes(session: Session, found: list[Discrepancy]) -> list[Discrepancy]:
    ids = sorted({d.node_id for d in found})
    codes: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        rows: Any = session.connection().execute(
            select(NODE.c.id, NODE.c.code).where(NODE.c.id.in_(ids[start : start + 500]))
        )
        codes.update({int(i): str(c) for i, c in rows})
    return [
        Discrepancy(d.indicator, d.node_id, d.key, d.kept, d.actual, codes.get(d.node_id, ""))
        for d in found
    ]
