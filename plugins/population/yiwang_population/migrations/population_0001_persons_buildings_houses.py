"""population: persons, buildings, houses, residences

Revision ID: population_0001
Revises:
Create Date: 2026-11-25 22:00:48.548428
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "population_0001"
down_revision = None
branch_labels = ("population",)
depends_on = "yiwang_0005"


def upgrade() -> None:
    op.create_table(
        "population_building",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column(
            "node_path",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("floors", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["grid_node.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("population_building", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_population_building_node_id"), ["node_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_population_building_node_path"), ["node_path"], unique=False
        )

    op.create_table(
        "population_person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column(
            "node_path",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("id_number", sa.Text(), nullable=False),
        sa.Column("id_number_bidx", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("sex", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("ethnicity", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("phone_bidx", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("hukou_address", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("occupation", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("tags", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["grid_node.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node_id", "id_number_bidx", name="uq_population_person_grid_id"),
    )
    with op.batch_alter_table("population_person", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_population_person_id_number_bidx"), ["id_number_bidx"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_population_person_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_population_person_node_id"), ["node_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_population_person_node_path"), ["node_path"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_population_person_phone_bidx"), ["phone_bidx"], unique=False
        )

    op.create_table(
        "population_claim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column(
            "node_path",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column(
            "holder_path",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("id_number", sa.Text(), nullable=False),
        sa.Column("id_number_bidx", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["grid_node.id"],
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["population_person.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("population_claim", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_population_claim_holder_path"), ["holder_path"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_population_claim_id_number_bidx"), ["id_number_bidx"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_population_claim_node_id"), ["node_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_population_claim_node_path"), ["node_path"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_population_claim_person_id"), ["person_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_population_claim_status"), ["status"], unique=False)

    op.create_table(
        "population_house",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=False),
        sa.Column(
            "node_path",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("unit", sa.Integer(), nullable=False),
        sa.Column("floor", sa.Integer(), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("use", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["population_building.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("population_house", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_population_house_building_id"), ["building_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_population_house_node_path"), ["node_path"], unique=False
        )

    op.create_table(
        "population_kind_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("old_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("new_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["population_person.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("population_kind_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_population_kind_change_person_id"), ["person_id"], unique=False
        )

    op.create_table(
        "population_residence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("house_id", sa.Integer(), nullable=False),
        sa.Column(
            "node_path",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("relation", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("moved_in", sa.Date(), nullable=False),
        sa.Column("moved_out", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["house_id"],
            ["population_house.id"],
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["population_person.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("population_residence", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_population_residence_house_id"), ["house_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_population_residence_node_path"), ["node_path"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_population_residence_person_id"), ["person_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("population_residence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_population_residence_person_id"))
        batch_op.drop_index(batch_op.f("ix_population_residence_node_path"))
        batch_op.drop_index(batch_op.f("ix_population_residence_house_id"))

    op.drop_table("population_residence")
    with op.batch_alter_table("population_kind_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_population_kind_change_person_id"))

    op.drop_table("population_kind_change")
    with op.batch_alter_table("population_house", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_population_house_node_path"))
        batch_op.drop_index(batch_op.f("ix_population_house_building_id"))

    op.drop_table("population_house")
    with op.batch_alter_table("population_claim", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_population_claim_status"))
        batch_op.drop_index(batch_op.f("ix_population_claim_person_id"))
        batch_op.drop_index(batch_op.f("ix_population_claim_node_path"))
        batch_op.drop_index(batch_op.f("ix_population_claim_node_id"))
        batch_op.drop_index(batch_op.f("ix_population_claim_id_number_bidx"))
        batch_op.drop_index(batch_op.f("ix_population_claim_holder_path"))

    op.drop_table("population_claim")
    with op.batch_alter_table("population_person", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_population_person_phone_bidx"))
        batch_op.drop_index(batch_op.f("ix_population_person_node_path"))
        batch_op.drop_index(batch_op.f("ix_population_person_node_id"))
        batch_op.drop_index(batch_op.f("ix_population_person_kind"))
        batch_op.drop_index(batch_op.f("ix_population_person_id_number_bidx"))

    op.drop_table("population_person")
    with op.batch_alter_table("population_building", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_population_building_node_path"))
        batch_op.drop_index(batch_op.f("ix_population_building_node_id"))

    op.drop_table("population_building")
