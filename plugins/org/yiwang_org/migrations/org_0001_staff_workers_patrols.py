"""org: staff, grid workers, devices, patrols

Revision ID: org_0001
Revises:
Create Date: 2026-11-25 21:48:52.673387
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "org_0001"
down_revision = None
branch_labels = ("org",)
depends_on = "yiwang_0005"


def upgrade() -> None:
    op.create_table(
        "org_worker",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column(
            "node_path",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("phone_bidx", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["grid_node.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["auth_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("org_worker", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_worker_node_id"), ["node_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_org_worker_node_path"), ["node_path"], unique=False)
        batch_op.create_index(batch_op.f("ix_org_worker_phone_bidx"), ["phone_bidx"], unique=False)
        batch_op.create_index(batch_op.f("ix_org_worker_user_id"), ["user_id"], unique=False)

    op.create_table(
        "org_device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column(
            "node_path",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("imei", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("phone_number", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("worker_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["grid_node.id"],
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"],
            ["org_worker.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("imei"),
    )
    with op.batch_alter_table("org_device", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_device_node_id"), ["node_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_org_device_node_path"), ["node_path"], unique=False)
        batch_op.create_index(batch_op.f("ix_org_device_worker_id"), ["worker_id"], unique=False)

    op.create_table(
        "org_grid_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column(
            "node_path",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grid_node.id"],
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"],
            ["org_worker.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("worker_id", "grid_id", name="uq_org_grid_assignment"),
    )
    with op.batch_alter_table("org_grid_assignment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_org_grid_assignment_grid_id"), ["grid_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_org_grid_assignment_node_path"), ["node_path"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_org_grid_assignment_worker_id"), ["worker_id"], unique=False
        )

    op.create_table(
        "org_patrol",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column(
            "node_path",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("ended_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("point_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grid_node.id"],
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"],
            ["org_worker.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("org_patrol", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_patrol_grid_id"), ["grid_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_org_patrol_node_path"), ["node_path"], unique=False)
        batch_op.create_index(batch_op.f("ix_org_patrol_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_org_patrol_worker_id"), ["worker_id"], unique=False)

    op.create_table(
        "org_staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column(
            "node_path",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("phone_bidx", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("post", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["grid_node.id"],
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["grid_org.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("org_staff", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_staff_node_id"), ["node_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_org_staff_node_path"), ["node_path"], unique=False)
        batch_op.create_index(batch_op.f("ix_org_staff_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_org_staff_phone_bidx"), ["phone_bidx"], unique=False)

    op.create_table(
        "org_patrol_point",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patrol_id", sa.Integer(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["patrol_id"],
            ["org_patrol.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("org_patrol_point", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_org_patrol_point_patrol_id"), ["patrol_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("org_patrol_point", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_patrol_point_patrol_id"))

    op.drop_table("org_patrol_point")
    with op.batch_alter_table("org_staff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_staff_phone_bidx"))
        batch_op.drop_index(batch_op.f("ix_org_staff_org_id"))
        batch_op.drop_index(batch_op.f("ix_org_staff_node_path"))
        batch_op.drop_index(batch_op.f("ix_org_staff_node_id"))

    op.drop_table("org_staff")
    with op.batch_alter_table("org_patrol", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_patrol_worker_id"))
        batch_op.drop_index(batch_op.f("ix_org_patrol_started_at"))
        batch_op.drop_index(batch_op.f("ix_org_patrol_node_path"))
        batch_op.drop_index(batch_op.f("ix_org_patrol_grid_id"))

    op.drop_table("org_patrol")
    with op.batch_alter_table("org_grid_assignment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_grid_assignment_worker_id"))
        batch_op.drop_index(batch_op.f("ix_org_grid_assignment_node_path"))
        batch_op.drop_index(batch_op.f("ix_org_grid_assignment_grid_id"))

    op.drop_table("org_grid_assignment")
    with op.batch_alter_table("org_device", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_device_worker_id"))
        batch_op.drop_index(batch_op.f("ix_org_device_node_path"))
        batch_op.drop_index(batch_op.f("ix_org_device_node_id"))

    op.drop_table("org_device")
    with op.batch_alter_table("org_worker", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_worker_user_id"))
        batch_op.drop_index(batch_op.f("ix_org_worker_phone_bidx"))
        batch_op.drop_index(batch_op.f("ix_org_worker_node_path"))
        batch_op.drop_index(batch_op.f("ix_org_worker_node_id"))

    op.drop_table("org_worker")
