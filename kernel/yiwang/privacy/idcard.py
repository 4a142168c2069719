"""Citizen identity numbers (公民身份号码, GB 11643-1999).

An 18-character number is 6 digits of area code (GB/T 2260), 8 of birth date, 3 of sequence (odd
for men, even for women) and a check character: ``"10X98765432"[Σ dᵢ·wᵢ mod 11]`` with the
weights below. The 15-digit numbers issued before 1999 upgrade by inserting ``19`` after the area
code and appending the check. Area codes change but numbers keep the old one, so an unknown area
code is a warning, never a rejection.

Error messages never repeat the number or the birth date: they end up in import previews and
logs.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Container
from dataclasses import dataclass
from datetime import date

from yiwang.errors import ValidationError

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
EARLIEST_BIRTH = date(1900, 1, 1)

#: First two digits in use: GB/T 2260 provinces, 71 台湾, 81/82 港澳, 83 台湾居民居住证.
PROVINCE_PREFIXES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 "
    "71 81 82 83".split()
)

# ASCII digits only: ``\d`` would also take other scripts' digits, which NFKC leaves alone.
_ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
_ID15 = re.compile(r"^[0-9]{15}$")
#: Σ dᵢ·wᵢ from the bytes of the digits: Σ bᵢ·wᵢ less this (b = d + 48).
_DIGIT_OFFSET = 48 * sum(WEIGHTS)
_SPACES = re.compile(r"\s+")


class InvalidIdNumber(ValidationError):
    """A citizen identity number that fails GB 11643; the message is Chinese."""


@dataclass(frozen=True)
class IdInfo:
    """What a valid identity number tells.

    Parameters
    ----------
    number: the normalised 18-character number (upper-case ``X``).
    birth_date: the birth date it encodes.
    sex: ``"男"`` (odd sequence) or ``"女"`` (even).
    area_code: the six-digit area code (where the number was first issued).
    warnings: Chinese notes that do not make the number invalid (unknown area code, upgraded
        15-digit number).
    legacy: True when the input was a 15-digit number.
    area_unknown: True when the area code drew a warning (a page showing the number masked can
        say so without repeating its digits).
    """

    number: str
    birth_date: date
    sex: str
    area_code: str
    warnings: tuple[str, ...] = ()
    legacy: bool = False
    area_unknown: bool = False

    @property
    def sex_code(self) -> int:
        """GB/T 2261.1 sex code: 1 男, 2 女."""
        return 1 if self.sex == "男" else 2


def check_char(first17: str) -> str:
    """The check character of the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("check_char needs exactly 17 ASCII digits")
    return _check(first17)


def _check(first17: str) -> str:
    """``check_char`` of 17 ASCII digits already checked (an import validates millions)."""
    return CHECK_CHARS[(sum(map(operator.mul, first17.encode("ascii"), WEIGHTS)) - _DIGIT_OFFSET) % 11]


def upgrade_15(number: str) -> str:
    """The 18-character form of a 15-digit number (``19`` inserted after the area code)."""
    if not _ID15.match(number):
        raise ValueError("upgrade_15 needs exactly 15 ASCII digits")
    first17 = number[:6] + "19" + number[6:]
    return first17 + check_char(first17)


def normalise_id(value: str) -> str:
    """Full-width characters folded, whitespace removed, ``x`` upper-cased (no validation)."""
    if value.isascii() and value.isalnum():  # the usual case: NFKC leaves ASCII as it is
        return value.upper()
    return _SPACES.sub("", unicodedata.normalize("NFKC", value)).upper()


def validate_id(
    value: object, *, known_areas: Container[str] | None = None, today: date | None = None
) -> IdInfo:
    """Validate a citizen identity number and say what it encodes.

    Parameters
    ----------
    value: the number as typed or imported; must be text (a spreadsheet number has lost digits).
    known_areas: six-digit area codes the deployment knows (e.g. its division codes); an area
        outside them is a warning. Without it only the province prefix is checked.
    today: the reference date for "not in the future" (default: today).

    Raises ``InvalidIdNumber`` with a Chinese message when the number is not valid.
    """
    if isinstance(value, bool) or isinstance(value, int | float):
        raise InvalidIdNumber(
            "身份证号码是数字格式，可能已丢失位数；请将该列设为文本格式后重新填写"
        )
    if not isinstance(value, str):
        raise InvalidIdNumber("身份证号码应为文本")
    number = normalise_id(value)
    if not number:
        raise InvalidIdNumber("身份证号码为空")
    warnings: list[str] = []
    legacy = False
    if len(number) == 15:
        if not _ID15.match(number):
            raise InvalidIdNumber("15 位身份证号码应全部为数字")
        if not _valid_date("19" + number[6:12]):
            raise InvalidIdNumber("身份证号码中的出生日期（第 7–12 位）不是有效日期")
        number = upgrade_15(number)
        legacy = True
        warnings.append("15 位旧号码已升级为 18 位")
    elif len(number) == 18:
        if not _ID18.match(number):
            raise InvalidIdNumber("身份证号码前 17 位应为数字，最后一位为数字或 X")
    else:
        raise InvalidIdNumber(f"身份证号码应为 18 位（或 15 位旧号码），实际为 {len(number)} 位")

    born = _valid_date(number[6:14])
    if born is None:
        raise InvalidIdNumber("身份证号码中的出生日期（第 7–14 位）不是有效日期")
    if born < EARLIEST_BIRTH:
        raise InvalidIdNumber("身份证号码中的出生日期早于 1900 年")
    if born > (today or date.today()):
        raise InvalidIdNumber("身份证号码中的出生日期晚于今天")
    if _check(number[:17]) != number[17]:
        raise InvalidIdNumber("身份证号码校验位不符，请逐位核对号码")

    area = number[:6]
    area_unknown = False
    if known_areas is not None:
        if area not in known_areas:
            area_unknown = True
            warnings.append(f"地区码 {area} 不在已知行政区划中（区划可能已调整，号码仍有效）")
    elif area[:2] not in PROVINCE_PREFIXES and area[0] != "9":  # 9…: 外国人永久居留身份证
        area_unknown = True
        warnings.append(f"地区码 {area} 的省级代码 {area[:2]} 不存在（号码仍按有效处理）")
    sex = "男" if int(number[16]) % 2 == 1 else "女"
    return IdInfo(number, born, sex, area, tuple(warnings), legacy, area_unknown)


def is_valid_id(value: object, *, today: date | None = None) -> bool:
    """True when ``validate_id`` accepts the value (warnings allowed)."""
    try:
        validate_id(value, today=today)
    except InvalidIdNumber:
        return False
    return True


def _valid_date(yyyymmdd: str) -> date | None:
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None


__all__ = [
    "CHECK_CHARS",
    "IdInfo",
    "InvalidIdNumber",
    "WEIGHTS",
    "check_char",
    "is_valid_id",
    "normalise_id",
    "upgrade_15",
    "validate_id",
]
