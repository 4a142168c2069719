"""The division roster (区划名册): CSV and xlsx import with Chinese row errors, export, round trip."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from yiwang.errors import ValidationError
from yiwang.grid import roster, tree
from yiwang.grid.demo import plan
from yiwang.grid.roster import ImportResult
from yiwang.grid.service import add_nodes
from yiwang.grid.tree import T
from yiwang.testing.database import clean

HEADER_EN = ["code", "name", "parent_code", "level"]
HEADER_ZH = ["编码", "名称", "上级编码", "层级"]
#: A valid roster, parents first: province down to a grid.
ROWS: list[list[Any]] = [
    ["45", "广西壮族自治区", "", "1"],
    ["4501", "南宁市", "45", "2"],
    ["450107", "西乡塘区", "4501", "3"],
    ["450107001", "衡阳街道", "450107", "4"],
    ["450107001001", "秀灵社区", "450107001", "5"],
    ["45010700100101", "第1网格", "450107001001", "6"],
]


def csv_bytes(
    rows: list[list[Any]], header: list[str] = HEADER_EN, encoding: str = "utf-8-sig"
) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out).writerows([header, *rows])
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[Any]], header: list[str] = HEADER_ZH) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in [header, *rows]:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def import_(kernel: Any, data: bytes, fmt: str = "csv", *, update: bool = False) -> ImportResult:
    with kernel.db.write() as s:
        return roster.import_roster(kernel, s, data, fmt, update_existing=update)


def refused(kernel: Any, data: bytes, fmt: str = "csv", *, update: bool = False) -> ValidationError:
    """Import must fail and leave the net as it was."""
    before = net(kernel)
    with pytest.raises(ValidationError) as info:
        import_(kernel, data, fmt, update=update)
    assert net(kernel) == before
    return info.value


def net(kernel: Any) -> dict[str, tuple[str, str, int]]:
    """code → (name, parent code, level), as export sees it."""
    with kernel.db.read() as s:
        return {code: (name, parent, level) for code, name, parent, level in roster.export_rows(s)}


EXPECTED = {
    "45": ("广西壮族自治区", "", 1),
    "4501": ("南宁市", "45", 2),
    "450107": ("西乡塘区", "4501", 3),
    "450107001": ("衡阳街道", "450107", 4),
    "450107001001": ("秀灵社区", "450107001", 5),
    "45010700100101": ("第1网格", "450107001001", 6),
}


# --- formats and headers -----------------------------------------------------------------------


def test_csv_in_utf8_with_bom_and_english_headers(kernel: Any) -> None:
    data = csv_bytes(ROWS)
    assert data.startswith(b"\xef\xbb\xbf")
    assert import_(kernel, data) == ImportResult(created=6, updated=0)
    assert net(kernel) == EXPECTED


def test_csv_in_gb18030_with_chinese_headers_and_level_names(kernel: Any) -> None:
    named = ["省", "市", "县", "街道", "社区", "网格"]
    rows = [[*row[:3], level] for row, level in zip(ROWS, named, strict=True)]
    data = csv_bytes(rows, HEADER_ZH, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    import_(kernel, data)
    assert net(kernel) == EXPECTED


def test_xlsx_with_chinese_headers_and_codes_as_whole_numbers(kernel: Any) -> None:
    rows = [[int(c), n, int(p) if p else None, int(lv)] for c, n, p, lv in ROWS]
    import_(kernel, xlsx_bytes(rows), "xlsx")
    assert net(kernel) == EXPECTED


def test_xlsx_with_english_headers_in_capitals(kernel: Any) -> None:
    import_(kernel, xlsx_bytes(ROWS, ["Code", "NAME", "Parent_Code", "Level"]), "xlsx")
    assert net(kernel) == EXPECTED


def test_padded_codes_are_stored_in_their_short_form(kernel: Any) -> None:
    rows = [
        ["450000", "广西壮族自治区", "", "省"],
        ["450100", "南宁市", "450000", "市"],
        ["450107", "西乡塘区", "450100000000", "县"],
        ["450107001000", "衡阳街道", "450107000000", "乡镇"],
    ]
    import_(kernel, csv_bytes(rows))
    assert list(net(kernel)) == ["45", "4501", "450107", "450107001"]
    assert net(kernel)["450107001"] == ("衡阳街道", "450107", 4)


def test_children_listed_before_their_parents_import_fine(kernel: Any) -> None:
    import_(kernel, csv_bytes(ROWS[::-1]))
    assert net(kernel) == EXPECTED
    with kernel.db.read() as s:
        assert tree.verify_counts(s) == []
        assert tree.by_code(s, "45").grid_count == 1


def test_rows_may_hang_under_nodes_already_in_the_database(kernel: Any) -> None:
    import_(kernel, csv_bytes(ROWS[:3]))
    import_(kernel, csv_bytes(ROWS[3:]))
    assert net(kernel) == EXPECTED


# --- errors ------------------------------------------------------------------------------------


def test_every_bad_row_is_reported_by_number_and_nothing_is_written(kernel: Any) -> None:
    rows: list[list[Any]] = [
        *ROWS[:3],  # rows 2–4, fine
        ["450108", "良庆区", "4501", "区县级"],  # 5: unknown level
        ["45010", "邕宁区", "4501", "3"],  # 6: wrong length
        ["450207", "城中区", "4501", "3"],  # 7: not under its parent
        ["450109001", "新江镇", "450109", "4"],  # 8: parent missing
        ["450107001", "衡阳街道", "450107", "4"],  # 9: fine
        ["450107001", "衡阳街道", "450107", "4"],  # 10: duplicate of row 9
        ["450110", "", "4501", "3"],  # 11: empty name
    ]
    error = refused(kernel, csv_bytes(rows))
    assert str(error).startswith("6 行有错误，未导入任何数据")
    numbers = [int(p.split(" ")[1]) for p in error.problems]
    assert numbers == [5, 6, 7, 8, 10, 11]
    assert "层级 '区县级' 无法识别" in error.problems[0]
    assert "县(市、区)编码应为 6 位，45010 为 5 位" in error.problems[1]
    assert "编码 450207 应以上级编码 4501 开头" in error.problems[2]
    assert "上级编码 450109 不存在" in error.problems[3]
    assert "编码 450107001 与第 9 行重复" in error.problems[4]
    assert "名称为空" in error.problems[5]
    assert net(kernel) == {}


def test_a_code_stored_as_a_fraction_in_xlsx_is_reported(kernel: Any) -> None:
    rows: list[list[Any]] = [
        ["45", "广西壮族自治区", None, 1],
        [4501.5, "南宁市", "45", 2],
        ["450107", "西乡塘区", 4501.7, 3],
    ]
    error = refused(kernel, xlsx_bytes(rows), "xlsx")
    assert [p.split(":")[0] for p in error.problems] == ["第 3 行", "第 4 行"]
    assert all("编码被存成了小数，请将编码列设为文本格式" in p for p in error.problems)


def test_a_province_row_with_a_parent_code_is_reported(kernel: Any) -> None:
    error = refused(kernel, csv_bytes([["45", "广西壮族自治区", "86", "1"], ROWS[1]]))
    assert error.problems[0].startswith("第 2 行: ")
    assert "上级" in error.problems[0]


def test_a_row_below_a_refused_row_is_not_blamed_for_it(kernel: Any) -> None:
    rows: list[list[Any]] = [*ROWS[:3], ["450107001", "衡阳街道", "450107", "乡镇级"], *ROWS[4:]]
    error = refused(kernel, csv_bytes(rows))
    assert len(error.problems) == 1 and error.problems[0].startswith("第 5 行: 层级")


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"", "csv", "文件为空"),
        (csv_bytes([["45", "广西", "1"]], ["code", "name", "level"]), "csv", "缺少列: parent_code"),
        (csv_bytes([]), "csv", "文件中没有数据行"),
        (b"\xff\xfe\x00\x81\x30", "csv", "无法识别文件编码"),
        (b"not a workbook", "xlsx", "无法读取 xlsx 文件"),
    ],
)
def test_unusable_files_are_refused_in_chinese(
    kernel: Any, data: bytes, fmt: str, message: str
) -> None:
    assert message in str(refused(kernel, data, fmt))


def test_only_csv_and_xlsx_are_accepted() -> None:
    assert roster.detect_format(Path("名册.XLSX")) == "xlsx"
    with pytest.raises(ValidationError, match="不支持的文件格式 xls"):
        roster.detect_format(Path("名册.xls"))


# --- updating ----------------------------------------------------------------------------------


def test_existing_codes_are_refused_unless_updating_and_update_renames(kernel: Any) -> None:
    import_(kernel, csv_bytes(ROWS))
    renamed = [["450107", "西乡塘区（新）", "4501", "3"], ["450107002", "北湖街道", "450107", "4"]]
    error = refused(kernel, csv_bytes(renamed))
    assert error.problems == ["第 2 行: 编码已存在"]
    assert import_(kernel, csv_bytes(renamed), update=True) == ImportResult(created=1, updated=1)
    after = net(kernel)
    assert after["450107"] == ("西乡塘区（新）", "4501", 3)
    assert after["450107002"] == ("北湖街道", "450107", 4)
    assert after["4501"] == EXPECTED["4501"]


def test_update_refuses_a_row_whose_level_or_parent_differs(kernel: Any) -> None:
    import_(kernel, csv_bytes([*ROWS, ["4502", "柳州市", "45", "2"]]))
    rows = [
        ["4501", "南宁", "45", "县"],
        ["450107", "西乡塘", "4502", "3"],
        ["45", "广西", "", "1"],
    ]
    error = refused(kernel, csv_bytes(rows), update=True)
    assert error.problems == [
        "第 2 行: 编码 4501 已存在且层级不同，不能更新",
        "第 3 行: 编码 450107 已存在且上级不同（现为 4501），不能更新",
    ]
    assert import_(kernel, csv_bytes(rows[2:]), update=True) == ImportResult(created=0, updated=1)
    assert net(kernel)["45"] == ("广西", "", 1)


# --- export ------------------------------------------------------------------------------------


def _demo_city(kernel: Any) -> None:
    """Nanning from the demo plan: ≈250 nodes of every level with real and synthetic names."""
    rows = [r for r in plan("small", 7) if r.code.startswith("4501") or r.code == "45"]
    with kernel.db.write() as s:
        add_nodes(kernel, s, rows)


def _kinds(kernel: Any) -> dict[str, tuple[str, int, int]]:
    with kernel.db.read() as s:
        stmt = select(T.c.code, T.c.kind, T.c.child_count, T.c.grid_count)
        return {code: (kind, c, g) for code, kind, c, g in s.connection().execute(stmt)}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_then_import_into_an_empty_database_gives_the_same_net(
    kernel: Any, yiwang_db: Any, tmp_path: Path, fmt: str
) -> None:
    _demo_city(kernel)
    original, kinds = net(kernel), _kinds(kernel)
    path = tmp_path / f"名册.{fmt}"
    with kernel.db.read() as s:
        assert roster.write_export(roster.export_rows(s), path, fmt) == len(original) > 200
    clean(yiwang_db)
    assert net(kernel) == {}
    assert import_(kernel, path.read_bytes(), fmt).created == len(original)
    assert net(kernel) == original
    assert _kinds(kernel) == kinds


def test_xlsx_export_stores_codes_as_text(kernel: Any, tmp_path: Path) -> None:
    import_(kernel, csv_bytes(ROWS))
    path = tmp_path / "名册.xlsx"
    with kernel.db.read() as s:
        roster.write_export(roster.export_rows(s), path, "xlsx")
    ws = load_workbook(path).worksheets[0]
    assert [c.value for c in ws[1]] == HEADER_EN
    grid_row = ws[7]
    assert [c.value for c in grid_row] == ["45010700100101", "第1网格", "450107001001", 6]
    assert ws["C2"].value is None  # the province has no parent
    for row in ws.iter_rows(min_row=2):
        for cell in row[:3]:
            if cell.value is not None:
                assert (cell.data_type, cell.number_format) == ("s", "@"), cell.coordinate


def test_export_of_a_subtree_holds_only_that_subtree(kernel: Any, tmp_path: Path) -> None:
    import_(kernel, csv_bytes([*ROWS, ["4502", "柳州市", "45", "2"]]))
    with kernel.db.read() as s:
        codes = [r[0] for r in roster.export_rows(s, "450107")]
        assert codes == ["450107", "450107001", "450107001001", "45010700100101"]
        with pytest.raises(ValidationError, match="编码为 4599 的节点不存在"):
            list(roster.export_rows(s, "4599"))
