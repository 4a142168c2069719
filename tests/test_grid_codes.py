"""Division and grid codes: each level's format, the parent rule, padded forms, Chinese messages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yiwang.grid.codes import PROVINCE_CODES, CodeError, normalise, validate
from yiwang.grid.levels import Level
from yiwang.settings import GridCodeRules, load_settings

#: The shipped rules (config/yiwang.toml), read the way every entry point reads them.
RULES: GridCodeRules = load_settings({"YIWANG_HOME": "/nonexistent/yiwang-test-home"}).grid_codes
CJK = re.compile(r"[\u4e00-\u9fff]")


def rejects(code: str, level: Level, parent: tuple[str, Level] | None, *fragments: str) -> str:
    """Assert the code is refused with a Chinese message containing ``fragments``."""
    with pytest.raises(CodeError) as info:
        validate(code, level, parent, RULES)
    message = str(info.value)
    assert CJK.search(message), message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- province, city, county --------------------------------------------------------------------


@pytest.mark.parametrize("code", ["11", "45", "65", "71", "81", "82"])
def test_province_codes_of_gbt_2260_are_accepted(code: str) -> None:
    assert validate(code, Level.PROVINCE, None, RULES).code == code


@pytest.mark.parametrize("code", ["10", "20", "47", "99", "00"])
def test_province_code_outside_gbt_2260_is_refused(code: str) -> None:
    rejects(code, Level.PROVINCE, None, code, "GB/T 2260")


def test_province_code_must_have_two_digits() -> None:
    rejects("450", Level.PROVINCE, None, "应为 2 位")


def test_city_and_county_codes_may_not_end_in_00() -> None:
    assert validate("4501", Level.CITY, ("45", Level.PROVINCE), RULES).code == "4501"
    assert validate("450107", Level.COUNTY, ("4501", Level.CITY), RULES).code == "450107"
    rejects("4500", Level.CITY, ("45", Level.PROVINCE), "末两位不能为 00")
    rejects("450100", Level.COUNTY, ("4501", Level.CITY), "末两位不能为 00")


@pytest.mark.parametrize(
    ("code", "level", "parent", "length"),
    [
        ("450", Level.CITY, ("45", Level.PROVINCE), 4),
        ("45010", Level.COUNTY, ("4501", Level.CITY), 6),
        ("4501070011", Level.TOWNSHIP, ("450107", Level.COUNTY), 9),
        ("45010700100", Level.COMMUNITY, ("450107001", Level.TOWNSHIP), 12),
    ],
)
def test_fixed_length_levels_refuse_other_lengths(
    code: str, level: Level, parent: tuple[str, Level], length: int
) -> None:
    rejects(code, level, parent, f"应为 {length} 位", level.label)


# --- township and community ranges -------------------------------------------------------------


@pytest.mark.parametrize(
    ("seq", "kind"),
    [("001", "街道"), ("099", "街道"), ("100", "镇"), ("199", "镇"), ("200", "乡"), ("399", "乡")],
)
def test_township_sequence_decides_street_town_or_xiang(seq: str, kind: str) -> None:
    info = validate(f"450107{seq}", Level.TOWNSHIP, ("450107", Level.COUNTY), RULES)
    assert (info.level, info.kind) == (Level.TOWNSHIP, kind)


@pytest.mark.parametrize("seq", ["000", "400", "999"])
def test_township_sequence_outside_the_ranges_is_refused(seq: str) -> None:
    rejects(
        f"450107{seq}", Level.TOWNSHIP, ("450107", Level.COUNTY),
        seq, "001–099 街道、100–199 镇、200–399 乡",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("seq", "kind"), [("001", "社区"), ("199", "社区"), ("200", "村"), ("399", "村")]
)
def test_community_sequence_decides_community_or_village(seq: str, kind: str) -> None:
    info = validate(f"450107001{seq}", Level.COMMUNITY, ("450107001", Level.TOWNSHIP), RULES)
    assert info.kind == kind


@pytest.mark.parametrize("seq", ["000", "400", "500"])
def test_community_sequence_outside_the_ranges_is_refused(seq: str) -> None:
    rejects(f"450107001{seq}", Level.COMMUNITY, ("450107001", Level.TOWNSHIP), "001–199 社区")


def test_ranges_come_from_the_configuration() -> None:
    rules = load_settings(
        {"YIWANG_HOME": "/nonexistent/yiwang-test-home"},
        overrides={"grid": {"codes": {"township": [[1, 50, "街道"], [300, 310, "镇"]]}}},
    ).grid_codes
    parent = ("450107", Level.COUNTY)
    assert validate("450107305", Level.TOWNSHIP, parent, rules).kind == "镇"
    with pytest.raises(CodeError, match="001–050 街道、300–310 镇"):
        validate("450107100", Level.TOWNSHIP, parent, rules)


# --- grids and units ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "parent"),
    [(Level.GRID, ("450107001001", Level.COMMUNITY)), (Level.UNIT, ("45010700100101", Level.GRID))],
)
def test_grids_and_units_append_two_or_three_digits(
    level: Level, parent: tuple[str, Level]
) -> None:
    base = parent[0]
    for tail in ("01", "99", "001", "123"):
        assert validate(base + tail, level, parent, RULES).code == base + tail
    for tail in ("1", "0001"):
        rejects(base + tail, level, parent, "2或3 位序号", f"加了 {len(tail)} 位")
    for tail in ("00", "000"):
        rejects(base + tail, level, parent, "序号不能为 0")


# --- the parent rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "level", "parent"),
    [
        ("4601", Level.CITY, ("45", Level.PROVINCE)),
        ("450207", Level.COUNTY, ("4501", Level.CITY)),
        ("450108001", Level.TOWNSHIP, ("450107", Level.COUNTY)),
        ("450107002001", Level.COMMUNITY, ("450107001", Level.TOWNSHIP)),
        ("45010700100201", Level.GRID, ("450107001001", Level.COMMUNITY)),
        ("4501070010010201", Level.UNIT, ("45010700100101", Level.GRID)),
    ],
)
def test_child_code_must_start_with_its_parents_code(
    code: str, level: Level, parent: tuple[str, Level]
) -> None:
    rejects(code, level, parent, f"应以上级编码 {parent[0]} 开头")


def test_parent_must_be_exactly_one_level_up() -> None:
    rejects("450107001", Level.TOWNSHIP, ("4501", Level.CITY), "上级应为县(市、区)，实际为市")
    rejects("4501", Level.CITY, ("4501", Level.CITY), "上级应为省(自治区)")
    rejects("45010700100101", Level.GRID, ("450107001", Level.TOWNSHIP), "上级应为社区(村)")


@pytest.mark.parametrize(
    "code,level", [("45", Level.PROVINCE), ("4501", Level.CITY), ("450107", Level.COUNTY)]
)
def test_province_city_and_county_may_be_roots(code: str, level: Level) -> None:
    assert validate(code, level, None, RULES).level == level


@pytest.mark.parametrize(
    "code,level",
    [
        ("450107001", Level.TOWNSHIP),
        ("450107001001", Level.COMMUNITY),
        ("45010700100101", Level.GRID),
        ("4501070010010101", Level.UNIT),
    ],
)
def test_levels_below_the_county_need_a_parent(code: str, level: Level) -> None:
    rejects(code, level, None, f"{level.label}必须有上级")


# --- normalising what rosters contain ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "level", "expected"),
    [
        ("450000", Level.PROVINCE, "45"),
        ("450000000000", Level.PROVINCE, "45"),
        ("450100", Level.CITY, "4501"),
        ("450100000", Level.CITY, "4501"),
        ("450107000000", Level.COUNTY, "450107"),
        ("450107001000", Level.TOWNSHIP, "450107001"),
        (" 4501 ", Level.CITY, "4501"),
        (450107, Level.COUNTY, "450107"),
        (450107.0, Level.COUNTY, "450107"),
        ("450101", Level.CITY, "450101"),  # not padding: left for validate to refuse
        ("450107001001", Level.COMMUNITY, "450107001001"),
        ("4501070010010100", Level.UNIT, "4501070010010100"),  # trailing zeros of a unit stay
    ],
)
def test_padded_and_typed_codes_are_normalised(raw: object, level: Level, expected: str) -> None:
    assert normalise(raw, level) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "编码为空"),
        ("   ", "编码为空"),
        ("45a1", "只能由数字组成"),
        ("４５", "只能由数字组成"),  # full-width digits
        ("45-01", "只能由数字组成"),
        (4501.5, "文本格式"),
    ],
)
def test_unusable_codes_are_refused_in_chinese(raw: object, fragment: str) -> None:
    with pytest.raises(CodeError, match=fragment):
        normalise(raw, Level.CITY)


# --- properties --------------------------------------------------------------------------------


def _seq(low: int, high: int, width: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:0{width}d}")


def _tail(digits: tuple[int, ...]) -> st.SearchStrategy[str]:
    return st.sampled_from(digits).flatmap(lambda d: _seq(1, 10**d - 1, d))


def _ranged(ranges: Any) -> st.SearchStrategy[str]:
    return st.sampled_from(ranges).flatmap(lambda r: _seq(r.low, r.high, 3))


#: One valid chain of parts, province down to unit, from the shipped rules.
CHAIN_PARTS = st.tuples(
    st.sampled_from(sorted(PROVINCE_CODES)),
    _seq(1, 99, 2),
    _seq(1, 99, 2),
    _ranged(RULES.township),
    _ranged(RULES.community),
    _tail(RULES.grid_digits),
    _tail(RULES.unit_digits),
)


def chain_of(parts: tuple[str, ...]) -> list[tuple[str, Level]]:
    codes, code = [], ""
    for level, part in zip(Level, parts, strict=True):
        code += part
        codes.append((code, level))
    return codes


@settings(max_examples=30, deadline=None)
@given(CHAIN_PARTS)
def test_any_generated_chain_validates_and_padding_round_trips(parts: tuple[str, ...]) -> None:
    parent: tuple[str, Level] | None = None
    for code, level in chain_of(parts):
        assert validate(code, level, parent, RULES).code == code
        if len(code) < 12:
            for width in (6, 9, 12):
                if width > len(code):
                    assert normalise(code.ljust(width, "0"), level) == code
        parent = (code, level)


@settings(max_examples=30, deadline=None)
@given(CHAIN_PARTS, st.integers(1, 6), st.data())
def test_any_code_not_starting_with_its_parents_code_is_refused(
    parts: tuple[str, ...], index: int, data: st.DataObject
) -> None:
    chain = chain_of(parts)
    (code, level), parent = chain[index], chain[index - 1]
    # Change one digit of the part the child inherits from its parent.
    position = data.draw(st.integers(0, len(parent[0]) - 1), label="position")
    digit = data.draw(st.sampled_from("0123456789").filter(lambda d: d != code[position]))
    wrong = code[:position] + digit + code[position + 1 :]
    rejects(wrong, level, parent, f"应以上级编码 {parent[0]} 开头")
