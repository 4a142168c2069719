"""totp secret encrypted

Revision ID: yiwang_0004
Revises: yiwang_0003
Create Date: 2026-11-25 21:03:49.030630
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'yiwang_0004'
down_revision = 'yiwang_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('auth_user', schema=None) as batch_op:
        batch_op.alter_column('totp_secret',
               existing_type=sa.VARCHAR(length=64),
               type_=sa.Text(),
               existing_nullable=True)



def downgrade() -> None:
    with op.batch_alter_table('auth_user', schema=None) as batch_op:
        batch_op.alter_column('totp_secret',
               existing_type=sa.Text(),
               type_=sa.VARCHAR(length=64),
               existing_nullable=True)

