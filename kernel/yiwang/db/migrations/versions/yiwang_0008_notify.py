"""notification outbox

Revision ID: yiwang_0008
Revises: yiwang_0007
Create Date: 2026-11-25 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'yiwang_0008'
down_revision = 'yiwang_0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notify_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('link', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('ref_type', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('ref_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('read_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['auth_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notify_message', schema=None) as batch_op:
        batch_op.create_index('ix_notify_message_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_notify_message_inbox', ['user_id', 'channel', 'read_at'], unique=False)

    op.add_column('auth_user', sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
    op.add_column('auth_user', sa.Column('mobile', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('auth_user', schema=None) as batch_op:
        batch_op.drop_column('mobile')
        batch_op.drop_column('email')

    with op.batch_alter_table('notify_message', schema=None) as batch_op:
        batch_op.drop_index('ix_notify_message_inbox')
        batch_op.drop_index('ix_notify_message_due')

    op.drop_table('notify_message')
