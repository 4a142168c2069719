"""working-day calendar overrides

Revision ID: yiwang_0006
Revises: yiwang_0005
Create Date: 2026-11-25 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'yiwang_0006'
down_revision = 'yiwang_0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendar_day',
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('workday', sa.Boolean(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['grid_node.id'], ),
    sa.PrimaryKeyConstraint('node_id', 'day')
    )


def downgrade() -> None:
    op.drop_table('calendar_day')
