"""Each province's calendar, built once per kernel and kept fresh across workers.

Overrides are few (tens of rows a year per province), so a worker holds them all and builds a
province's ``WorkCalendar`` on first use. Like plugin activation (``plugins/activation.py``), a
shared epoch counter (``kernel_counter`` row ``calendar_epoch``) moves with every change: a
worker re-reads it at most every ``plugins.activation_refresh_seconds`` and reloads when it moved;
the worker that made the change reloads at once.
"""

from __future__ import annotations

import threading
import weakref
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import Session, col

from yiwang.calendar.models import CalendarDay
from yiwang.calendar.workcal import Override, WorkCalendar
from yiwang.db.epoch import EpochCache

if TYPE_CHECKING:
    from yiwang.db import Database
    from yiwang.kernel import Kernel

EPOCH = "calendar_epoch"


class CalendarCache(EpochCache):
    """Calendars by province id (None: the national arrangement alone).

    Parameters
    ----------
    db: the database holding ``calendar_day`` and the epoch counter.
    refresh_seconds: how stale another worker's change may be here.
    """

    def __init__(self, db: Database, refresh_seconds: float = 2.0) -> None:
        super().__init__(db, EPOCH, refresh_seconds)
        # Overrides by province and the calendars built from them, swapped together on reload:
        # a calendar built from old overrides lands in the old dict, never in the new one.
        self._state: tuple[dict[int, dict[date, Override]], dict[int | None, WorkCalendar]] = ({}, {})

    def _read(self, session: Session) -> dict[int, dict[date, Override]]:
        rows = session.execute(
            select(col(CalendarDay.node_id), col(CalendarDay.day), col(CalendarDay.workday),
                   col(CalendarDay.name))  # fmt: skip
        ).all()
        overrides: dict[int, dict[date, Override]] = {}
        for node_id, day, workday, name in rows:
            overrides.setdefault(int(node_id), {})[day] = Override(bool(workday), str(name))
        return overrides

    def _install(self, state: dict[int, dict[date, Override]]) -> None:
        self._state = (state, {})

    def province(self, province_id: int | None) -> WorkCalendar:
        """The calendar of the province with this (root node) id; None: no overrides."""
        self.fresh()
        by_province, calendars = self._state
        overrides = by_province.get(province_id) if province_id is not None else None
        key = province_id if overrides else None  # provinces without overrides share one
        found = calendars.get(key)
        if found is None:
            found = calendars[key] = WorkCalendar(overrides)
        return found


_caches: weakref.WeakKeyDictionary[Kernel, CalendarCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_of(kernel: Kernel) -> CalendarCache:
    """The kernel's calendar cache (made on first use; it goes with the kernel)."""
    found = _caches.get(kernel)
    if found is None:
        with _caches_lock:
            found = _caches.get(kernel)
            if found is None:
                found = CalendarCache(kernel.db, kernel.settings.activation_refresh_seconds)
                _caches[kernel] = found
    return found


def province_id_of(node_path: str | None) -> int | None:
    """The province (root) node id of a path: its first segment (``/1/7/42/`` → 1)."""
    if node_path is None:
        return None
    head = node_path.split("/", 2)
    if len(head) < 3 or head[0] or not head[1].isdigit():
        raise ValueError(f"not a node path: {node_path!r}")
    return int(head[1])


def calendar_for(kernel: Kernel, node_path: str | None) -> WorkCalendar:
    """The calendar of the province containing ``node_path`` (first path segment is the
    province node id; None → no overrides). Cached per kernel; another worker's change to the
    overrides applies here within ``plugins.activation_refresh_seconds``."""
    return cache_of(kernel).province(province_id_of(node_path))
