"""Caches of small, rarely changed tables, kept fresh across workers by a shared counter.

A change bumps a named ``kernel_counter`` row (its *epoch*) in the changing transaction. Each
worker re-reads the epoch at most every ``refresh_seconds`` and reloads its copy when the epoch
moved; the worker that made the change reloads at once. Plugin activation and the working-day
calendar use it; a revocation or an override applies everywhere within seconds without a read of
the table per request.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from yiwang.plugins.models import KernelCounter

if TYPE_CHECKING:
    from yiwang.db import Database

COUNTER = KernelCounter.__table__  # type: ignore[attr-defined]


def read_counter(session: Session, name: str) -> int:
    value = session.execute(select(COUNTER.c.value).where(COUNTER.c.name == name)).scalar()
    return int(value or 0)


def bump_counter(session: Session, name: str) -> None:
    """Advance a shared ``kernel_counter`` inside the caller's transaction (upsert)."""
    dialect = session.connection().dialect.name
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(COUNTER)
    session.execute(
        ins.values(name=name, value=1).on_conflict_do_update(
            index_elements=["name"], set_={"value": COUNTER.c.value + 1}
        )
    )


class EpochCache:
    """Base of a cache reloaded when its epoch counter moves.

    Subclasses implement ``_read(session)`` (read the table; no lock held) and ``_install(state)``
    (swap the new state in; called under the lock), and call ``fresh()`` before every use.

    Parameters
    ----------
    db: the database holding the table and the counter.
    counter: the ``kernel_counter`` row naming this cache's epoch.
    refresh_seconds: how stale another worker's change may be here.
    """

    def __init__(self, db: Database, counter: str, refresh_seconds: float = 2.0) -> None:
        self.db = db
        self.counter = counter
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._checked = 0.0

    def _read(self, session: Session) -> Any:
        raise NotImplementedError

    def _install(self, state: Any) -> None:
        raise NotImplementedError

    def reload(self) -> None:
        """Re-read the table now."""
        with self.db.read() as s:
            epoch = read_counter(s, self.counter)
            state = self._read(s)
        with self._lock:
            self._install(state)
            self._epoch = epoch
            self._checked = time.monotonic()

    def fresh(self) -> None:
        """Reload if another worker changed the table (checked at most every refresh_seconds)."""
        if self._epoch is None:
            self.reload()
        elif time.monotonic() - self._checked >= self.refresh_seconds:
            with self.db.read() as s:
                moved = read_counter(s, self.counter) != self._epoch
            if moved:
                self.reload()
            else:
                self._checked = time.monotonic()
