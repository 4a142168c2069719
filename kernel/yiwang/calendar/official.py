"""The State Council's arrangement (国务院办公厅关于部分节假日安排的通知) as shipped by the
``chinesecalendar`` package, laid out as one flag per day over the span the calendar supports.

The package answers day by day (``is_workday`` re-checks its whole year range on every call),
too slow for the tens of thousands of days a table needs; its two data tables (holidays and
make-up workdays, ``chinese_calendar.holidays`` / ``.workdays``) are read once instead, with
the same rule: a listed make-up workday works, a listed holiday rests, otherwise Monday–Friday
work. Which years the data covers is asked of the package itself: it raises
NotImplementedError for a year it has no notice for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

import chinese_calendar  # type: ignore[import-untyped]

#: The span every calendar covers (days outside it are refused): legacy cases to far deadlines.
FIRST_YEAR = 2000
LAST_YEAR = 2099
BASE = date(FIRST_YEAR, 1, 1).toordinal()
END = date(LAST_YEAR + 1, 1, 1).toordinal()

#: Display names of the package's festivals where its own label is a short form.
_NAMES = {"清明": "清明节", "端午": "端午节", "中秋": "中秋节"}


def festival(english: str) -> str:
    """The Chinese name of a festival of the package (``"National Day"`` → ``"国庆节"``)."""
    try:
        chinese = str(chinese_calendar.Holiday(english).chinese)
    except ValueError:
        return english
    return _NAMES.get(chinese, chinese)


def is_covered(year: int) -> bool:
    """Does the package carry the State Council's notice for ``year``?"""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


@dataclass(frozen=True)
class Official:
    """The national arrangement, one flag per day from ``FIRST_YEAR`` to ``LAST_YEAR``.

    ``flags[i]`` is 1 when day ``BASE + i`` (an ordinal) is a working day. ``names`` holds the
    festival of each listed day: holidays by name (``"国庆节"``), make-up workdays with
    ``调休`` (``"国庆节调休"``). ``covered`` are the years with official data; other years
    follow the weekend rule alone.
    """

    flags: bytes
    names: dict[int, str]
    covered: tuple[int, ...]


@cache
def official() -> Official:
    """The package's arrangement (read once per process: it is constant data)."""
    # Ordinal 1 (0001-01-01) is a Monday: weekday = (ordinal + 6) % 7.
    flags = bytearray(1 if (o + 6) % 7 < 5 else 0 for o in range(BASE, END))
    names: dict[int, str] = {}
    listed = {d.year for d in chinese_calendar.holidays}  # only these can be covered
    covered = tuple(y for y in sorted(listed) if FIRST_YEAR <= y <= LAST_YEAR and is_covered(y))
    for day, english in chinese_calendar.holidays.items():
        if day.year in covered:
            flags[day.toordinal() - BASE] = 0
            names[day.toordinal()] = festival(english)
    for day, english in chinese_calendar.workdays.items():
        if day.year in covered:
            flags[day.toordinal() - BASE] = 1
            names[day.toordinal()] = festival(english) + "调休"
    return Official(bytes(flags), names, covered)

