"""pinyin initials of node names and case titles, for the global search

Revision ID: yiwang_0011
Revises: yiwang_0010
Create Date: 2026-12-03 15:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yiwang.pinyin import INITIALS_TYPE, pinyin_initials

revision = 'yiwang_0011'
down_revision = 'yiwang_0010'
branch_labels = None
depends_on = None

#: (table, source column, initials column)
COLUMNS = (("grid_node", "name", "initials"), ("case_case", "title", "title_initials"))


def upgrade() -> None:
    conn = op.get_bind()
    for table, source, target in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(target, INITIALS_TYPE, nullable=False, server_default=""))
            batch.create_index(f"ix_{table}_{target}", [target])
        t = sa.table(table, sa.column("id", sa.Integer), sa.column(source, sa.String), sa.column(target, sa.String))
        rows = conn.execute(sa.select(t.c.id, t.c[source])).all()
        for start in range(0, len(rows), 2000):
            conn.execute(
                t.update().where(t.c.id == sa.bindparam("rid")).values({target: sa.bindparam("val")}),
                [{"rid": rid, "val": pinyin_initials(text or "")} for rid, text in rows[start:start + 2000]],
            )


def downgrade() -> None:
    for table, _source, target in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_{target}")
            batch.drop_column(target)
