"""The division roster (区划名册): ``code, name, parent_code, level`` as CSV or xlsx.

Import validates every row first and reports each problem with its row number in Chinese; if
any row fails, nothing is written. Export writes the same format (codes as text cells in xlsx,
so no spreadsheet turns them into numbers).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlmodel import Session

from yiwang.errors import ValidationError
from yiwang.grid import codes
from yiwang.grid.levels import Level
from yiwang.grid.models import utcnow
from yiwang.grid.service import add_nodes
from yiwang.grid.tree import ROW_COLUMNS, NewNode, T, bulk_create, check_name, within
from yiwang.pinyin import pinyin_initials

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

COLUMNS = ("code", "name", "parent_code", "level")
#: Accepted header spellings (English or Chinese) for each column.
HEADERS: dict[str, str] = {
    "code": "code", "编码": "code", "区划编码": "code", "代码": "code",
    "name": "name", "名称": "name", "区划名称": "name",
    "parent_code": "parent_code", "上级编码": "parent_code", "父级编码": "parent_code",
    "level": "level", "层级": "level", "级别": "level",
}  # fmt: skip
EXPORT_HEADER = ("code", "name", "parent_code", "level")
FORMATS = ("csv", "xlsx")


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int


def detect_format(path: Path, explicit: str | None = None) -> str:
    fmt = (explicit or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValidationError(f"不支持的文件格式 {fmt or '（无扩展名）'}，请使用 .csv 或 .xlsx")
    return fmt


def _csv_rows(data: bytes) -> Iterator[list[Any]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValidationError("无法识别文件编码，请保存为 UTF-8 或 GB18030 编码的 CSV")
    yield from csv.reader(io.StringIO(text, newline=""))


def _xlsx_rows(data: bytes) -> Iterator[list[Any]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValidationError(f"无法读取 xlsx 文件: {exc}") from None
    try:
        for row in wb.worksheets[0].iter_rows(values_only=True):
            yield list(row)
    finally:
        wb.close()


def read_rows(data: bytes, fmt: str) -> list[tuple[int, dict[str, Any]]]:
    """Rows as ``(row number, {column: value})``; the header row is row 1."""
    rows = _csv_rows(data) if fmt == "csv" else _xlsx_rows(data)
    header = next(rows, None)
    if header is None:
        raise ValidationError("文件为空")
    names = [HEADERS.get(str(h).strip().lower() if h is not None else "", "") for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ValidationError(
            f"缺少列: {', '.join(missing)}（表头应为 code,name,parent_code,level 或 编码,名称,上级编码,层级）"
        )
    out = []
    for number, raw in enumerate(rows, start=2):
        if all(v is None or str(v).strip() == "" for v in raw):
            continue
        out.append((number, {name: raw[i] if i < len(raw) else None for i, name in enumerate(names) if name}))
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse(rows: list[tuple[int, dict[str, Any]]]) -> tuple[list[NewNode], list[str], list[str]]:
    """Rows into nodes sorted parents-first, with their row labels; problems in Chinese."""
    problems: list[str] = []
    parsed: list[tuple[int, NewNode]] = []
    seen: dict[str, int] = {}
    for number, row in rows:
        where = f"第 {number} 行"
        try:
            level = Level.parse(row["level"])
        except ValueError:
            problems.append(f"{where}: 层级 {_text(row['level'])!r} 无法识别（应为 1–7 或 省/市/县/乡镇/社区/网格/单元）")
            continue
        try:
            if isinstance(row["code"], float) or isinstance(row["parent_code"], float):
                raise codes.CodeError("编码被存成了小数，请将编码列设为文本格式")
            code = codes.normalise(row["code"], level)
            parent_text = _text(row["parent_code"])
            if parent_text and level == Level.PROVINCE:
                raise codes.CodeError(f"{level.label}不能有上级编码（{parent_text}）")
            parent = codes.normalise(parent_text, Level(level - 1)) if parent_text else None
            name = check_name(_text(row["name"]))
        except codes.CodeError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if code in seen:
            problems.append(f"{where}: 编码 {code} 与第 {seen[code]} 行重复")
            continue
        seen[code] = number
        parsed.append((number, NewNode(code=code, name=name, level=level, parent_code=parent)))
    parsed.sort(key=lambda item: (item[1].level, item[1].code))
    return [n for _, n in parsed], [f"第 {num} 行" for num, _ in parsed], problems


def import_roster(
    kernel: Kernel, session: Session, data: bytes, fmt: str, *, update_existing: bool = False
) -> ImportResult:
    """Validate and import a roster in the caller's transaction; all or nothing.

    With ``update_existing`` a row whose code exists renames that node (its level and parent
    must match); otherwise an existing code is an error.
    """
    rows = read_rows(data, fmt)
    nodes, labels, problems = parse(rows)
    refused = _refused_codes(rows, nodes, labels) if problems else set()
    renames: list[tuple[int, str]] = []
    if update_existing and nodes:
        existing = {}
        conn = session.connection()
        wanted = [n.code for n in nodes]
        up = T.alias("up")
        for start in range(0, len(wanted), 500):
            stmt = (
                select(T.c.id, T.c.code, T.c.level, up.c.code.label("parent_code"))
                .select_from(T.outerjoin(up, up.c.id == T.c.parent_id))
                .where(T.c.code.in_(wanted[start : start + 500]))
            )
            existing.update({r.code: r for r in conn.execute(stmt)})
        keep_nodes, keep_labels = [], []
        for node, label in zip(nodes, labels, strict=True):
            row = existing.get(node.code)
            if row is None:
                keep_nodes.append(node)
                keep_labels.append(label)
            elif row.level != node.level:
                problems.append(f"{label}: 编码 {node.code} 已存在且层级不同，不能更新")
            elif row.parent_code != node.parent_code:
                problems.append(
                    f"{label}: 编码 {node.code} 已存在且上级不同（现为 {row.parent_code or '无'}），不能更新"
                )
            else:
                renames.append((row.id, node.name))
        nodes, labels = keep_nodes, keep_labels
    if problems:
        # Report the other rows' problems too (those under a refused row excepted).
        problems += _check(kernel, session, nodes, labels, refused)
        raise ValidationError(f"{len(problems)} 行有错误，未导入任何数据", sorted(problems, key=_row_no))
    if not nodes and not renames:
        raise ValidationError("文件中没有数据行")
    if nodes:
        try:
            add_nodes(kernel, session, nodes, labels)
        except ValidationError as exc:
            raise ValidationError(
                f"{len(exc.problems)} 行有错误，未导入任何数据", sorted(exc.problems, key=_row_no)
            ) from None
    for node_id, name in renames:
        session.connection().execute(
            update(T).where(T.c.id == node_id).values(name=name, initials=pinyin_initials(name), updated_at=utcnow())
        )
    return ImportResult(created=len(nodes), updated=len(renames))


def _refused_codes(
    rows: list[tuple[int, dict[str, Any]]], nodes: list[NewNode], labels: list[str]
) -> set[str]:
    """Codes of the rows ``parse`` refused (as far as they can be read)."""
    accepted = set(labels)
    refused: set[str] = set()
    for number, row in rows:
        if f"第 {number} 行" in accepted:
            continue
        try:
            refused.add(codes.normalise(row["code"], Level.parse(row["level"])))
        except ValueError:
            refused.add(_text(row["code"]))
    return refused - {n.code for n in nodes}


def _check(
    kernel: Kernel, session: Session, nodes: list[NewNode], labels: list[str], refused: set[str]
) -> list[str]:
    """Problems of the parsed rows, without writing; rows below a refused row are skipped."""
    below = set(refused)
    keep: list[NewNode] = []
    keep_labels: list[str] = []
    for node, label in zip(nodes, labels, strict=True):  # parents first
        if node.parent_code in below:
            below.add(node.code)
        else:
            keep.append(node)
            keep_labels.append(label)
    try:
        bulk_create(session, keep, kernel.settings.grid_codes, keep_labels, check_only=True)
    except ValidationError as exc:
        return exc.problems
    return []


def _row_no(message: str) -> int:
    head = message.split(" 行", 1)[0].removeprefix("第 ")
    return int(head) if head.isdigit() else 0


def export_rows(session: Session, root_code: str | None = None) -> Iterator[tuple[str, str, str, int]]:
    """``(code, name, parent_code, level)`` for the whole net or one subtree, parents first."""
    conn = session.connection()
    parent = T.alias("parent")
    stmt = (
        select(T.c.code, T.c.name, parent.c.code, T.c.level)
        .select_from(T.outerjoin(parent, parent.c.id == T.c.parent_id))
        .order_by(T.c.level, T.c.code)
    )
    if root_code:
        root = conn.execute(select(*ROW_COLUMNS).where(T.c.code == root_code)).first()
        if root is None:
            raise ValidationError(f"编码为 {root_code} 的节点不存在")
        stmt = stmt.where(within(T.c.path, root.path))
    for code, name, parent_code, level in conn.execution_options(yield_per=5000).execute(stmt):
        yield code, name, parent_code or "", level


def write_export(rows: Iterator[tuple[str, str, str, int]], path: Path, fmt: str) -> int:
    """Write rows to ``path``; returns the number of data rows."""
    count = 0
    if fmt == "csv":
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(EXPORT_HEADER)
            for row in rows:
                writer.writerow(row)
                count += 1
        return count
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("区划名册")
    ws.append(list(EXPORT_HEADER))
    for code, name, parent_code, level in rows:
        cells = []
        for value in (code, name, parent_code):
            cell = WriteOnlyCell(ws, value=value)
            cell.number_format = "@"  # text: a spreadsheet must never turn a code into a number
            cells.append(cell)
        cells.append(WriteOnlyCell(ws, value=level))
        ws.append(cells)
        count += 1
    wb.save(path)
    return count
