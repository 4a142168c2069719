"""population: households and members, grid transfers, claim decisions, house owners, one
registration per ID platform-wide

Revision ID: population_0003
Revises: population_0002
Create Date: 2026-12-03 15:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "population_0003"
down_revision = "population_0002"
branch_labels = None
depends_on = None

PATH = sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql")


def _number_legacy_duplicates() -> None:
    """IDs registered in several grids before the constraint (a race the old per-grid
    constraint let through) keep their rows: all but the first get ``legacy_dup`` 1, 2, …"""
    bind = op.get_bind()
    person = sa.table(
        "population_person", sa.column("id", sa.Integer), sa.column("id_number_bidx", sa.String),
        sa.column("legacy_dup", sa.Integer),
    )  # fmt: skip
    dup = (
        sa.select(person.c.id_number_bidx)
        .where(person.c.id_number_bidx.is_not(None))
        .group_by(person.c.id_number_bidx)
        .having(sa.func.count() > 1)
    )
    rows = bind.execute(
        sa.select(person.c.id, person.c.id_number_bidx)
        .where(person.c.id_number_bidx.in_(dup))
        .order_by(person.c.id_number_bidx, person.c.id)
    ).all()
    seen: dict[str, int] = {}
    for pid, bidx in rows:
        n = seen.get(bidx, -1) + 1
        seen[bidx] = n
        if n:
            bind.execute(person.update().where(person.c.id == pid).values(legacy_dup=n))


def upgrade() -> None:
    with op.batch_alter_table("population_person", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("legacy_dup", sa.Integer(), server_default="0", nullable=False)
        )
    _number_legacy_duplicates()
    with op.batch_alter_table("population_person", schema=None) as batch_op:
        batch_op.drop_constraint("uq_population_person_grid_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_population_person_id", ["id_number_bidx", "legacy_dup"]
        )

    with op.batch_alter_table("population_claim", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=100),
                                      server_default="", nullable=False))  # fmt: skip
        batch_op.add_column(sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=200),
                                      server_default="", nullable=False))  # fmt: skip
    with op.batch_alter_table("population_house", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True)
        )

    op.create_table(
        "population_transfer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("from_node_id", sa.Integer(), nullable=False),
        sa.Column("to_node_id", sa.Integer(), nullable=False),
        sa.Column("node_path", PATH, nullable=False),
        sa.Column("claim_id", sa.Integer(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["population_person.id"]),
        sa.ForeignKeyConstraint(["from_node_id"], ["grid_node.id"]),
        sa.ForeignKeyConstraint(["to_node_id"], ["grid_node.id"]),
        sa.ForeignKeyConstraint(["claim_id"], ["population_claim.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("population_transfer", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_population_transfer_person_id"), ["person_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_population_transfer_node_path"), ["node_path"], unique=False
        )

    op.create_table(
        "population_household",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("node_path", PATH, nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("house_id", sa.Integer(), nullable=True),
        sa.Column("head_id", sa.Integer(), nullable=True),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["grid_node.id"]),
        sa.ForeignKeyConstraint(["house_id"], ["population_house.id"]),
        sa.ForeignKeyConstraint(["head_id"], ["population_person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node_id", "number", name="uq_population_household_number"),
    )
    with op.batch_alter_table("population_household", schema=None) as batch_op:
        for column in ("node_id", "node_path", "house_id", "head_id"):
            batch_op.create_index(
                batch_op.f(f"ix_population_household_{column}"), [column], unique=False
            )

    op.create_table(
        "population_household_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("node_path", PATH, nullable=False),
        sa.Column("relation", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("joined", sa.Date(), nullable=False),
        sa.Column("left", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["household_id"], ["population_household.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["population_person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("population_household_member", schema=None) as batch_op:
        for column in ("household_id", "person_id", "node_path"):
            batch_op.create_index(
                batch_op.f(f"ix_population_household_member_{column}"), [column], unique=False
            )


def downgrade() -> None:
    with op.batch_alter_table("population_household_member", schema=None) as batch_op:
        for column in ("node_path", "person_id", "household_id"):
            batch_op.drop_index(batch_op.f(f"ix_population_household_member_{column}"))
    op.drop_table("population_household_member")
    with op.batch_alter_table("population_household", schema=None) as batch_op:
        for column in ("head_id", "house_id", "node_path", "node_id"):
            batch_op.drop_index(batch_op.f(f"ix_population_household_{column}"))
    op.drop_table("population_household")
    with op.batch_alter_table("population_transfer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_population_transfer_node_path"))
        batch_op.drop_index(batch_op.f("ix_population_transfer_person_id"))
    op.drop_table("population_transfer")
    with op.batch_alter_table("population_house", schema=None) as batch_op:
        batch_op.drop_column("owner")
    with op.batch_alter_table("population_claim", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("decided_by")
        batch_op.drop_column("decided_at")
    with op.batch_alter_table("population_person", schema=None) as batch_op:
        batch_op.drop_constraint("uq_population_person_id", type_="unique")
        # duplicates numbered by the upgrade were in different grids: the old constraint holds
        batch_op.create_unique_constraint(
            "uq_population_person_grid_id", ["node_id", "id_number_bidx"]
        )
        batch_op.drop_column("legacy_dup")
