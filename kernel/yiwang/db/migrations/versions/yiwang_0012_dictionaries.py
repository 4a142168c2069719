"""a province's changes to the declared dictionaries (字典管理)

Revision ID: yiwang_0012
Revises: yiwang_0011
Create Date: 2026-12-03 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'yiwang_0012'
down_revision = 'yiwang_0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kernel_dict_override',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('dictionary', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['grid_node.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('node_id', 'dictionary', 'code', name='uq_kernel_dict_override')
    )
    op.create_index(op.f('ix_kernel_dict_override_node_id'), 'kernel_dict_override', ['node_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_kernel_dict_override_node_id'), table_name='kernel_dict_override')
    op.drop_table('kernel_dict_override')
