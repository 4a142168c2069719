"""Reveal (permission + purpose + audit record) and exports (masked by default, numbers as text)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select
from sqlmodel import Field, SQLModel

from yiwang.api import (
    ValidationError,
    audit_reveal,
    blind_index_field,
    csv_values,
    mask,
    masked_row,
    personal_field,
    reveal,
    sensitive_field,
    text_fields,
    xlsx_append,
)
from yiwang.audit import Actor, AuditEvent
from yiwang.errors import Forbidden
from yiwang.privacy import PrivacyError

ID = "450103199001011238"
MOBILE = "13812345678"
OFFICER = Actor(user_id=7, username="wang", role="community_staff", node_id=3)


class Person(SQLModel, table=True):
    __tablename__ = "test_privacy_person"

    id: int | None = Field(default=None, primary_key=True)
    name: str = personal_field("name", "姓名")
    id_number: str = sensitive_field("id_number", "公民身份号码")
    id_number_bidx: str | None = blind_index_field()
    phone: str | None = sensitive_field("phone", "联系电话", default=None)
    address: str | None = personal_field("address", "现住址", default=None)
    grid: str = ""


@pytest.fixture
def db(kernel: Any) -> Iterator[Any]:
    table = Person.__table__  # type: ignore[attr-defined]
    table.create(kernel.db.engine)
    with kernel.db.write() as s:
        s.add(
            Person(
                id=1,
                name="欧阳娜娜",
                id_number=ID,
                phone=MOBILE,
                address="南宁市青秀区民族大道12号",
                grid="一网格",
            )
        )
    yield kernel.db
    table.drop(kernel.db.engine)


def events(db: Any) -> list[Any]:
    with db.read() as s:
        return list(s.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars())


def test_reveal_returns_plain_text_and_writes_an_audit_record(db: Any) -> None:
    with db.write() as s:
        person = s.get(Person, 1)
        plain = reveal(s, OFFICER, person, "id_number", "  核实身份办理低保  ", allowed=True)
    assert plain == ID
    (event,) = events(db)
    assert (event.action, event.object_type, event.object_id) == (
        "privacy.reveal",
        "test_privacy_person",
        "1",
    )
    assert (event.username, event.role, event.result) == ("wang", "community_staff", "ok")
    assert event.purpose == "核实身份办理低保"
    assert json.loads(event.detail) == {"field": "id_number"}
    assert ID not in event.detail + event.purpose


@pytest.mark.parametrize("purpose", ["", "   ", "看看", "查 询 "])
def test_reveal_needs_a_stated_purpose(db: Any, purpose: str) -> None:
    with db.write() as s, pytest.raises(ValidationError, match="须填写用途（至少 4 个字）"):
        reveal(s, OFFICER, s.get(Person, 1), "id_number", purpose, allowed=True)
    assert events(db) == []


def test_reveal_needs_the_routes_permission_decision(db: Any) -> None:
    with db.write() as s, pytest.raises(Forbidden, match="没有查看该敏感信息的权限"):
        reveal(s, OFFICER, s.get(Person, 1), "id_number", "核实身份办理低保", allowed=False)
    with db.write() as s, pytest.raises(TypeError):
        reveal(s, OFFICER, s.get(Person, 1), "id_number", "核实身份办理低保")  # type: ignore[call-arg]
    assert events(db) == []


def test_reveal_happens_in_a_write_unit_and_stands_or_falls_with_it(db: Any) -> None:
    with db.read() as s, pytest.raises(PrivacyError, match="写事务"):
        reveal(s, OFFICER, s.get(Person, 1), "phone", "核实联系方式", allowed=True)
    with pytest.raises(RuntimeError), db.write() as s:
        reveal(s, OFFICER, s.get(Person, 1), "phone", "核实联系方式", allowed=True)
        raise RuntimeError("the page failed before it showed anything")
    assert events(db) == []  # rolled back with the unit: the caller never used the value


def test_only_declared_personal_fields_are_revealed(db: Any) -> None:
    with db.write() as s, pytest.raises(PrivacyError, match="不是已声明的个人信息字段"):
        reveal(s, OFFICER, s.get(Person, 1), "grid", "核实网格归属", allowed=True)
    with db.write() as s:
        assert (
            reveal(s, OFFICER, s.get(Person, 1), "name", "核实身份办理低保", allowed=True)
            == "欧阳娜娜"
        )


def test_masked_rows_for_exports(db: Any) -> None:
    fields = ["name", "id_number", "phone", "address", "grid"]
    with db.read() as s:
        person = s.get(Person, 1)
        assert masked_row(person, fields) == {
            "name": "欧阳**",
            "id_number": "450***********1238",
            "phone": "138****5678",
            "address": "南宁市青秀区****",
            "grid": "一网格",
        }
        assert masked_row(person, fields, reveal={"phone"})["phone"] == MOBILE
        assert masked_row(person, fields, reveal=True)["id_number"] == ID
        row = {"姓名": "张三", "身份证": ID}
        assert masked_row(
            row, ["姓名", "身份证"], kinds={"姓名": "name", "身份证": "id_number"}
        ) == {"姓名": "张*", "身份证": mask(ID, "id_number")}
    assert text_fields(Person, fields) == {"id_number", "phone"}


def test_an_unmasked_export_is_one_audited_reveal(db: Any) -> None:
    with db.write() as s:
        audit_reveal(
            s,
            OFFICER,
            object_type="test_privacy_person",
            object_id="export",
            fields=["id_number", "phone"],
            purpose="上报民政部门核对",
            allowed=True,
            detail={"count": 1},
        )
    (event,) = events(db)
    assert json.loads(event.detail) == {"fields": ["id_number", "phone"], "count": 1}


def test_xlsx_keeps_numbers_as_text_and_never_writes_formulas(tmp_path: Any) -> None:
    wb = Workbook()
    ws = wb.active
    xlsx_append(ws, ["姓名", "身份证号", "电话", "备注"])
    xlsx_append(ws, ["张三", ID, 13812345678, '=HYPERLINK("http://x")'], text={1, 2})
    xlsx_append(ws, ["李四", None, None, 3], text={1, 2})
    wb.save(tmp_path / "out.xlsx")
    sheet = load_workbook(tmp_path / "out.xlsx").active
    assert (
        sheet["B2"].value == ID
        and sheet["B2"].data_type == "s"
        and sheet["B2"].number_format == "@"
    )
    assert sheet["C2"].value == MOBILE and sheet["C2"].data_type == "s"
    assert sheet["D2"].value.startswith("=") and sheet["D2"].data_type == "s"
    assert sheet["B3"].number_format == "@" and sheet["D3"].value == 3


def test_csv_values_are_not_formulas() -> None:
    out = io.StringIO()
    csv.writer(out).writerow(csv_values(["=1+1", "+8613812345678", "-5", "@SUM(A1)", None, ID]))
    assert out.getvalue().strip() == f"'=1+1,+8613812345678,-5,'@SUM(A1),,{ID}"
