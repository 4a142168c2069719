"""Tables of the population plugin. Every table carries ``node_path``, a copy of its grid's path
(PATH_TYPE), so lists are scoped by one range scan and follow moves via ``move_paths``."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from yiwang.api import PATH_TYPE, blind_index_field, personal_field, sensitive_field

#: Kinds of persons (the keys of the ``population.persons`` indicator), with their Chinese names.
KINDS: dict[str, str] = {
    "registered": "户籍人口",
    "floating": "流动人口",
    "foreign": "境外人员",
    "unregistered": "未落户人员",
}
#: Uses of a house.
USES: dict[str, str] = {"own": "自住", "rent": "出租", "vacant": "空置", "business": "经营"}
#: Relations of a resident to the house.
RELATIONS: dict[str, str] = {
    "owner": "户主/业主",
    "family": "家庭成员",
    "tenant": "租住",
    "other": "其他",
}
INDICATOR = "population.persons"


def _now() -> datetime:
    return datetime.now(UTC)


#: Relations of a household member to the head (与户主关系).
MEMBER_RELATIONS: dict[str, str] = {
    "head": "户主",
    "spouse": "配偶",
    "child": "子女",
    "parent": "父母",
    "other": "其他",
}
#: Outcomes of a claim (认领).
CLAIM_STATUSES: dict[str, str] = {"open": "待处理", "transferred": "已转入", "rejected": "已驳回"}


class Person(SQLModel, table=True):
    """A person (实有人口) registered in a grid."""

    __tablename__ = "population_person"
    #: One registration per ID in the whole platform, also under concurrent writers: a second
    #: grid's registration becomes a claim. ``legacy_dup`` numbers the duplicates that existed
    #: before the constraint (migration population_0003); new rows always have 0.
    __table_args__ = (
        UniqueConstraint("id_number_bidx", "legacy_dup", name="uq_population_person_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="grid_node.id", index=True)
    node_path: str = Field(sa_type=PATH_TYPE, index=True)
    name: str = personal_field("name", "姓名", max_length=60)
    id_number: str = sensitive_field("id_number", "公民身份号码")
    id_number_bidx: str | None = blind_index_field()
    sex: str = Field(default="", max_length=2)
    birth_date: date | None = None
    ethnicity: str = Field(default="", max_length=20)
    phone: str | None = sensitive_field("phone", "联系电话", default=None)
    phone_bidx: str | None = blind_index_field()
    kind: str = Field(default="registered", max_length=20, index=True)
    address: str | None = personal_field("address", "现住址", default=None, max_length=200)
    hukou_address: str | None = personal_field("address", "户籍地址", default=None, max_length=200)
    occupation: str = Field(default="", max_length=60)
    #: Comma-separated labels (e.g. 独居老人,退役军人).
    tags: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=_now)
    legacy_dup: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class KindChange(SQLModel, table=True):
    """History of a person's kind (e.g. 流动 → 户籍)."""

    __tablename__ = "population_kind_change"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="population_person.id", index=True)
    old_kind: str = Field(max_length=20)
    new_kind: str = Field(max_length=20)
    reason: str = Field(default="", max_length=200)
    at: datetime = Field(default_factory=_now)


class Claim(SQLModel, table=True):
    """A registration whose ID is already registered in another grid (认领队列): seen by the
    claiming grid (``node_path``) and the holding grid (``holder_path``) until resolved."""

    __tablename__ = "population_claim"

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="grid_node.id", index=True)
    node_path: str = Field(sa_type=PATH_TYPE, index=True)
    person_id: int = Field(foreign_key="population_person.id", index=True)
    holder_path: str = Field(sa_type=PATH_TYPE, index=True)
    name: str = personal_field("name", "姓名", max_length=60)
    id_number: str = sensitive_field("id_number", "公民身份号码")
    id_number_bidx: str | None = blind_index_field()
    kind: str = Field(default="registered", max_length=20)
    status: str = Field(default="open", max_length=20, index=True)
    created_at: datetime = Field(default_factory=_now)
    decided_at: datetime | None = None
    decided_by: str = Field(default="", max_length=100, sa_column_kwargs={"server_default": ""})
    note: str = Field(default="", max_length=200, sa_column_kwargs={"server_default": ""})


class Building(SQLModel, table=True):
    """A building (楼栋) in a grid."""

    __tablename__ = "population_building"

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="grid_node.id", index=True)
    node_path: str = Field(sa_type=PATH_TYPE, index=True)
    name: str = Field(default="", max_length=100)
    address: str = Field(max_length=200)
    lat: float | None = None
    lon: float | None = None
    floors: int = 1
    units: int = 1


class House(SQLModel, table=True):
    """A house or room (房屋) of a building."""

    __tablename__ = "population_house"

    id: int | None = Field(default=None, primary_key=True)
    building_id: int = Field(foreign_key="population_building.id", index=True)
    node_path: str = Field(sa_type=PATH_TYPE, index=True)
    unit: int = 1
    floor: int = 1
    number: str = Field(max_length=20)
    use: str = Field(default="own", max_length=20)
    owner: str | None = personal_field("name", "业主", default=None, max_length=60)


class Residence(SQLModel, table=True):
    """A person living in a house (人到户), with dates; ``moved_out`` None while living there."""

    __tablename__ = "population_residence"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="population_person.id", index=True)
    house_id: int = Field(foreign_key="population_house.id", index=True)
    node_path: str = Field(sa_type=PATH_TYPE, index=True)
    relation: str = Field(default="owner", max_length=20)
    moved_in: date
    moved_out: date | None = None


class Transfer(SQLModel, table=True):
    """A person's move from one grid to another (网格迁移), e.g. an accepted claim."""

    __tablename__ = "population_transfer"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="population_person.id", index=True)
    from_node_id: int = Field(foreign_key="grid_node.id")
    to_node_id: int = Field(foreign_key="grid_node.id")
    node_path: str = Field(sa_type=PATH_TYPE, index=True)  # the new grid's
    claim_id: int | None = Field(default=None, foreign_key="population_claim.id")
    reason: str = Field(default="", max_length=200)
    at: datetime = Field(default_factory=_now)


class Household(SQLModel, table=True):
    """A household (户) of a grid, living in a house (户入楼) and headed by a person."""

    __tablename__ = "population_household"
    __table_args__ = (UniqueConstraint("node_id", "number", name="uq_population_household_number"),)

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="grid_node.id", index=True)
    node_path: str = Field(sa_type=PATH_TYPE, index=True)
    #: 户号, unique in its grid.
    number: str = Field(max_length=30)
    house_id: int | None = Field(default=None, foreign_key="population_house.id", index=True)
    head_id: int | None = Field(default=None, foreign_key="population_person.id", index=True)
    address: str | None = personal_field("address", "住址", default=None, max_length=200)
    created_at: datetime = Field(default_factory=_now)


class Member(SQLModel, table=True):
    """A person in a household (人到户) with the relation to the head; ``left`` None while
    a member (kept as history)."""

    __tablename__ = "population_household_member"

    id: int | None = Field(default=None, primary_key=True)
    household_id: int = Field(foreign_key="population_household.id", index=True)
    person_id: int = Field(foreign_key="population_person.id", index=True)
    node_path: str = Field(sa_type=PATH_TYPE, index=True)
    relation: str = Field(default="other", max_length=20)
    joined: date
    left: date | None = None


class ImportRun(SQLModel, table=True):
    """One spreadsheet import (批量导入): its checked plan while ``pending``, then the run.

    ``inserted``/``updated``/``unchanged``/``claimed`` hold the planned counts while pending and
    the applied ones once done; ``errors`` is a JSON list of ``{row, column, message}`` (the
    first ``MAX_STORED_ERRORS``; ``error_count`` counts all), then the warnings (with
    ``"warning": true``, e.g. an unknown area code). No personal data is stored here
    beyond the uploaded file's name.
    """

    __tablename__ = "population_import"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, index=True)
    node_id: int = Field(foreign_key="grid_node.id", index=True)
    filename: str = Field(default="", max_length=200)
    fmt: str = Field(default="xlsx", max_length=10)
    mode: str = Field(default="upsert", max_length=10)
    status: str = Field(default="pending", max_length=10, index=True)
    total: int = 0
    done: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    claimed: int = 0
    error_count: int = 0
    errors: str = Field(default="[]", sa_type=Text)
    message: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=_now)
    finished_at: datetime | None = None
