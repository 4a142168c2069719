"""cases, workflows, steps, routing rules

Revision ID: yiwang_0010
Revises: yiwang_0009
Create Date: 2026-11-25 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'yiwang_0010'
down_revision = 'yiwang_0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('case_workflow',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('definition', sa.Text(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'version', name='uq_case_workflow_version')
    )
    op.create_table('case_routing_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('node_path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('case_type', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('urgency', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('scale', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('copy_departments', sa.String(length=200), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['grid_node.id'], ),
    sa.ForeignKeyConstraint(['updated_by'], ['auth_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('node_id', 'case_type', 'urgency', 'scale', name='uq_case_routing_rule')
    )
    with op.batch_alter_table('case_routing_rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_routing_rule_node_path'), ['node_path'], unique=False)

    op.create_table('case_case',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('serial', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('case_type', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('workflow', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('workflow_version', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('channel_key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('reporter_id', sa.Integer(), nullable=True),
    sa.Column('reporter_name', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('reporter_phone', sa.Text(), nullable=True),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('node_path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('urgency', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('scale', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('suspended_from', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('suspended_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('org_path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('clock', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('clock_started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('yellow_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('red_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('card', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('overdue', sa.Boolean(), nullable=False),
    sa.Column('ever_overdue', sa.Boolean(), nullable=False),
    sa.Column('supervision', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('extension_days', sa.Integer(), nullable=True),
    sa.Column('extension_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('close_type', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('reopen_count', sa.Integer(), nullable=False),
    sa.Column('rework_count', sa.Integer(), nullable=False),
    sa.Column('extra', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('accepted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['auth_user.id'], ),
    sa.ForeignKeyConstraint(['node_id'], ['grid_node.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['grid_org.id'], ),
    sa.ForeignKeyConstraint(['reporter_id'], ['auth_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'channel_key', name='uq_case_channel_key'),
    sa.UniqueConstraint('serial')
    )
    with op.batch_alter_table('case_case', schema=None) as batch_op:
        batch_op.create_index('ix_case_clock', ['state', 'red_at'], unique=False)
        batch_op.create_index('ix_case_node_path', ['node_path'], unique=False)
        batch_op.create_index('ix_case_org_state', ['org_path', 'state'], unique=False)
        batch_op.create_index('ix_case_type_created', ['case_type', 'created_at'], unique=False)

    op.create_table('case_copy',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('org_path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case_case.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['grid_org.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'org_id', name='uq_case_copy')
    )
    with op.batch_alter_table('case_copy', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_copy_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_copy_org_path'), ['org_path'], unique=False)

    op.create_table('case_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('from_state', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('to_state', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('from_org_id', sa.Integer(), nullable=True),
    sa.Column('to_org_id', sa.Integer(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('opinion', sa.Text(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('entered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['auth_user.id'], ),
    sa.ForeignKeyConstraint(['case_id'], ['case_case.id'], ),
    sa.ForeignKeyConstraint(['from_org_id'], ['grid_org.id'], ),
    sa.ForeignKeyConstraint(['to_org_id'], ['grid_org.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'seq', name='uq_case_step_seq')
    )


def downgrade() -> None:
    op.drop_table('case_step')
    with op.batch_alter_table('case_copy', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_copy_org_path'))
        batch_op.drop_index(batch_op.f('ix_case_copy_org_id'))

    op.drop_table('case_copy')
    with op.batch_alter_table('case_case', schema=None) as batch_op:
        batch_op.drop_index('ix_case_type_created')
        batch_op.drop_index('ix_case_org_state')
        batch_op.drop_index('ix_case_node_path')
        batch_op.drop_index('ix_case_clock')

    op.drop_table('case_case')
    with op.batch_alter_table('case_routing_rule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_routing_rule_node_path'))

    op.drop_table('case_routing_rule')
    op.drop_table('case_workflow')
