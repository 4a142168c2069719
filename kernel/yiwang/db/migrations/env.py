"""Alembic environment for yiwang: always driven by ``yiwang.db.migrate`` with a connection.

Only the tables of the kernel and of the enabled plugins are compared (``include_tables``),
so a disabled plugin's imported models never leak into another branch's migration.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlmodel import SQLModel

from yiwang.privacy.fields import render_item

config = context.config
connection = config.attributes["connection"]
include_tables: set[str] = config.attributes["include_tables"]


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return name in include_tables
    table = getattr(obj, "table", None)
    return table is None or table.name in include_tables


context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    include_object=include_object,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    user_module_prefix="sqlmodel.sql.sqltypes.",
    render_item=render_item,  # encrypted columns are written as their storage type, sa.Text()
)
with context.begin_transaction():
    context.run_migrations()
