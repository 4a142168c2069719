"""WorkCalendar: working days (工作日) and deadlines counted in them, for one province.

A day works or rests by, in order: the province's override, the State Council's arrangement
(holidays and make-up workdays, 调休), the weekend rule (Monday–Friday work). Working time
accrues only during working days, whole local days 00:00–24:00 in the calendar's time zone.

Every answer is table arithmetic, O(1): ``prefix[i]`` counts the working days before day ``i``
and ``nth[k]`` is the day of the ``k``-th working day (0-based), so an instant maps to the
working microseconds before it and back without walking days. The engine calls ``deadline`` on
every transition; a calendar is built once per province and shared (``calendar_for``).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import accumulate, compress
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from yiwang.calendar.official import BASE, END, FIRST_YEAR, LAST_YEAR, Official, official
from yiwang.errors import ValidationError

DEFAULT_TIMEZONE = "Asia/Shanghai"
DAY_US = 86_400_000_000
_US = timedelta(microseconds=1)
#: Midnight UTC of the first day of the tables (naive: the same instant, naive = UTC).
_EPOCH_NAIVE = datetime.fromordinal(BASE)
_EPOCH_UTC = _EPOCH_NAIVE.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Override:
    """A province's own arrangement for one day."""

    workday: bool
    name: str


@dataclass(frozen=True)
class DayInfo:
    """One day as the admin page and ``yiwang calendar show`` present it.

    ``source``: ``"override"`` (the province's), ``"official"`` (a day the State Council's
    notice lists) or ``"weekly"`` (the weekend rule). ``official_*`` is the national answer
    the override (if any) replaces; ``covered``: the year has official data.
    """

    day: date
    workday: bool
    name: str
    source: str
    official_workday: bool
    official_name: str
    covered: bool

    @property
    def mark(self) -> str:
        """班 (working day) or 休 (day off)."""
        return "班" if self.workday else "休"


class WorkCalendar:
    """The working-day calendar of one province: the national arrangement plus its overrides.

    Immutable: a changed override yields a new calendar (``calendar_for`` rebuilds it).

    Parameters
    ----------
    overrides: the province's days, ``{date: Override}``; they win over everything else.
    timezone: the zone whose local days are counted (an IANA name or a tzinfo); it must keep one
        UTC offset over the supported years, as every zone of China does (else ValueError).
    """

    __slots__ = ("_tz", "_offset", "_official", "_overrides", "_flags", "_prefix", "_nth")
    _tz: tzinfo
    #: The zone's UTC offset in microseconds, constant over the table (China's since 1992), so
    #: instants map to local days by integer arithmetic.
    _offset: int
    _official: Official
    _overrides: Mapping[date, Override]
    _flags: bytes
    #: ``_prefix[i]``: working days before day ``i``; ``_nth[k]``: the day of working day ``k``.
    _prefix: array[int]
    _nth: array[int]

    def __init__(
        self,
        overrides: Mapping[date, Override] | None = None,
        *,
        timezone: str | tzinfo = DEFAULT_TIMEZONE,
    ) -> None:
        base = official()
        flags = bytearray(base.flags)
        for day, o in (overrides or {}).items():
            flags[_index(day)] = 1 if o.workday else 0
        set_ = object.__setattr__
        tz = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        offset = _fixed_offset(tz)
        if offset is None:
            raise ValueError(f"{timezone} changes its UTC offset within {FIRST_YEAR}–{LAST_YEAR}")
        set_(self, "_tz", tz)
        set_(self, "_offset", offset)
        set_(self, "_official", base)
        set_(self, "_overrides", MappingProxyType(dict(overrides or {})))
        set_(self, "_flags", bytes(flags))
        set_(self, "_prefix", array("i", accumulate(flags, initial=0)))
        set_(self, "_nth", array("i", compress(range(len(flags)), flags)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("WorkCalendar is immutable")

    # --- days ------------------------------------------------------------------------------------

    @property
    def timezone(self) -> tzinfo:
        return self._tz

    @property
    def overrides(self) -> Mapping[date, Override]:
        """The province's overrides (read-only)."""
        return self._overrides

    def is_workday(self, day: date) -> bool:
        """Is ``day`` a working day? (A datetime is taken at its local date in this zone.)"""
        if isinstance(day, datetime):
            day = self.local_date(day)
        return bool(self._flags[_index(day)])

    def workdays_between(self, first: date, last: date) -> int:
        """Working days from ``first`` to ``last``, both included (0 when ``last < first``)."""
        if last < first:
            return 0
        return int(self._prefix[_index(last) + 1] - self._prefix[_index(first)])

    def describe(self, day: date) -> DayInfo:
        """What ``day`` is and why (override, official notice, or the weekend rule)."""
        base = self._official
        o = day.toordinal()
        workday = bool(self._flags[_index(day)])
        official_name = base.names.get(o, "")
        official_workday = bool(base.flags[o - BASE])
        override = self._overrides.get(day)
        if override is not None:
            source, name = "override", override.name
        else:
            source, name = ("official" if official_name else "weekly"), official_name
        return DayInfo(day, workday, name, source, official_workday, official_name,
                       day.year in base.covered)  # fmt: skip

    def month(self, year: int, month: int) -> list[DayInfo]:
        """Every day of a month, described."""
        first = date(year, month, 1)
        following = date(year + month // 12, month % 12 + 1, 1)
        return [self.describe(first + timedelta(days=n)) for n in range((following - first).days)]

    def covered_years(self) -> tuple[int, ...]:
        """Years the State Council's arrangement is known for (others: weekend rule only)."""
        return self._official.covered

    def missing_years(self, today: date | None = None, lookahead_days: int = 62) -> list[int]:
        """Years from ``today`` (default: today here) to ``lookahead_days`` ahead that lack
        official data — deadlines there would ignore the holidays. The notice for next year
        usually comes in November, so the default starts warning about it in late October."""
        today = today or self.today()
        last = (today + timedelta(days=lookahead_days)).year
        return [y for y in range(today.year, last + 1) if y not in self._official.covered]

    def today(self) -> date:
        return datetime.now(self._tz).date()

    def local_date(self, instant: datetime) -> date:
        """The local date of an instant (naive = UTC)."""
        return _aware(instant).astimezone(self._tz).date()

    # --- working time ----------------------------------------------------------------------------

    def deadline(self, start: datetime, days: float) -> datetime:
        """The instant at which ``days`` working days have elapsed since ``start``.

        Working time accrues only during working days (whole local days, 00:00–24:00 in the
        calendar's time zone); ``days`` may be fractional (hours = days/24). ``start`` aware
        (naive = UTC); the result is aware UTC. ``days == 0`` → ``start``. A start on a day off
        begins counting at the next working day's 00:00. The earliest such instant is returned:
        a limit that runs out exactly at midnight ends at 24:00 of the last working day, not at
        the start of the next one.
        """
        if not 0 <= days < math.inf:
            raise ValueError(f"days must be a finite number >= 0, not {days!r}")
        span = round(days * DAY_US)
        if span == 0:
            return _aware(start).astimezone(UTC)
        k, rest = divmod(self._worked(start) + span, DAY_US)
        if rest == 0:  # exactly at a day boundary: 24:00 of the k-th working day (1-based)
            k, rest = k - 1, DAY_US
        if k >= len(self._nth):
            raise ValidationError(f"期限超出工作日历支持的范围（{FIRST_YEAR}–{LAST_YEAR} 年）")
        return _EPOCH_UTC + timedelta(microseconds=self._nth[k] * DAY_US + rest - self._offset)

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Working days elapsed between two instants (0 if ``end <= start``); the inverse of
        ``deadline``: ``elapsed(s, deadline(s, d)) == d`` (to the microsecond)."""
        if _aware(end) <= _aware(start):
            return 0.0
        return (self._worked(end) - self._worked(start)) / DAY_US

    def _worked(self, instant: datetime) -> int:
        """Working microseconds from the start of the table to ``instant``."""
        epoch = _EPOCH_UTC if instant.tzinfo is not None else _EPOCH_NAIVE
        i, into = divmod((instant - epoch) // _US + self._offset, DAY_US)
        if not 0 <= i < len(self._flags):
            raise ValidationError(
                f"时间 {instant.isoformat()} 超出工作日历支持的范围（{FIRST_YEAR}–{LAST_YEAR} 年）"
            )
        return self._prefix[i] * DAY_US + (into if self._flags[i] else 0)


def _fixed_offset(tz: tzinfo) -> int | None:
    """The zone's offset in microseconds if it is the same in January and July of every year
    of the table (no daylight saving, no change of zone), else None."""
    offsets = {
        datetime(year, month, 1, tzinfo=tz).utcoffset()
        for year in range(FIRST_YEAR, LAST_YEAR + 1)
        for month in (1, 7)
    }
    if len(offsets) != 1:
        return None
    (only,) = offsets
    return None if only is None else only // _US


def _aware(instant: datetime) -> datetime:
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def _index(day: date) -> int:
    """Position of ``day`` in the tables; refused outside the supported span."""
    o = day.toordinal()
    if not BASE <= o < END:
        raise ValidationError(f"日期 {day:%Y-%m-%d} 超出工作日历支持的范围（{FIRST_YEAR}–{LAST_YEAR} 年）")
    return o - BASE
