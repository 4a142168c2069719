"""per-user UI preferences and saved filters (yiwang.web.prefs)

Revision ID: yiwang_0013
Revises: yiwang_0012
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'yiwang_0013'
down_revision = 'yiwang_0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ui_pref',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['auth_user.id'], ),
    sa.PrimaryKeyConstraint('user_id', 'key')
    )
    op.create_table('ui_saved_filter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('page', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('query', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['auth_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'page', 'name', name='uq_ui_saved_filter')
    )
    with op.batch_alter_table('ui_saved_filter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ui_saved_filter_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ui_saved_filter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ui_saved_filter_user_id'))

    op.drop_table('ui_saved_filter')
    op.drop_table('ui_pref')
