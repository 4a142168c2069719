"""notice: notices

Revision ID: notice_0001
Revises:
Create Date: 2026-11-25 20:11:33.617877
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'notice_0001'
down_revision = None
branch_labels = ('notice',)
depends_on = 'yiwang_0001'


def upgrade() -> None:
    op.create_table('notice_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('node_path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('urgency', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('published_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['grid_node.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notice_notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_notice_node_id'), ['node_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_notice_node_path'), ['node_path'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_notice_published_at'), ['published_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('notice_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_notice_published_at'))
        batch_op.drop_index(batch_op.f('ix_notice_notice_node_path'))
        batch_op.drop_index(batch_op.f('ix_notice_notice_node_id'))

    op.drop_table('notice_notice')
