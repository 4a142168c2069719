"""The job table: one row per declared job — its schedule, its lease and its last run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


class KernelJob(SQLModel, table=True):
    """A job's schedule and lease, shared by every worker.

    A worker runs a job only after claiming it: one conditional UPDATE sets ``lease_owner`` and
    ``lease_until`` where the job is due and not leased (or its lease expired). Times are UTC.
    Rows of jobs no longer declared are kept (a re-enabled plugin resumes its schedule).
    """

    __tablename__ = "kernel_job"

    name: str = Field(max_length=80, primary_key=True)
    next_run_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    #: The worker running the job now (``host-pid-random``); None when idle.
    lease_owner: str | None = Field(default=None, max_length=120)
    #: Until when the run is presumed alive; after it another worker may take over.
    lease_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    #: None until the first run finishes.
    last_ok: bool | None = None
    #: The last failure's message, shortened; "" after a successful run.
    last_error: str = Field(default="", max_length=500)
    #: What the last successful run returned (how many things it did).
    last_result: int | None = None
    runs: int = 0
    failures: int = 0
