"""Masking (脱敏) of personal data for pages, exports and logs.

Rules, per kind of field:

* ``id_number``: the first 3 and last 4 characters, every other one ``*``; the birth date is
  always hidden, the length kept (``450***********1234``).
* ``phone``: the first 3 and last 4 digits of the national number (``138****5678``); a country
  code and separators stay as written (``+86 138 **** 5678``).
* ``name``: the surname, every other character ``*`` (``张*``, ``张**``); compound surnames keep
  both characters (``欧阳**``); spaces and ``·`` stay.
* ``address``: the administrative part up to the street (街道/镇/乡) or community (社区/村) level
  is kept, the rest becomes ``****`` (``南宁市青秀区新竹街道新竹社区****``); an address without a
  recognisable administrative part becomes ``****``.
* ``other``: every character ``*``.

``mask_text`` masks identity numbers and mainland mobile numbers found inside free text;
``PersonalDataFilter`` applies it to every log record (see ``install_log_masking``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from yiwang.privacy.idcard import is_valid_id

KINDS = ("id_number", "phone", "name", "address", "other")

#: Two-character surnames (复姓) that keep both characters.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 令狐 夏侯 轩辕 端木 独孤 南宫 西门 "
    "百里 呼延 澹台 公冶 宗政 濮阳 淳于 单于 太叔 申屠 仲孙 钟离 闻人 赫连 万俟 司空 东郭 拓跋 第五 "
    "左丘 谷梁 梁丘 乐正 漆雕 壤驷 公良 公西 子车 颛孙 巫马 亓官 司寇 鲜于 闾丘".split()
)

_NAME_SEPARATORS = frozenset(" ·•.-")


def _keep(value: str, head: int, tail: int, hidden: int) -> str:
    """Keep ``head`` and ``tail`` characters, fewer when needed to hide at least ``hidden``."""
    n = len(value)
    while head + tail + hidden > n and head > 0:
        head -= 1
    while head + tail + hidden > n and tail > 0:
        tail -= 1
    return value[:head] + "*" * (n - head - tail) + (value[n - tail :] if tail else "")


def mask_id_number(value: str) -> str:
    """``450***********1234``: first 3, last 4; at least 8 hidden (the birth date)."""
    return _keep(value.strip(), 3, 4, 8)


def mask_phone(value: str) -> str:
    """``138****5678``: first 3 and last 4 digits of the national number, at least 4 hidden."""
    value = value.strip()
    positions = [i for i, ch in enumerate(value) if ch.isdigit()]
    digits = "".join(value[i] for i in positions)
    skip = 0  # country code digits, shown as written
    for cc in ("0086", "86"):
        rest = digits[len(cc) :]
        if digits.startswith(cc) and len(rest) == 11 and rest.startswith("1"):
            skip = len(cc)
            break
    national = positions[skip:]
    shown = _keep("x" * len(national), 3, 4, 4)
    out = list(value)
    for pos, mark in zip(national, shown, strict=True):
        if mark == "*":
            out[pos] = "*"
    return "".join(out)


def mask_name(value: str) -> str:
    """``张*``, ``张**``, ``欧阳**``: the surname stays; separators stay."""
    value = value.strip()
    if len(value) <= 1:
        return "*" * len(value)
    keep = 2 if value[:2] in COMPOUND_SURNAMES and len(value) > 2 else 1
    rest = "".join(ch if ch in _NAME_SEPARATORS else "*" for ch in value[keep:])
    return value[:keep] + rest


# An administrative segment: up to 16 characters without digits or Latin letters, ending in a
# level word; a community-level word ends the kept part. Segments ending in 区/市/镇 must not
# contain street words either, so "东葛路二区" is not taken for a district (the price: 鼓楼区 and
# the like are masked too — the safe direction).
_LEVEL_WORDS = (
    "特别行政区 自治区 自治州 自治县 自治旗 地区 盟 省 市 州 区 县 旗 "
    "街道办事处 街道 镇 民族乡 乡 苏木 "
    "居民委员会 村民委员会 居委会 村委会 社区 嘎查 村"
).split()
_COMMUNITY_WORDS = ("居民委员会", "村民委员会", "居委会", "村委会", "社区", "嘎查", "村")
_NOT_ADMIN = (
    "小区",
    "园区",
    "校区",
    "景区",
    "厂区",
    "营区",
    "城区",
    "超市",
    "城市",
    "夜市",
    "古镇",
)
_STREET_CHARS = frozenset("路街巷弄号栋幢楼室")
_SEGMENT = re.compile(r".{1,16}?(?:" + "|".join(map(re.escape, _LEVEL_WORDS)) + ")")


def _admin_prefix(address: str) -> str:
    pos = 0
    while pos < len(address):
        m = _SEGMENT.match(address, pos)
        if m is None:
            break
        seg = m.group(0)
        if (
            any(ch.isdigit() or (ch.isascii() and ch.isalpha()) for ch in seg)
            or seg.endswith(_NOT_ADMIN)
            or (
                seg[-1] in "区市镇"
                and not seg.endswith(("自治区", "地区", "特别行政区", "社区"))
                and any(ch in _STREET_CHARS for ch in seg)
            )
        ):
            break
        pos = m.end()
        if seg.endswith(_COMMUNITY_WORDS):
            break
    return address[:pos]


def mask_address(value: str) -> str:
    """Keep the administrative part down to the street or community; the rest is ``****``."""
    value = value.strip()
    if not value:
        return ""
    prefix = _admin_prefix(value)
    return prefix if prefix == value else prefix + "****"


def mask_other(value: str) -> str:
    """Every character hidden."""
    return "*" * len(value.strip())


_MASKERS: dict[str, Callable[[str], str]] = {
    "id_number": mask_id_number,
    "phone": mask_phone,
    "name": mask_name,
    "address": mask_address,
    "other": mask_other,
}


def mask(value: Any, kind: str) -> str:
    """The masked form of ``value`` for a field of ``kind`` (None and "" give "").

    Also the Jinja filter: ``{{ person.id_number|mask("id_number") }}``.
    """
    try:
        masker = _MASKERS[kind]
    except KeyError:
        raise ValueError(f"未知的个人信息类别 {kind!r}（可选: {', '.join(KINDS)}）") from None
    if value is None:
        return ""
    return masker(str(value))


# --- free text and logs ---------------------------------------------------------------------

_B = r"(?<![0-9A-Za-z])"
_E = r"(?![0-9A-Za-z])"
_MMDD = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
#: 18 characters with a plausible birth date; the checksum is not required (a mistyped number
#: is still personal data).
ID18_PATTERN = re.compile(rf"{_B}[1-9]\d{{5}}(?:18|19|20)\d{{2}}{_MMDD}\d{{3}}[\dXx]{_E}")
#: 15 digits, born 1920–1999: older years would mostly match grid codes, not living people.
ID15_PATTERN = re.compile(rf"{_B}[1-9]\d{{5}}[2-9]\d{_MMDD}\d{{3}}{_E}")
#: Mainland mobile numbers, optionally with +86/0086 and 3-4-4 separators.
MOBILE_PATTERN = re.compile(rf"{_B}(?:(?:\+|00)?86[- ]?)?1[3-9]\d(?:[- ]?\d{{4}}){{2}}{_E}")


def mask_text(text: str) -> str:
    """Mask every identity number (18 or 15 digits) and mainland mobile number in ``text``."""
    if not any(ch.isdigit() for ch in text):
        return text
    text = ID18_PATTERN.sub(lambda m: mask_id_number(m.group(0)), text)
    text = ID15_PATTERN.sub(lambda m: mask_id_number(m.group(0)), text)
    return MOBILE_PATTERN.sub(lambda m: mask_phone(m.group(0)), text)


def find_personal_data(text: str) -> list[str]:
    """Raw personal data in ``text``, each shown masked: identity numbers whose checksum is
    valid and mobile numbers. Precise enough to fail a test on (timestamps and ids do not
    match)."""
    found = [
        mask_id_number(m.group(0)) for m in ID18_PATTERN.finditer(text) if is_valid_id(m.group(0))
    ]
    found += [mask_phone(m.group(0)) for m in MOBILE_PATTERN.finditer(text)]
    return found


class PersonalDataFilter(logging.Filter):
    """Masks identity and mobile numbers in a record's message, arguments and traceback.

    The message is formatted once and, when anything was masked, replaces ``msg`` with ``args``
    emptied, so no argument can bring the raw value back. Always lets the record through.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_yiwang_masked", False):
            return True
        setattr(record, "_yiwang_masked", True)  # noqa: B010 - LogRecord has no such field
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it when the record is emitted
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


def install_log_masking() -> None:
    """Mask every log record of the process when it is created (idempotent).

    A filter on a logger misses records of its children, and one on handlers misses handlers
    added later (uvicorn's, pytest's); wrapping the log-record factory reaches every record of
    every logger, whatever the logging configuration.
    """
    current = logging.getLogRecordFactory()
    if getattr(current, "yiwang_masking", False):
        return
    masking = PersonalDataFilter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        masking.filter(record)
        return record

    factory.yiwang_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


__all__ = [
    "KINDS",
    "PersonalDataFilter",
    "find_personal_data",
    "install_log_masking",
    "mask",
    "mask_address",
    "mask_id_number",
    "mask_name",
    "mask_other",
    "mask_phone",
    "mask_text",
]
