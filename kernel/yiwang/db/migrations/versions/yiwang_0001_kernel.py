"""kernel: grid nodes, organisations, plugin activation

Revision ID: yiwang_0001
Revises:
Create Date: 2026-11-25 20:09:30.804073
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'yiwang_0001'
down_revision = None
branch_labels = ('yiwang',)
depends_on = None


def upgrade() -> None:
    op.create_table('grid_node',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('province_id', sa.Integer(), nullable=True),
    sa.Column('city_id', sa.Integer(), nullable=True),
    sa.Column('county_id', sa.Integer(), nullable=True),
    sa.Column('township_id', sa.Integer(), nullable=True),
    sa.Column('community_id', sa.Integer(), nullable=True),
    sa.Column('grid_id', sa.Integer(), nullable=True),
    sa.Column('child_count', sa.Integer(), nullable=False),
    sa.Column('grid_count', sa.Integer(), nullable=False),
    sa.Column('geometry', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['grid_node.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code'),
    sa.UniqueConstraint('path')
    )
    with op.batch_alter_table('grid_node', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grid_node_level'), ['level'], unique=False)
        batch_op.create_index('ix_grid_node_parent_code', ['parent_id', 'code'], unique=False)

    op.create_table('kernel_counter',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('grid_org',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('department', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['grid_node.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('node_id', 'name', name='uq_grid_org_node_name')
    )
    with op.batch_alter_table('grid_org', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grid_org_node_id'), ['node_id'], unique=False)

    op.create_table('plugin_activation',
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('plugin', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['grid_node.id'], ),
    sa.PrimaryKeyConstraint('node_id', 'plugin')
    )


def downgrade() -> None:
    op.drop_table('plugin_activation')
    with op.batch_alter_table('grid_org', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grid_org_node_id'))

    op.drop_table('grid_org')
    op.drop_table('kernel_counter')
    with op.batch_alter_table('grid_node', schema=None) as batch_op:
        batch_op.drop_index('ix_grid_node_parent_code')
        batch_op.drop_index(batch_op.f('ix_grid_node_level'))

    op.drop_table('grid_node')
