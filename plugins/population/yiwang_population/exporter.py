"""Exports of the person list (xlsx/CSV): the list's filter, scoped in SQL, masked unless the
user revealed them with a purpose (audited by the caller). ID and phone cells are text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from yiwang.api import Node, csv_values, masked_row, text_fields

from yiwang_population.models import KINDS, Person

FIELDS = ("name", "id_number", "sex", "birth_date", "kind", "ethnicity", "phone", "hukou_address",
          "address", "occupation", "grid", "grid_name", "tags")  # fmt: skip
HEADER = ("姓名", "公民身份号码", "性别", "出生日期", "类别", "民族", "联系电话", "户籍地址", "现住址",
          "职业", "所属网格编码", "所属网格", "标签")  # fmt: skip
#: Fields revealed by an export with a stated purpose.
REVEALED = ("name", "id_number", "phone", "address", "hukou_address")
#: Personal fields of the Core rows (the Person model declares the same kinds).
KINDS_OF = {"name": "name", "id_number": "id_number", "phone": "phone", "address": "address",
            "hukou_address": "address"}  # fmt: skip
TEXT = {FIELDS.index(f) for f in text_fields(Person, FIELDS, KINDS_OF) | {"grid"}}


def rows(session: Session, conditions: list[Any], *, reveal: bool) -> Iterator[list[Any]]:
    """The export's rows in list order, streamed from the database."""
    stmt = (
        select(Person, col(Node.code), col(Node.name))
        .join(Node, col(Node.id) == Person.node_id)
        .where(*conditions)
        .order_by(col(Person.node_path), col(Person.id))
        .execution_options(yield_per=1000)
    )
    for person, code, grid_name in session.execute(stmt):
        values = {f: getattr(person, f) for f in FIELDS if f not in ("grid", "grid_name")}
        values |= {
            "grid": code,
            "grid_name": grid_name,
            "kind": KINDS.get(person.kind, person.kind),
        }
        values["birth_date"] = (
            "" if not reveal or person.birth_date is None else str(person.birth_date)
        )
        out = masked_row(values, FIELDS, reveal=REVEALED if reveal else False, kinds=KINDS_OF)
        yield [out[f] for f in FIELDS]


def to_xlsx(data: Iterator[list[Any]]) -> tuple[bytes, int]:
    """The rows as an xlsx workbook (write-only: memory stays small) and their count."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("实有人口")
    ws.append(list(HEADER))
    n = 0
    for values in data:
        cells = []
        for i, v in enumerate(values):
            cell = WriteOnlyCell(ws, value="" if v is None else (str(v) if i in TEXT else v))
            if isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula
            if i in TEXT:
                cell.number_format = "@"
            cells.append(cell)
        ws.append(cells)
        n += 1
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), n


def to_csv(data: Iterator[list[Any]]) -> tuple[bytes, int]:
    """The rows as UTF-8 CSV with a BOM, formula-looking cells neutralised, and their count."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(HEADER)
    n = 0
    for values in data:
        writer.writerow(csv_values(values))
        n += 1
    return buf.getvalue().encode("utf-8-sig"), n
