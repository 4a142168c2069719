"""statistics: per-node rollups of declared indicators

Revision ID: yiwang_0005
Revises: yiwang_0004
Create Date: 2026-11-25 21:48:29.689694
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'yiwang_0005'
down_revision = 'yiwang_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stats_rollup',
    sa.Column('node_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('indicator', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('value', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('node_id', 'indicator', 'key')
    )


def downgrade() -> None:
    op.drop_table('stats_rollup')
