"""Division and grid codes: GB/T 2260 above the county, 统计用区划代码 below, grid sequences.

Canonical codes carry only their significant digits: 45 (province), 4501 (city), 450107
(county), 450107001 (township), 450107001001 (community), then 2–3 digits per grid and per unit.
Padded forms found in rosters (450000, 450100000000 …) are accepted and shortened.
"""

from __future__ import annotations

from dataclasses import dataclass

from yiwang.grid.levels import Level
from yiwang.settings import CodeRange, GridCodeRules

#: GB/T 2260 province-level codes (incl. 71 台湾, 81 香港, 82 澳门).
PROVINCE_CODES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 "
    "71 81 82".split()
)

#: Significant length of a canonical code, for levels with a fixed length.
FIXED_LENGTH = {
    Level.PROVINCE: 2,
    Level.CITY: 4,
    Level.COUNTY: 6,
    Level.TOWNSHIP: 9,
    Level.COMMUNITY: 12,
}


#: The deepest level a tree may start at (a city team may deploy its own city alone).
MAX_ROOT_LEVEL = Level.COUNTY


class CodeError(ValueError):
    """A code that does not fit its level or parent; the message is Chinese and user-facing."""


@dataclass(frozen=True)
class CodeInfo:
    code: str
    level: Level
    #: 街道/镇/乡 for townships, 社区/村 for communities, "" elsewhere.
    kind: str


def normalise(raw: object, level: Level) -> str:
    """Strip a code and shorten padded forms (``450100`` → ``4501`` for a city)."""
    if isinstance(raw, float):
        if not raw.is_integer():
            raise CodeError(f"编码 {raw!r} 不是整数，请将编码列设为文本格式")
        raw = int(raw)
    code = str(raw).strip()
    if not code:
        raise CodeError("编码为空")
    if not code.isascii() or not code.isdigit():
        raise CodeError(f"编码 {code} 只能由数字组成")
    fixed = FIXED_LENGTH.get(level)
    if fixed and len(code) in (6, 9, 12) and len(code) > fixed and set(code[fixed:]) == {"0"}:
        code = code[:fixed]
    return code


def _in_ranges(seq: int, ranges: tuple[CodeRange, ...]) -> str | None:
    for r in ranges:
        if r.low <= seq <= r.high:
            return r.kind
    return None


def _describe(ranges: tuple[CodeRange, ...]) -> str:
    return "、".join(f"{r.low:03d}–{r.high:03d} {r.kind}" for r in ranges)


def validate(
    code: str, level: Level, parent: tuple[str, Level] | None, rules: GridCodeRules
) -> CodeInfo:
    """Check a canonical code against its level and its parent's code; return what it denotes."""
    if parent is None and level > MAX_ROOT_LEVEL:
        raise CodeError(f"{level.label}必须有上级")
    if parent is not None:
        parent_code, parent_level = parent
        if parent_level != level - 1:
            raise CodeError(
                f"{level.label}的上级应为{Level(level - 1).label}，实际为{parent_level.label}"
            )
        if not code.startswith(parent_code) or len(code) <= len(parent_code):
            raise CodeError(f"编码 {code} 应以上级编码 {parent_code} 开头")
    fixed = FIXED_LENGTH.get(level)
    if fixed is not None and len(code) != fixed:
        raise CodeError(f"{level.label}编码应为 {fixed} 位，{code} 为 {len(code)} 位")
    kind = ""
    if level == Level.PROVINCE:
        if code not in PROVINCE_CODES:
            raise CodeError(f"{code} 不是 GB/T 2260 省级代码")
    elif level in (Level.CITY, Level.COUNTY):
        if code[-2:] == "00":
            raise CodeError(f"{level.label}编码末两位不能为 00: {code}")
    elif level in (Level.TOWNSHIP, Level.COMMUNITY):
        ranges = rules.township if level == Level.TOWNSHIP else rules.community
        found = _in_ranges(int(code[-3:]), ranges)
        if found is None:
            raise CodeError(
                f"{level.label}编码末三位 {code[-3:]} 不在允许范围内（{_describe(ranges)}）"
            )
        kind = found
    else:
        digits = rules.grid_digits if level == Level.GRID else rules.unit_digits
        assert parent is not None  # checked above: only province, city and county may be roots
        base = parent[0]
        tail = code[len(base) :]
        if len(tail) not in digits:
            allowed = "或".join(str(d) for d in digits)
            raise CodeError(
                f"{level.label}编码应在上级编码 {base} 后加 {allowed} 位序号，{code} 加了 {len(tail)} 位"
            )
        if int(tail) == 0:
            raise CodeError(f"{level.label}序号不能为 0: {code}")
    return CodeInfo(code=code, level=level, kind=kind)
