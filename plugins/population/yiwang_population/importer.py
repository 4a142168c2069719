"""Batch import of persons from xlsx or CSV (批量导入): template, streamed parsing, validation of
every row with Chinese per-row errors, and the all-or-nothing apply.

Rows are read one at a time (openpyxl ``read_only``) and checked in batches of ``BATCH``: one
query per batch finds the persons already registered under the rows' ID numbers (by blind
index), so memory stays bounded except for the ID numbers seen (duplicates in the file), kept
as integers in a flat table (``_Seen``, ≈ 32 bytes a row).
``apply`` checks and writes in one pass inside the caller's unit of work: new persons batch by
batch straight to the driver (``bulk``: the kernel's ciphertexts and blind indexes, one rollup
delta per grid and kind, one audit record per batch), updates and claims through the service
functions (kind history, claims, audit). Once a row fails nothing more is written and the rest
is only checked; the caller then rolls back, so the transaction writes nothing.

A large file (``PARALLEL_ROWS`` rows or more in its preview) is applied on two cores: a worker
process started for it (``multiprocessing``, spawned) reads, parses and validates the rows,
finds the duplicates in the file and seals the new persons' stored rows, while this process
resolves grids, looks up registered persons and writes — the same checks in the same order,
the same outcomes (tested against the one-process path). Threads would not help: the work is
Python, under one GIL.

Error messages name the row and column, never the ID number or phone: they are stored and shown.
"""

from __future__ import annotations

import codecs
import csv
import io
import multiprocessing
import re
import zipfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import ARRAY, String, any_, bindparam, select
from sqlmodel import Session, col

from yiwang.api import (
    Actor,
    IdInfo,
    InvalidIdNumber,
    Level,
    Node,
    ValidationError,
    audit,
    stats,
    validate_id,
)

from yiwang_population import bulk, service
from yiwang_population.models import INDICATOR, KINDS, Person


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    required: bool
    help: str


COLUMNS: tuple[Column, ...] = (
    Column("name", "姓名", True, "必填，最多 60 字"),
    Column("id_number", "公民身份号码", True,
           "必填，18 位（15 位旧号码自动升级）；本列须为文本格式，数字格式会丢失末位"),
    Column("kind", "类别", True, "新增人员必填：户籍、流动、境外、未落户（下拉选择）；更新时留空表示不变"),
    Column("sex", "性别", False, "可留空：由公民身份号码推算；填写时须与号码一致"),
    Column("ethnicity", "民族", False, "如：汉族、壮族"),
    Column("phone", "联系电话", False, "手机或固定电话，本列为文本格式"),
    Column("hukou_address", "户籍地址", False, "最多 200 字"),
    Column("address", "现住址", False, "最多 200 字"),
    Column("occupation", "职业", False, "最多 60 字"),
    Column("grid", "所属网格编码", True, "必填：人员登记所在网格的编码，须在您的辖区内；本列为文本格式"),
    Column("tags", "标签", False, "多个标签用逗号分隔，如：独居老人,退役军人"),
)  # fmt: skip
TITLES = {c.key: c.header for c in COLUMNS}
#: Columns kept as text in spreadsheets (identity number, phone, grid code).
TEXT_KEYS = ("id_number", "phone", "grid")
HEADERS: dict[str, str] = {c.header: c.key for c in COLUMNS} | {c.key: c.key for c in COLUMNS} | {
    "身份证号": "id_number", "身份证号码": "id_number", "人员类别": "kind", "电话": "phone",
    "手机": "phone", "手机号码": "phone", "网格编码": "grid", "居住地址": "address",
}  # fmt: skip
#: Accepted values of 类别: the short labels (the template's dropdown), full names and keys.
KIND_LABELS = {
    "户籍": "registered",
    "流动": "floating",
    "境外": "foreign",
    "未落户": "unregistered",
}
KIND_VALUES = KIND_LABELS | {v: k for k, v in KINDS.items()} | {k: k for k in KINDS}
MODES = {"upsert": "新增并更新", "insert": "仅新增", "update": "仅更新"}
FORMATS = ("xlsx", "csv")
BATCH = 500
#: Files with at least this many rows are parsed, validated and sealed in a worker process.
PARALLEL_ROWS = 20_000
MAX_STORED_ERRORS = 1000
NUMERIC_ID = "公民身份号码须为文本格式（18 位），数字格式会丢失末位"
NUMERIC_PHONE = "联系电话须为文本格式，数字格式会丢失开头的 0"
_NUMBER_LOOK = re.compile(r"^\d+(\.\d*)?[eE][+-]?\d+$|^\d+\.\d*$|^\d{16,17}$")


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass(frozen=True)
class Grid:
    id: int
    code: str
    path: str


@dataclass
class Outcome:
    """What a row would do: ``new``, ``claim`` (ID held by another grid), ``update``,
    ``unchanged`` or ``error``."""

    number: int
    raw: list[Any]
    action: str = "error"
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    info: IdInfo | None = None
    grid: Grid | None = None
    person: Person | None = None
    changes: dict[str, str | None] = field(default_factory=dict)
    kind: str = ""
    bidx: str = ""  # blind index of the ID number, made once for the lookup and the insert
    sealed: tuple[Any, ...] | None = None  # the stored row less its grid, sealed by the worker


@dataclass
class Plan:
    """Counts of a checked (or applied) file and its first errors and warnings."""

    total: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    claimed: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)

    def count(self, out: Outcome) -> None:
        self.total += 1
        attr = _COUNTED.get(out.action)
        if attr:
            setattr(self, attr, getattr(self, attr) + 1)
        else:
            self.error_count += 1
        if out.errors:
            self.errors.extend(out.errors[: max(MAX_STORED_ERRORS - len(self.errors), 0)])
        if out.warnings:
            self.warnings.extend(out.warnings[: max(MAX_STORED_ERRORS - len(self.warnings), 0)])


_COUNTED = {"new": "inserted", "claim": "claimed", "update": "updated", "unchanged": "unchanged"}


# --- reading ---------------------------------------------------------------------------------


def detect_format(filename: str) -> str:
    fmt = Path(filename).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValidationError("不支持的文件格式，请上传 .xlsx 或 .csv 文件（可先下载导入模板）")
    return fmt


def _csv_encoding(path: Path) -> str:
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(1 << 16):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig"


def _raw_rows(path: Path, fmt: str) -> Iterator[list[Any]]:
    if fmt == "csv":
        with path.open(encoding=_csv_encoding(path), errors="replace", newline="") as fh:
            yield from csv.reader(fh)
        return
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError, zipfile.BadZipFile):
        raise ValidationError("无法读取该 xlsx 文件，请用导入模板重新保存后上传") from None
    try:
        for row in wb.worksheets[0].iter_rows(values_only=True):
            yield list(row)
    finally:
        wb.close()


def _header_key(value: Any) -> str:
    text = re.split(r"[（(]", str(value or ""), maxsplit=1)[0]
    return HEADERS.get(text.replace("*", "").strip(), "")


def read_rows(path: Path, fmt: str) -> Iterator[tuple[int, list[Any], dict[str, Any]]]:
    """``(row number, raw cells, {column key: value})`` per non-empty data row; row 1 is the
    header. Raises ``ValidationError`` for an empty file or missing required columns."""
    rows = _raw_rows(path, fmt)
    header = next(rows, None)
    if header is None:
        raise ValidationError("文件为空")
    keys = [_header_key(h) for h in header]
    missing = [c.header for c in COLUMNS if c.required and c.key not in keys and c.key != "kind"]
    if missing:
        raise ValidationError(f"缺少列：{'、'.join(missing)}（请使用导入模板的表头）")
    yield 1, list(header), {}
    known = [(i, k) for i, k in enumerate(keys) if k]
    for number, raw in enumerate(rows, start=2):
        if _blank(raw):
            continue
        width = len(raw)
        yield number, raw, {k: raw[i] for i, k in known if i < width}


def _blank(raw: list[Any]) -> bool:
    try:
        return not "".join(raw).strip()  # a CSV row: all text
    except TypeError:
        return all(v is None or str(v).strip() == "" for v in raw)


# --- checking --------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _parse(out: Outcome, row: dict[str, Any]) -> None:
    """Field checks that need no query (the grid comes next, resolved for the whole batch);
    fills ``out.values/info/kind``."""

    def err(key: str, message: str) -> None:
        out.errors.append(RowError(out.number, TITLES[key], message))

    raw_id = row.get("id_number")
    text_id = "" if raw_id is None else str(raw_id).strip()
    if (
        isinstance(raw_id, int | float)
        and not isinstance(raw_id, bool)
        or _NUMBER_LOOK.match(text_id)
    ):
        err("id_number", NUMERIC_ID)
    elif not text_id:
        err("id_number", "公民身份号码不能为空")
    else:
        try:
            out.info = validate_id(text_id)
        except InvalidIdNumber as exc:
            err("id_number", exc.args[0] if exc.args else "公民身份号码不正确")
        else:
            out.warnings += [
                RowError(out.number, TITLES["id_number"], w) for w in out.info.warnings
            ]
    sex = _text(row.get("sex"))
    if sex and out.info is not None and sex != out.info.sex:
        err("sex", "性别与公民身份号码不符（号码第 17 位单数为男、双数为女）")
    elif sex and sex not in ("男", "女"):
        err("sex", "性别应为 男 或 女")
    kind = _text(row.get("kind"))
    if kind:
        if kind in KIND_VALUES:
            out.kind = KIND_VALUES[kind]
        else:
            err("kind", f"类别“{kind[:20]}”无法识别，应为 {'、'.join(KIND_LABELS)} 之一")
    raw_phone = row.get("phone")
    if isinstance(raw_phone, float) or (
        isinstance(raw_phone, int) and not re.fullmatch(r"1\d{10}", str(raw_phone))
    ):
        err("phone", NUMERIC_PHONE)
    elif "." in (text_phone := _text(raw_phone)) and _NUMBER_LOOK.match(text_phone):
        err("phone", NUMERIC_PHONE)
    else:
        problems: list[str] = []
        out.values["phone"] = service.check_phone(text_phone, problems) or ""
        for p in problems:
            err("phone", p)
    for key, (title, limit) in service.UPDATABLE.items():
        if key == "phone":
            continue
        value = _text(row.get(key))
        if len(value) > limit:
            err(key, f"{title}过长（最多 {limit} 字）")
        out.values[key] = value
    if "name" in row and not out.values["name"]:
        err("name", "姓名不能为空")


class _Grids:
    """Resolves grid codes once each; ``allowed(path)`` says whether the user may write there."""

    def __init__(self, session: Session, allowed: Callable[[str], bool]) -> None:
        self.session, self.allowed = session, allowed
        self.cache: dict[str, Grid | str] = {}

    def __call__(self, value: Any, out: Outcome) -> Grid | None:
        title = TITLES["grid"]
        if isinstance(value, float):
            out.errors.append(RowError(out.number, title, "所属网格编码须为文本格式"))
            return None
        code = _text(value)
        if not code:
            out.errors.append(RowError(out.number, title, "所属网格编码不能为空"))
            return None
        if code not in self.cache:
            self.prefetch([code])
        found = self.cache[code]
        if isinstance(found, str):
            out.errors.append(RowError(out.number, title, found))
            return None
        return found

    def prefetch(self, values: Iterable[Any]) -> None:
        """Resolve the new codes among ``values`` with one query (a batch's grid column)."""
        codes = {c for c in map(_text, values) if c and c not in self.cache}
        if not codes:
            return
        found = {code: (int(i), str(path), int(level), str(name)) for i, code, path, level, name in
                 self.session.execute(select(col(Node.id), col(Node.code), col(Node.path), col(Node.level),
                                             col(Node.name)).where(col(Node.code).in_(codes)))}  # fmt: skip
        for code in codes:
            self.cache[code] = self._resolve(code, found.get(code))

    def _resolve(self, code: str, node: tuple[int, str, int, str] | None) -> Grid | str:
        if node is None:
            return f"网格编码 {code[:20]} 不存在"
        node_id, path, level, name = node
        if level != Level.GRID:
            return f"{name}（{code}）不是网格，人员须登记到网格"
        if not self.allowed(path):
            return f"网格 {code} 不在您的管辖范围内"
        return Grid(node_id, code, path)


def _decide(out: Outcome, mode: str, held: list[Person]) -> None:
    """Set ``out.action`` (and the changes of an update) from the persons holding the ID."""
    if out.errors or out.grid is None or out.info is None:
        out.action = "error"
        return
    here = next((p for p in held if p.node_id == out.grid.id), None)
    if here is not None:
        if mode == "insert":
            out.errors.append(RowError(out.number, TITLES["id_number"],
                                       "该人员已在本网格登记（仅新增模式不更新已有人员）"))  # fmt: skip
            out.action = "error"
            return
        out.person = here
        out.changes = {k: v for k, v in out.values.items() if v and v != (getattr(here, k) or "")}
        changed = bool(out.changes) or (out.kind and out.kind != here.kind)
        out.action = "update" if changed else "unchanged"
        return
    if mode == "update":
        out.errors.append(RowError(out.number, TITLES["id_number"],
                                   "本网格未登记该人员（仅更新模式不新增人员）"))  # fmt: skip
    elif not out.kind:
        out.errors.append(RowError(out.number, TITLES["kind"], "新增人员须填写类别"))
    elif not out.values.get("name"):
        out.errors.append(RowError(out.number, TITLES["name"], "姓名不能为空"))
    out.action = "error" if out.errors else ("claim" if held else "new")


class _Seen:
    """ID numbers met so far → the row that first had them: open addressing over two flat
    arrays of integers (an 18-character number is one 64-bit key), ≈ 32 bytes a row where a
    dict of strings takes ≈ 150."""

    def __init__(self, capacity: int = 1 << 12) -> None:
        self._keys = array("q", bytes(8 * capacity))
        self._rows = array("q", bytes(8 * capacity))
        self._mask, self._used = capacity - 1, 0

    @staticmethod
    def _key(number: str) -> int:  # 17 digits and the check character: distinct, never 0
        return int(number[:17]) * 11 + "0123456789X".index(number[17]) + 1

    def first(self, number: str, row: int) -> int:
        """The row that first had ``number`` (``row`` itself when new, and then remembered)."""
        key, keys, mask = self._key(number), self._keys, self._mask
        i = ((key * 0x9E3779B97F4A7C15) >> 29) & mask
        while keys[i]:
            if keys[i] == key:
                return self._rows[i]
            i = (i + 1) & mask
        keys[i], self._rows[i] = key, row
        self._used += 1
        if 2 * self._used > mask:
            self._grow()
        return row

    def _grow(self) -> None:
        old_keys, old_rows = self._keys, self._rows  # walked in place: no list of the entries
        size = 2 * (self._mask + 1)
        keys, rows = array("q", bytes(8 * size)), array("q", bytes(8 * size))
        mask = size - 1
        for j, k in enumerate(old_keys):
            if k:
                i = ((k * 0x9E3779B97F4A7C15) >> 29) & mask
                while keys[i]:
                    i = (i + 1) & mask
                keys[i], rows[i] = k, old_rows[j]
        self._keys, self._rows, self._mask = keys, rows, mask


def batches(session: Session, path: Path, fmt: str, *, mode: str,
            allowed: Callable[[str], bool]) -> Iterator[list[Outcome]]:  # fmt: skip
    """Every data row's outcome, in file order and in batches of ``BATCH`` (the header row
    first, alone, as an ``Outcome`` with action ``header``). Reads the file once."""
    if mode not in MODES:
        raise ValidationError("导入方式应为 新增并更新、仅新增 或 仅更新")
    grids = _Grids(session, allowed)
    index = bulk.Sealer(session).id_index
    seen = _Seen()
    pending: list[tuple[int, list[Any], dict[str, Any]]] = []

    def check_batch() -> list[Outcome]:
        grids.prefetch(row.get("grid") for _, _, row in pending if isinstance(row.get("grid"), str))
        batch = []
        for number, raw, row in pending:
            out = Outcome(number, raw)
            _parse(out, row)
            out.grid = grids(row.get("grid"), out)
            if out.info is not None:
                first = seen.first(out.info.number, number)
                if first != number:
                    out.errors.append(RowError(number, TITLES["id_number"], f"与第 {first} 行重复"))
                elif not out.errors:
                    out.bidx = index(out.info.number)
            batch.append(out)
        pending.clear()
        return _lookup(session, batch, mode)

    for number, raw, row in read_rows(path, fmt):
        if number == 1:
            yield [Outcome(1, raw, action="header")]
            continue
        pending.append((number, raw, row))
        if len(pending) >= BATCH:
            yield check_batch()
    if pending:
        yield check_batch()


# --- a large file on two cores ------------------------------------------------------------------

#: The order of ``Outcome.values`` in a packed row.
_VALUE_KEYS = ("phone", *(k for k in service.UPDATABLE if k != "phone"))


def _pack(out: Outcome, cell: Any, dup: int) -> tuple[Any, ...]:
    """A worker's outcome as plain tuples: a fraction of the cost of pickling the objects."""
    info = out.info
    return (
        out.number, tuple((e.column, e.message) for e in out.errors),
        tuple((w.column, w.message) for w in out.warnings),
        tuple(out.values.get(k, "") for k in _VALUE_KEYS),
        None if info is None else (info.number, info.birth_date.toordinal(), info.sex, info.area_code,
                                   info.warnings, info.legacy, info.area_unknown),
        out.kind, out.bidx, out.sealed, cell, dup,
    )  # fmt: skip


_new = object.__new__


def _unpack(packed: tuple[Any, ...]) -> tuple[Outcome, Any, int]:
    """``_pack`` undone: (the outcome, its grid cell, the first row it duplicates or 0). The
    objects are filled in directly, not through their constructors: a million rows a file."""
    number, errors, warnings, values, info, kind, bidx, sealed, cell, dup = packed
    id_info = None
    if info is not None:
        id_info = _new(IdInfo)
        id_info.__dict__.update(number=info[0], birth_date=date.fromordinal(info[1]), sex=info[2],
                                area_code=info[3], warnings=info[4], legacy=info[5], area_unknown=info[6])  # fmt: skip
    out = _new(Outcome)
    out.__dict__.update(
        number=number, raw=[], action="error",
        errors=[RowError(number, c, m) for c, m in errors] if errors else [],
        warnings=[RowError(number, c, m) for c, m in warnings] if warnings else [],
        values=dict(zip(_VALUE_KEYS, values, strict=True)), info=id_info, grid=None, person=None,
        changes={}, kind=kind, bidx=bidx, sealed=sealed,
    )  # fmt: skip
    return out, cell, dup


def _seal(sealer: bulk.Sealer, out: Outcome) -> tuple[Any, ...]:
    """The stored row of a checked new person, less its grid (``bulk.Sealer.tail``)."""
    assert out.info is not None
    v = out.values
    return sealer.tail(
        name=v["name"], id_number=out.info.number, id_index=out.bidx, sex=out.info.sex,
        birth_date=out.info.birth_date, kind=out.kind, phone=v["phone"] or None, ethnicity=v["ethnicity"],
        address=v["address"] or None, hukou_address=v["hukou_address"] or None, occupation=v["occupation"],
        tags=v["tags"],
    )  # fmt: skip


def _stage_one(path: str, fmt: str, sealer: bulk.Sealer, pipe: Any, batch: int = BATCH) -> None:
    """The worker process: every row parsed and validated as ``batches`` does (less the grid),
    the duplicates in the file found, the new persons' rows sealed; batches of packed rows go
    down ``pipe``, then ``("done",)`` — or ``("invalid", message, problems)`` for a file that
    cannot be read, ``("failed", exception name)``."""
    try:
        seen = _Seen()
        pending: list[tuple[Any, ...]] = []
        for number, raw, row in read_rows(Path(path), fmt):
            if number == 1:
                pipe.send(("header", raw))
                continue
            out = Outcome(number, [])  # the raw cells stay here: only the error report needs them
            _parse(out, row)
            dup = 0
            if out.info is not None:
                first = seen.first(out.info.number, number)
                if first != number:
                    dup = first
                elif not out.errors:
                    out.bidx = sealer.id_index(out.info.number)
                    out.sealed = _seal(sealer, out)
            pending.append(_pack(out, row.get("grid"), dup))
            if len(pending) >= batch:
                pipe.send(("rows", pending))
                pending = []
        if pending:
            pipe.send(("rows", pending))
        pipe.send(("done",))
    except ValidationError as exc:
        pipe.send(("invalid", str(exc.args[0]) if exc.args else "文件无法读取", exc.problems))
    except BaseException as exc:  # noqa: BLE001 — reported to the parent, which fails the import
        pipe.send(("failed", type(exc).__name__))
    finally:
        pipe.close()


def _parallel_batches(session: Session, path: Path, fmt: str, *, mode: str, allowed: Callable[[str], bool],
                      sealer: bulk.Sealer) -> Iterator[list[Outcome]]:  # fmt: skip
    """``batches``, with the rows parsed, validated and sealed in a worker process (see the
    module's notes); this process resolves the grids and looks the persons up."""
    ctx = multiprocessing.get_context("spawn")  # never fork a process that runs threads
    # A pipe, not a Queue (whose feeder thread would fight the worker for its GIL); the worker
    # blocks while the pipe is full, so memory stays bounded.
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_stage_one, args=(str(path), fmt, sealer, sender, BATCH),
                       name="population-import-check", daemon=True)  # fmt: skip
    proc.start()
    sender.close()  # the worker holds its end; ours would keep the pipe open after it exits
    grids = _Grids(session, allowed)
    title = TITLES["id_number"]
    try:
        while True:
            item = _receive(receiver, proc)
            if item[0] == "header":
                yield [Outcome(1, item[1], action="header")]
            elif item[0] == "rows":
                entries = [_unpack(packed) for packed in item[1]]
                grids.prefetch(cell for _, cell, _ in entries if isinstance(cell, str))
                batch = []
                for out, cell, dup in entries:
                    out.grid = grids(cell, out)
                    if dup:
                        out.errors.append(RowError(out.number, title, f"与第 {dup} 行重复"))
                    if out.errors:  # a grid error: neither looked up nor written
                        out.bidx, out.sealed = "", None
                    batch.append(out)
                yield _lookup(session, batch, mode)
            elif item[0] == "done":
                return
            elif item[0] == "invalid":
                raise ValidationError(item[1], item[2])
            else:
                raise RuntimeError(f"导入检查进程出错: {item[1]}")
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(10)
        receiver.close()


def _receive(receiver: Any, proc: Any) -> Any:
    while not receiver.poll(1):
        if not proc.is_alive() and not receiver.poll(0):
            raise RuntimeError("导入检查进程意外退出")
    try:
        return receiver.recv()
    except EOFError:
        raise RuntimeError("导入检查进程意外退出") from None


def outcomes(session: Session, path: Path, fmt: str, *, mode: str,
             allowed: Callable[[str], bool]) -> Iterator[Outcome]:  # fmt: skip
    """Every data row's outcome, in file order (the header row first, as an ``Outcome`` with
    action ``header``). Reads the file once, in batches."""
    for batch in batches(session, path, fmt, mode=mode, allowed=allowed):
        yield from batch


# Which of a batch's blind indexes are held at all: one light query (usually none are, in a
# large import); the persons are loaded only for those. On PostgreSQL the keys go as one array
# parameter: an expanding IN of 500 parameters was compiled by SQLAlchemy and converted by the
# driver afresh for each batch (a quarter of the importing process's time at 1 M rows).
_HELD = select(bulk.TABLE.c.id_number_bidx).where(
    bulk.TABLE.c.id_number_bidx.in_(bindparam("keys", expanding=True))
)
_HELD_ARRAY = select(bulk.TABLE.c.id_number_bidx).where(
    bulk.TABLE.c.id_number_bidx == any_(bindparam("keys", type_=ARRAY(String())))
)


def _lookup(session: Session, batch: list[Outcome], mode: str) -> list[Outcome]:
    """Decide every row of ``batch`` from the persons already holding its ID."""
    wanted = [o.bidx for o in batch if o.bidx]
    held: dict[str, list[Person]] = {}
    held_query = _HELD_ARRAY if session.get_bind().dialect.name == "postgresql" else _HELD
    found = set(session.execute(held_query, {"keys": wanted}).scalars()) if wanted else set()
    if found:
        for p in session.scalars(select(Person).where(col(Person.id_number_bidx).in_(sorted(found)))):
            held.setdefault(p.id_number_bidx or "", []).append(p)
    for out in batch:
        _decide(out, mode, held.get(out.bidx, []) if out.bidx else [])
    return batch


def check(session: Session, path: Path, fmt: str, *, mode: str,
          allowed: Callable[[str], bool]) -> Plan:  # fmt: skip
    """The plan of a file without writing anything."""
    plan = Plan()
    for out in outcomes(session, path, fmt, mode=mode, allowed=allowed):
        if out.action != "header":
            plan.count(out)
    if plan.total == 0:
        raise ValidationError("文件中没有数据行")
    return plan


def apply(session: Session, path: Path, fmt: str, *, mode: str, allowed: Callable[[str], bool],
          actor: Actor, progress: Callable[[int, int], None] | None = None,
          expected: int = 0) -> Plan:  # fmt: skip
    """Check and write the file in ``session``, batch by batch. Returns the plan; when it has
    errors (a row is wrong, or changed since the preview by another writer) the rows before
    the first failing batch were written and the caller must roll back, so nothing stays.
    ``progress(done, expected)`` is called after each batch (``expected``: the previewed total)."""
    plan = Plan()
    sealer = bulk.Sealer(session)
    done = 0
    source = (
        _parallel_batches(session, path, fmt, mode=mode, allowed=allowed, sealer=sealer)
        if expected >= PARALLEL_ROWS
        else batches(session, path, fmt, mode=mode, allowed=allowed)
    )
    for batch in source:
        for out in batch:
            if out.action != "header":
                plan.count(out)
        if plan.error_count:
            continue  # nothing more is written; the rest is checked for the report
        done += _write_batch(session, batch, actor, sealer)
        if progress is not None:
            progress(done, max(expected, done))
    if plan.total == 0:
        raise ValidationError("文件中没有数据行")
    return plan


def _write_batch(session: Session, batch: list[Outcome], actor: Actor, sealer: bulk.Sealer) -> int:
    """Write a checked batch: new persons in one driver call, the rest through the service."""
    rows = []
    counts: dict[tuple[str, str], int] = {}
    written = 0
    for out in batch:
        if out.action == "header":
            continue
        written += 1
        if out.action != "new":
            _write(session, out, actor)
            continue
        assert out.info is not None and out.grid is not None
        counts[(out.grid.path, out.kind)] = counts.get((out.grid.path, out.kind), 0) + 1
        tail = out.sealed if out.sealed is not None else _seal(sealer, out)
        rows.append((out.grid.id, out.grid.path, *tail))
    if rows:
        bulk.insert(session, rows)
        for (grid_path, kind), n in counts.items():
            stats.add(session, INDICATOR, grid_path, key=kind, delta=n)
        first = next(o.number for o in batch if o.action == "new")
        audit(session, "population.person.import", actor=actor, object_type="population_person",
              detail={"count": len(rows), "rows": [first, batch[-1].number],
                      "kinds": {k: sum(n for (_, kk), n in counts.items() if kk == k) for k in KINDS}})  # fmt: skip
    return written


def _write(session: Session, out: Outcome, actor: Actor) -> None:
    assert out.info is not None and out.grid is not None
    if out.action == "claim":
        grid = session.get(Node, out.grid.id)
        assert grid is not None
        v = out.values
        service.register(session, grid, name=v["name"], id_number=out.info.number, kind=out.kind,
                         ethnicity=v["ethnicity"], phone=v["phone"] or None, address=v["address"],
                         hukou_address=v["hukou_address"], occupation=v["occupation"], tags=v["tags"],
                         actor=actor)  # fmt: skip
    elif out.action == "update" and out.person is not None:
        if out.changes:
            service.update_person(session, out.person, out.changes, actor=actor)
        if out.kind and out.kind != out.person.kind:
            service.change_kind(session, out.person, out.kind, "批量导入", actor=actor)


# --- files -------------------------------------------------------------------------------------


def _text_cells(ws: Any, values: list[Any], text: set[int]) -> list[Any]:
    from openpyxl.cell import WriteOnlyCell

    cells = []
    for i, value in enumerate(values):
        cell = WriteOnlyCell(ws, value=_text(value) if i in text else value)
        if isinstance(cell.value, str):
            cell.data_type = "s"  # never a formula
        if i in text:
            cell.number_format = "@"
        cells.append(cell)
    return cells


def error_report(session: Session, path: Path, fmt: str, *, mode: str,
                 allowed: Callable[[str], bool], out: io.BufferedIOBase | io.BytesIO) -> int:  # fmt: skip
    """Write the uploaded rows plus an 错误说明 column as xlsx to ``out``; the number of rows
    with errors."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("导入错误")
    text: set[int] = set()
    width = 0
    failed = 0
    for o in outcomes(session, path, fmt, mode=mode, allowed=allowed):
        if o.action == "header":
            width = len(o.raw)
            text = {i for i, h in enumerate(o.raw) if _header_key(h) in TEXT_KEYS}
            ws.append(_text_cells(ws, [*o.raw, "错误说明"], set()))
            continue
        row = list(o.raw) + [None] * (width - len(o.raw))
        note = "；".join(f"{e.column}：{e.message}" for e in o.errors)
        failed += bool(o.errors)
        ws.append(_text_cells(ws, [*row[:width], note], text))
    wb.save(out)
    return failed


def template_xlsx() -> bytes:
    """The import template: headers, text-formatted ID/phone/grid columns, dropdowns for 类别
    and 性别, and a sheet explaining every column."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = "人口信息"
    ws.append([c.header for c in COLUMNS])
    rows = 2000
    for i, c in enumerate(COLUMNS, start=1):
        letter = get_column_letter(i)
        ws.cell(1, i).font = Font(bold=True, color="C00000" if c.required else "000000")
        ws.column_dimensions[letter].width = (
            24 if c.key in ("id_number", "address", "hukou_address") else 14
        )
        if c.key in TEXT_KEYS:
            ws.column_dimensions[letter].number_format = "@"
            for r in range(2, rows + 2):
                ws.cell(r, i).number_format = "@"
    lists = {"kind": "、".join(KIND_LABELS), "sex": "男、女"}
    for key, title in (("kind", "类别"), ("sex", "性别")):
        i = next(n for n, c in enumerate(COLUMNS, start=1) if c.key == key)
        letter = get_column_letter(i)
        dv = DataValidation(type="list", formula1='"' + lists[key].replace("、", ",") + '"',
                            allow_blank=True, showErrorMessage=True, errorTitle=f"{title}不正确",
                            error=f"请从下拉列表选择：{lists[key]}")  # fmt: skip
        dv.add(f"{letter}2:{letter}{rows + 1}")
        ws.add_data_validation(dv)
    ws.freeze_panes = "A2"
    help_ws = wb.create_sheet("填写说明")
    help_ws.append(["列名", "是否必填", "说明"])
    for c in COLUMNS:
        help_ws.append([c.header, "必填" if c.required else "选填", c.help])
    help_ws.append([])
    help_ws.append(["导入方式", "", "新增并更新：按公民身份号码匹配本网格已登记人员，有则更新、无则新增；"
                    "仅新增：已登记则报错；仅更新：未登记则报错。留空的单元格不会清除已有信息。"])  # fmt: skip
    help_ws.append(
        ["全部或全不", "", "任一行有错误时不导入任何数据；可下载错误报告，修改后重新上传整个文件。"]
    )
    help_ws.column_dimensions["A"].width = 14
    help_ws.column_dimensions["C"].width = 90
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def template_csv() -> bytes:
    """The CSV template (UTF-8 with BOM so spreadsheets open it in Chinese)."""
    buf = io.StringIO()
    csv.writer(buf).writerow([c.header for c in COLUMNS])
    return buf.getvalue().encode("utf-8-sig")
