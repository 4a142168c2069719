"""The rollup table: one kept count per (node, indicator, key)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer
from sqlmodel import Field, SQLModel

#: 64-bit on PostgreSQL (provincial counts), INTEGER (already 64-bit) on SQLite.
COUNT_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class StatsRollup(SQLModel, table=True):
    """A node's count for one key of one indicator, its whole subtree included.

    A record counted at a grid adds to the grid and to every ancestor up to the root, so a
    node's count is one primary-key read and its children's counts one indexed read. Rows are
    derived data: ``yiwang stats recount`` rebuilds them from the indicators' sources.
    """

    __tablename__ = "stats_rollup"

    node_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    indicator: str = Field(max_length=80, primary_key=True)
    key: str = Field(default="", max_length=40, primary_key=True)
    value: int = Field(default=0, sa_column=Column(COUNT_TYPE, nullable=False, default=0))
