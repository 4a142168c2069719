"""Working-day calendar (工作日历): the State Council's holidays and make-up workdays (调休)
from the ``chinesecalendar`` package, plus each province's overrides (docs/calendar.md).

The case engine asks ``calendar_for(kernel, node.path)`` for the calendar of a node's province
and counts time limits with ``deadline`` / ``elapsed``; administrators keep the overrides on
``/admin/calendar`` or with ``yiwang calendar``.
"""

from __future__ import annotations

from yiwang.calendar.cache import calendar_for
from yiwang.calendar.models import CalendarDay
from yiwang.calendar.overrides import overrides_of, remove_override, set_override
from yiwang.calendar.workcal import DEFAULT_TIMEZONE, DayInfo, Override, WorkCalendar

__all__ = [
    "DEFAULT_TIMEZONE",
    "CalendarDay",
    "DayInfo",
    "Override",
    "WorkCalendar",
    "calendar_for",
    "overrides_of",
    "remove_override",
    "set_override",
]
