"""stored files (attachments)

Revision ID: yiwang_0007
Revises: yiwang_0006
Create Date: 2026-11-25 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'yiwang_0007'
down_revision = 'yiwang_0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kernel_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('mime', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('original_name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('owner_type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('owner_ref', sa.Integer(), nullable=True),
    sa.Column('node_path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kernel_file', schema=None) as batch_op:
        batch_op.create_index('ix_kernel_file_node_path', ['node_path'], unique=False)
        batch_op.create_index('ix_kernel_file_owner', ['owner_type', 'owner_id'], unique=False)
        batch_op.create_index('ix_kernel_file_sha256', ['sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('kernel_file', schema=None) as batch_op:
        batch_op.drop_index('ix_kernel_file_sha256')
        batch_op.drop_index('ix_kernel_file_owner')
        batch_op.drop_index('ix_kernel_file_node_path')

    op.drop_table('kernel_file')
