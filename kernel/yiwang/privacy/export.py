"""Exports (xlsx/csv) masked by default, with identity and phone columns kept as text.

``masked_row(person, ["name", "id_number", "phone", "grid"])`` gives the row's values with every
personal field masked by its kind. Unmasked exports (``reveal=``) need the same permission,
purpose and audit record as ``reveal``: call ``audit_reveal`` once for the export first.

An 18-digit number written to a spreadsheet as a number loses its last digits, so
``xlsx_append`` writes the text columns as text cells (format ``@``) and never lets a value
become a formula; ``csv_values`` neutralises formula-looking cells for CSV.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import NoInspectionAvailable

from yiwang.privacy.fields import classification
from yiwang.privacy.masking import mask

#: Kinds whose values look like numbers but must stay text in spreadsheets.
TEXT_KINDS = frozenset({"id_number", "phone"})

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def field_kinds(model: Any, fields: Sequence[str]) -> dict[str, str]:
    """Kind of each personal field among ``fields`` of ``model`` (others are left out)."""
    try:
        mapper: Any = inspect(model)
    except NoInspectionAvailable:
        return {}
    mapper = getattr(mapper, "mapper", mapper)
    out = {}
    for name in fields:
        prop = mapper.column_attrs.get(name)
        info = classification(prop.columns[0]) if prop is not None else None
        if info is not None:
            out[name] = info["kind"]
    return out


def masked_row(
    obj: Any,
    fields: Sequence[str],
    *,
    reveal: bool | Collection[str] = False,
    kinds: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The values of ``fields`` of ``obj`` (a model instance or a mapping), personal ones masked.

    Parameters
    ----------
    fields: attribute (or key) names, in column order.
    reveal: True, or the names of fields to leave unmasked — only after ``audit_reveal``.
    kinds: kinds of personal fields not declared on the model (e.g. rows of a Core select).

    Personal values come back as ``str`` ("" for None); other values unchanged.
    """
    known = {**field_kinds(type(obj), fields), **(kinds or {})}
    out: dict[str, Any] = {}
    for name in fields:
        value = obj[name] if isinstance(obj, Mapping) else getattr(obj, name)
        kind = known.get(name)
        if kind is None:
            out[name] = value
        elif reveal is True or (not isinstance(reveal, bool) and name in reveal):
            out[name] = "" if value is None else str(value)
        else:
            out[name] = mask(value, kind)
    return out


def text_fields(
    model: Any, fields: Sequence[str], kinds: Mapping[str, str] | None = None
) -> set[str]:
    """The fields among ``fields`` that spreadsheets must keep as text (identity numbers, phones)."""
    known = {**field_kinds(model, fields), **(kinds or {})}
    return {name for name in fields if known.get(name) in TEXT_KINDS}


def xlsx_append(ws: Any, values: Sequence[Any], *, text: Collection[int] = ()) -> None:
    """Append a row to an openpyxl worksheet.

    Cells whose 0-based position is in ``text`` are written as text with the text format
    ``@``; no string cell ever becomes a formula.
    """
    ws.append([("" if v is None else str(v)) if i in text else v for i, v in enumerate(values)])
    for i, cell in enumerate(ws[ws.max_row]):
        if isinstance(cell.value, str):
            cell.data_type = "s"  # openpyxl would store "=…" as a formula
        if i in text:
            cell.number_format = "@"


def xlsx_cells(ws: Any, values: Sequence[Any], *, text: Collection[int] = ()) -> list[Any]:
    """The cells of a row for a write-only openpyxl worksheet (``Workbook(write_only=True)``,
    memory stays small for any number of rows): ``ws.append(xlsx_cells(ws, values, text=...))``.
    Same rules as ``xlsx_append``: positions in ``text`` are text cells (format ``@``), no
    string becomes a formula."""
    from openpyxl.cell import WriteOnlyCell

    cells = []
    for i, v in enumerate(values):
        cell = WriteOnlyCell(ws, value=("" if v is None else str(v)) if i in text else v)
        if isinstance(cell.value, str):
            cell.data_type = "s"  # openpyxl would store "=…" as a formula
        if i in text:
            cell.number_format = "@"
        cells.append(cell)
    return cells


def csv_values(values: Sequence[Any]) -> list[str]:
    """Values for ``csv.writer``: None as "", a cell that a spreadsheet would run as a formula
    prefixed with ``'`` (plain numbers such as ``+8613812345678`` are left alone)."""
    out = []
    for value in values:
        text = "" if value is None else str(value)
        if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
            text = "'" + text
        out.append(text)
    return out


__all__ = [
    "TEXT_KINDS", "csv_values", "field_kinds", "masked_row", "text_fields", "xlsx_append", "xlsx_cells",
]  # fmt: skip
