"""indexes for the case lists: waiting at a unit, assigned to / reported by a user, overdue

Revision ID: yiwang_0014
Revises: yiwang_0013
Create Date: 2026-12-03 19:00:00
"""

from __future__ import annotations

from alembic import op

revision = 'yiwang_0014'
down_revision = 'yiwang_0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('case_case', schema=None) as batch_op:
        batch_op.create_index('ix_case_state_org', ['state', 'org_path', 'updated_at'], unique=False)
        batch_op.create_index('ix_case_assignee_state', ['assignee_id', 'state'], unique=False)
        batch_op.create_index('ix_case_reporter_state', ['reporter_id', 'state'], unique=False)
        batch_op.create_index('ix_case_overdue', ['overdue'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_case', schema=None) as batch_op:
        batch_op.drop_index('ix_case_overdue')
        batch_op.drop_index('ix_case_reporter_state')
        batch_op.drop_index('ix_case_assignee_state')
        batch_op.drop_index('ix_case_state_org')
