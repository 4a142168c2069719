"""population: spreadsheet import runs

Revision ID: population_0002
Revises: population_0001
Create Date: 2026-11-25 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "population_0002"
down_revision = "population_0001"
branch_labels = None
depends_on = "yiwang_0010"


def upgrade() -> None:
    op.create_table(
        "population_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("fmt", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Text(), nullable=False),
        sa.Column("message", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["node_id"], ["grid_node.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("population_import", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_population_import_node_id"), ["node_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_population_import_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_population_import_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("population_import", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_population_import_user_id"))
        batch_op.drop_index(batch_op.f("ix_population_import_status"))
        batch_op.drop_index(batch_op.f("ix_population_import_node_id"))

    op.drop_table("population_import")
