"""Sensitive fields at rest: AES-256-GCM ciphertext bound to its column, blind indexes filled by
the unit of work, lookups without decryption — on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import StatementError
from sqlmodel import Field, Session, SQLModel

from yiwang.api import (
    Codec,
    DecryptionError,
    blind_equals,
    blind_in,
    blind_index_field,
    lookup,
    personal_field,
    sensitive_field,
)
from yiwang.keys import DataKeys
from yiwang.privacy import PrivacyError, bind_data_keys, keys_of
from yiwang.privacy.fields import Encrypted, blind_index_pairs, render_item

ID = "450103199001011238"
ID15 = "450103900101123"  # the same person's old number
MOBILE = "13812345678"


class Resident(SQLModel, table=True):
    __tablename__ = "test_privacy_resident"

    id: int | None = Field(default=None, primary_key=True)
    name: str = personal_field("name", "姓名")
    id_number: str = sensitive_field("id_number", "公民身份号码")
    id_number_bidx: str | None = blind_index_field()
    phone: str | None = sensitive_field("phone", "联系电话", default=None)
    phone_bidx: str | None = blind_index_field()
    note: str | None = sensitive_field("other", "备注", default=None)


class Copy(SQLModel, table=True):
    """Another table with a column of the same name: ciphertexts must not move across."""

    __tablename__ = "test_privacy_copy"

    id: int | None = Field(default=None, primary_key=True)
    id_number: str = sensitive_field("id_number", "公民身份号码")


TABLES = [Resident.__table__, Copy.__table__]  # type: ignore[attr-defined]


@pytest.fixture
def db(kernel: Any) -> Iterator[Any]:
    for table in TABLES:
        table.create(kernel.db.engine)
    yield kernel.db
    for table in TABLES:
        table.drop(kernel.db.engine)


def raw(db: Any, sql: str, **params: Any) -> list[Any]:
    """Run SQL around the ORM (and its decryption); rows of a SELECT."""
    with db.engine.connect() as conn:
        result = conn.execute(text(sql), params)
        rows = result.all() if result.returns_rows else []
        conn.commit()
    return rows


def add(db: Any, **values: Any) -> int:
    with db.write() as s:
        resident = Resident(**{"name": "张三", "id_number": ID, **values})
        s.add(resident)
        s.flush()
        assert resident.id is not None
        return resident.id


def test_sensitive_values_are_stored_as_authenticated_ciphertext(db: Any) -> None:
    first, second = add(db, phone=MOBILE), add(db, phone=MOBILE)
    rows = raw(
        db,
        "SELECT id_number, phone, id_number_bidx, phone_bidx, name FROM test_privacy_resident ORDER BY id",
    )
    for row in rows:
        assert row.id_number.startswith("v1:") and ID not in row.id_number
        assert row.phone.startswith("v1:") and MOBILE not in row.phone
        assert row.name == "张三"  # a general personal field is stored as is
    assert rows[0].id_number != rows[1].id_number  # random nonces
    assert rows[0].id_number_bidx == rows[1].id_number_bidx and len(rows[0].id_number_bidx) == 32
    with db.read() as s:
        loaded = s.get(Resident, first)
        assert (loaded.id_number, loaded.phone) == (ID, MOBILE)
        assert s.execute(select(Resident.id_number).where(Resident.id == second)).scalar_one() == ID
        assert ID not in repr(loaded) and MOBILE not in repr(loaded)


def test_blind_index_follows_inserts_and_updates(db: Any) -> None:
    rid = add(db, phone=MOBILE)
    with db.write() as s:
        assert [r.id for r in lookup(s, Resident.phone, MOBILE)] == [rid]
        s.get(Resident, rid).phone = "13900001111"
    with db.write() as s:
        assert lookup(s, Resident.phone, MOBILE) == []
        assert [r.id for r in lookup(s, Resident.phone, "139 0000 1111")] == [rid]
        resident = s.get(Resident, rid)
        resident.name = "张三丰"  # other columns change: the index stays
        bidx = resident.id_number_bidx
    with db.write() as s:
        resident = s.get(Resident, rid)
        assert resident.id_number_bidx == bidx
        resident.phone = None
    assert raw(db, "SELECT phone, phone_bidx FROM test_privacy_resident")[0] == (None, None)


def test_lookup_normalises_like_the_index(db: Any) -> None:
    rid = add(db, phone=MOBILE)
    x_id = "11010519491231002X"
    xid = add(db, id_number=x_id)
    with db.read() as s:
        for spelling in (ID, f" {ID} ", ID15, "４５０１０３１９９００１０１１２３８"):
            assert [r.id for r in lookup(s, Resident.id_number, spelling)] == [rid], spelling
        assert [r.id for r in lookup(s, Resident.id_number, x_id.lower())] == [xid]
        for spelling in ("+86 138 1234 5678", "0086-138-1234-5678", "138-1234-5678"):
            assert [r.id for r in lookup(s, Resident.phone, spelling)] == [rid], spelling
        found = s.execute(
            select(Resident.id).where(blind_in(Resident.id_number, [x_id, "nobody", ID]))
        ).scalars()
        assert sorted(found) == sorted([rid, xid])
        count = s.execute(
            select(Resident.id).where(blind_equals(Resident.__table__.c.id_number, ID))
        ).all()
        assert len(count) == 1


def test_encrypted_columns_refuse_sql_comparisons() -> None:
    for attempt in (
        lambda: Resident.id_number == ID,
        lambda: Resident.id_number.in_([ID]),
        lambda: Resident.phone.like("138%"),
        lambda: Resident.id_number > "4",
        lambda: ID == Resident.id_number,
    ):
        with pytest.raises(PrivacyError, match="blind_equals"):
            attempt()
    Resident.phone.is_(None)
    assert str(Resident.phone == None).endswith("IS NULL")  # noqa: E711 - IS NULL stays allowed
    with pytest.raises(PrivacyError, match="没有盲索引"):
        blind_equals(Resident.note, "x")
    with pytest.raises(PrivacyError, match="不是加密字段"):
        blind_equals(Resident.name, "张三")


def test_tampered_moved_or_foreign_ciphertexts_fail_loudly(db: Any, kernel: Any) -> None:
    rid = add(db, phone=MOBILE)
    (token,) = raw(db, "SELECT id_number FROM test_privacy_resident")[0]

    def load() -> Any:
        with db.read() as s:
            return s.execute(select(Resident).where(Resident.id == rid)).scalar_one()

    # one changed character of the ciphertext
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    raw(db, "UPDATE test_privacy_resident SET id_number = :t", t=flipped)
    with pytest.raises(DecryptionError, match="test_privacy_resident.id_number: 认证失败"):
        load()
    # the phone's ciphertext moved into the id_number column of the same row
    raw(db, "UPDATE test_privacy_resident SET id_number = phone")
    with pytest.raises(DecryptionError, match="认证失败"):
        load()
    # a value written around the ORM, unencrypted
    raw(db, "UPDATE test_privacy_resident SET id_number = :t", t=ID)
    with pytest.raises(DecryptionError, match="版本不可识别"):
        load()
    # a ciphertext copied from a column of the same name in another table
    raw(db, "UPDATE test_privacy_resident SET id_number = :t", t=token)
    assert load().id_number == ID
    raw(db, "INSERT INTO test_privacy_copy (id, id_number) VALUES (1, :t)", t=token)
    with db.read() as s, pytest.raises(DecryptionError, match="test_privacy_copy.id_number"):
        s.execute(select(Copy)).all()
    # another deployment's keys
    bind_data_keys(db.engine, DataKeys(os.urandom(32), os.urandom(32)))
    with pytest.raises(DecryptionError, match="密钥与加密时不同"):
        load()


def test_keys_belong_to_each_engine_and_are_required() -> None:
    one, two = create_engine("sqlite://"), create_engine("sqlite://")
    keys = DataKeys(os.urandom(32), os.urandom(32))
    bind_data_keys(one, keys)
    loads: list[int] = []

    def loader() -> DataKeys:
        loads.append(1)
        return DataKeys(os.urandom(32), os.urandom(32))

    bind_data_keys(two, loader)
    assert keys_of(one) is keys and keys_of(two) is keys_of(two) and len(loads) == 1
    with Session(one) as s:
        assert keys_of(s) is keys
    bare = create_engine("sqlite://")
    Resident.__table__.create(bare)  # type: ignore[attr-defined]
    with Session(bare) as s:
        s.add(Resident(name="张三", id_number=ID))
        with pytest.raises(PrivacyError, match="未加载数据密钥"):
            s.flush()


def test_kernel_binds_its_deployment_keys(kernel: Any) -> None:
    from yiwang.keys import data_keys

    assert keys_of(kernel.db.engine) == data_keys(kernel.settings)


def test_bulk_rows_outside_the_unit_of_work(db: Any) -> None:
    table = Resident.__table__  # type: ignore[attr-defined]
    with db.write() as s:
        codec = Codec(s)
        # Core insert: the column type encrypts, the codec adds the blind indexes
        rows = [
            codec.row(
                table, {"name": f"居民{i}", "id_number": ID if i == 0 else f"X{i}", "phone": None}
            )
            for i in range(3)
        ]
        s.execute(insert(table), rows)
        # a raw driver (COPY, executemany) needs the values sealed too
        sealed = codec.row(
            table,
            {"id": 100, "name": "李四", "id_number": "11010519491231002X", "phone": MOBILE},
            encrypt=True,
        )
        assert sealed["id_number"].startswith("v1:") and sealed["phone_bidx"] == codec.blind_index(
            "phone", MOBILE
        )
        s.execute(
            text(
                "INSERT INTO test_privacy_resident (id, name, id_number, id_number_bidx, phone, phone_bidx) "
                "VALUES (:id, :name, :id_number, :id_number_bidx, :phone, :phone_bidx)"
            ),
            sealed,
        )
        assert codec.decrypt(table.c.phone, sealed["phone"]) == MOBILE
    with db.read() as s:
        assert [r.name for r in lookup(s, Resident.id_number, ID)] == ["居民0"]
        (li,) = lookup(s, Resident.phone, MOBILE)
        assert (li.id, li.id_number) == (100, "11010519491231002X")


def test_a_codec_pickled_for_a_worker_process_seals_with_the_same_keys(db: Any) -> None:
    """A bulk load hands its codec to a worker process it starts: the copy's ciphertexts open
    with the original and its blind indexes are the database's."""
    import pickle

    table = Resident.__table__  # type: ignore[attr-defined]
    with db.read() as s:
        codec = Codec(s)
    copy = pickle.loads(pickle.dumps(codec))
    assert copy.blind_index("phone", MOBILE) == codec.blind_index("phone", MOBILE)
    sealed = copy.encrypt(table.c.phone, MOBILE)
    assert sealed != codec.encrypt(table.c.phone, MOBILE)  # a fresh nonce each time
    assert codec.decrypt(table.c.phone, sealed) == MOBILE


def test_associated_data_names_table_and_column() -> None:
    assert Resident.__table__.c.id_number.type.aad == "test_privacy_resident.id_number"  # type: ignore[attr-defined]
    assert Copy.__table__.c.id_number.type.aad == "test_privacy_copy.id_number"  # type: ignore[attr-defined]

    class Base(SQLModel):
        secret: str = sensitive_field("other", "秘密")

    class First(Base, table=True):
        __tablename__ = "test_privacy_first"
        id: int | None = Field(default=None, primary_key=True)

    class Second(Base, table=True):
        __tablename__ = "test_privacy_second"
        id: int | None = Field(default=None, primary_key=True)

    assert First.__table__.c.secret.type.aad == "test_privacy_first.secret"  # type: ignore[attr-defined]
    assert Second.__table__.c.secret.type.aad == "test_privacy_second.secret"  # type: ignore[attr-defined]
    renamed = Table(
        "test_privacy_renamed", MetaData(), Column("x", Encrypted("other", aad="old_table.x"))
    )
    assert renamed.c.x.type.aad == "old_table.x"


def test_declaration_mistakes_are_named() -> None:
    with pytest.raises(PrivacyError, match="不能建索引"):
        sensitive_field("id_number", "号码", index=True)
    with pytest.raises(PrivacyError, match="未知的个人信息类别"):
        sensitive_field("passport", "护照")

    class Orphan(SQLModel, table=True):
        __tablename__ = "test_privacy_orphan"
        id: int | None = Field(default=None, primary_key=True)
        name: str = ""
        name_bidx: str | None = blind_index_field()

    with pytest.raises(PrivacyError, match="加密字段 name"):
        blind_index_pairs(inspect(Orphan))
    pairs = blind_index_pairs(inspect(Resident))
    assert [(p.source, p.index, p.kind) for p in pairs] == [
        ("id_number", "id_number_bidx", "id_number"),
        ("phone", "phone_bidx", "phone"),
    ]


def _only_residents(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table == "test_privacy_resident"


def test_migrations_store_encrypted_columns_as_text(db: Any) -> None:
    """Autogenerate writes ``sa.Text()``, and a table migrated that way matches the model."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from yiwang.db import migrations

    assert render_item("type", Resident.__table__.c.id_number.type, None) == "sa.Text()"  # type: ignore[attr-defined]
    assert render_item("type", String(20), None) is False
    env = Path(migrations.__file__).with_name("env.py").read_text(encoding="utf-8")
    assert "render_item=render_item" in env
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _only_residents}
        )
        assert compare_metadata(ctx, SQLModel.metadata) == []
        columns = {c["name"]: c["type"] for c in inspect(conn).get_columns("test_privacy_resident")}
    assert isinstance(columns["id_number"], Text)


def test_binding_errors_surface_with_the_message(db: Any) -> None:
    with db.read() as s:
        s.add(Resident(name="张三", id_number=450103199001011238))
        with pytest.raises(PrivacyError, match="只接受文本"):
            s.flush()
    with db.read() as s:
        s.add(Resident(name="张三", id_number="x", note=12))
        with pytest.raises(StatementError, match="只接受文本"):
            s.flush()
