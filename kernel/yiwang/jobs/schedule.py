"""Claiming and running due jobs, safely with any number of workers.

Each declared job has one ``kernel_job`` row. A worker runs a job only after claiming it with
one conditional UPDATE — "lease it to me where it is due and nobody holds a live lease" — so of
several workers ticking at once exactly one gets rowcount 1. The job runs outside that
transaction; when it ends, its row gets the next run time, the cleared lease and the result.
A worker that dies mid-run leaves a lease that expires (``Job.lease``); another worker then
takes the job over. Times are UTC, and workers' clocks are assumed to agree (NTP).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from yiwang.errors import NotFound, ValidationError, YiwangError
from yiwang.jobs.declarations import Job, declared_jobs
from yiwang.jobs.models import KernelJob
from yiwang.privacy.masking import mask_text

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

JOB = KernelJob.__table__  # type: ignore[attr-defined]
ERROR_LENGTH = 500
OWNER_LENGTH = 120
logger = logging.getLogger("yiwang.jobs")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """A stored or given time as aware UTC (SQLite returns naive UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_owner(kind: str = "") -> str:
    """A worker id unique across hosts and restarts: ``[kind:]host-pid-random``."""
    owner = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    return (f"{kind}:{owner}" if kind else owner)[:OWNER_LENGTH]


def next_run(scheduled: datetime, every: timedelta, now: datetime) -> datetime:
    """The first point of the job's cadence after ``now``: however many periods were missed,
    the job runs once and keeps its rhythm. An early (forced) run keeps the schedule."""
    if scheduled > now:
        return scheduled
    return scheduled + ((now - scheduled) // every + 1) * every


@dataclass(frozen=True)
class JobRun:
    """One run of a job by this worker."""

    name: str
    title: str
    #: The scheduled time the job was given.
    scheduled: datetime
    ok: bool
    #: What the job returned (how many things it did); None on failure or when it says nothing.
    result: int | None
    #: The failure's message, masked and shortened ("" when ok).
    error: str
    started_at: datetime
    finished_at: datetime
    next_run_at: datetime
    #: The run outlived its lease and another worker took the job over; its outcome was not
    #: recorded.
    lease_lost: bool = False

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def describe(self) -> str:
        """One Chinese line for the CLI and the log."""
        took = f"用时 {self.seconds:.1f} 秒"
        if not self.ok:
            return f"{self.name}（{self.title}）失败：{self.error}（{took}）"
        done = f"处理 {self.result} 项" if self.result is not None else "完成"
        lost = "；租约已过期，结果未记录" if self.lease_lost else ""
        return f"{self.name}（{self.title}）{done}（{took}）{lost}"


@dataclass(frozen=True)
class JobState:
    """A declared job with its row (None fields before its first tick)."""

    job: Job
    next_run_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_ok: bool | None = None
    last_error: str = ""
    last_result: int | None = None
    runs: int = 0
    failures: int = 0

    def running(self, now: datetime | None = None) -> bool:
        """A live lease: some worker is running the job now."""
        return self.lease_until is not None and self.lease_until >= (now or utcnow())

    @property
    def outcome(self) -> str:
        """The last run in words: 尚未运行 / 成功，处理 N 项 / 失败：…"""
        if self.last_ok is None:
            return "尚未运行"
        if not self.last_ok:
            return f"失败：{self.last_error}"
        return "成功" if self.last_result is None else f"成功，处理 {self.last_result} 项"


# --- rows ------------------------------------------------------------------------------------------


def _rows(kernel: Kernel, names: Iterable[str]) -> dict[str, Any]:
    with kernel.db.read() as s:
        rows = s.connection().execute(select(JOB).where(JOB.c.name.in_(list(names))))
        return {r.name: r for r in rows}


def _ensure_rows(kernel: Kernel, jobs: dict[str, Job], now: datetime) -> dict[str, Any]:
    """Each job's row, created (due now) when missing — race-safe: INSERT … ON CONFLICT DO
    NOTHING. A job whose period was shortened is brought within one new period."""
    rows = _rows(kernel, jobs)
    missing = [n for n in jobs if n not in rows]
    late = [
        j for j in jobs.values()
        if j.name in rows and as_utc(rows[j.name].next_run_at) > now + j.every  # type: ignore[operator]
    ]  # fmt: skip
    if not missing and not late:
        return rows
    with kernel.db.write() as s:
        conn = s.connection()
        if missing:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(
                dialect.insert(JOB).on_conflict_do_nothing(index_elements=["name"]),
                [{"name": n, "next_run_at": now, "last_error": "", "runs": 0, "failures": 0}
                 for n in missing],
            )  # fmt: skip
        for job in late:
            conn.execute(
                update(JOB)
                .where(JOB.c.name == job.name, JOB.c.next_run_at > now + job.every)
                .values(next_run_at=now + job.every)
            )
    return _rows(kernel, jobs)


def _due(row: Any, now: datetime) -> bool:
    lease = as_utc(row.lease_until)
    return as_utc(row.next_run_at) <= now and (lease is None or lease < now)  # type: ignore[operator]


# --- one run ---------------------------------------------------------------------------------------


def _claim(kernel: Kernel, job: Job, owner: str, now: datetime, force: bool) -> datetime | None:
    """Lease ``job`` to ``owner`` if due (any time if ``force``) and not leased; returns the
    time it was scheduled for, or None when another worker has it or it is not due."""
    assert job.lease is not None
    free = or_(JOB.c.lease_until.is_(None), JOB.c.lease_until < now)
    where = [JOB.c.name == job.name, free]
    if not force:
        where.append(JOB.c.next_run_at <= now)
    with kernel.db.write() as s:
        conn = s.connection()
        claimed = conn.execute(
            update(JOB)
            .where(*where)
            .values(lease_owner=owner, lease_until=now + job.lease, last_started_at=utcnow())
        )
        if claimed.rowcount != 1:
            return None
        scheduled = conn.execute(select(JOB.c.next_run_at).where(JOB.c.name == job.name)).scalar_one()
    return as_utc(scheduled)


def _error_text(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, YiwangError) else f"{type(exc).__name__}: {exc}"
    return mask_text(" ".join(text.split()))[:ERROR_LENGTH] or type(exc).__name__


def _execute(kernel: Kernel, job: Job, owner: str, now: datetime, scheduled: datetime) -> JobRun:
    """Run a claimed job and record the outcome on its row (if the lease is still ours)."""
    started = utcnow()
    result: int | None = None
    error = ""
    try:
        got = job.run(kernel, now)
        result = int(got) if isinstance(got, int) else None
    except Exception as exc:
        error = _error_text(exc)
        if isinstance(exc, YiwangError):
            logger.error("定时任务 %s 失败: %s", job.name, error)
        else:
            logger.exception("定时任务 %s 失败", job.name)
    finished = utcnow()
    ok = not error
    next_at = next_run(scheduled, job.every, now)
    with kernel.db.write() as s:
        recorded = s.connection().execute(
            update(JOB)
            .where(JOB.c.name == job.name, JOB.c.lease_owner == owner)
            .values(
                next_run_at=next_at, lease_owner=None, lease_until=None, last_finished_at=finished,
                last_ok=ok, last_error=error, last_result=result, runs=JOB.c.runs + 1,
                failures=JOB.c.failures + (0 if ok else 1),
            )
        )  # fmt: skip
        lost = recorded.rowcount != 1
    if lost:
        logger.warning("定时任务 %s 运行超过租约，已由其他进程接管；本次结果未记录", job.name)
    run = JobRun(job.name, job.title, now, ok, result, error, started, finished, next_at, lost)
    if ok:
        logger.info("定时任务 %s", run.describe())
    return run


def _attempt(kernel: Kernel, job: Job, owner: str, now: datetime, force: bool) -> JobRun | None:
    scheduled = _claim(kernel, job, owner, now, force)
    if scheduled is None:
        return None
    return _execute(kernel, job, owner, now, scheduled)


def _now(now: datetime | None) -> datetime:
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be an aware datetime (UTC)")
    return as_utc(now) or utcnow()


# --- public ----------------------------------------------------------------------------------------


def run_due(kernel: Kernel, *, owner: str, now: datetime | None = None) -> list[JobRun]:
    """Run, one after another, every declared job that is due and not leased, as ``owner``.

    Safe to call from any number of workers at once: each due job runs once per period on the
    whole deployment. A job that raises is logged (logger ``yiwang.jobs``) and recorded on its
    row; the other jobs still run. Returns the runs this worker made.
    """
    at = _now(now)
    jobs = declared_jobs(kernel)
    rows = _ensure_rows(kernel, jobs, at)
    runs = []
    for job in jobs.values():
        if not _due(rows[job.name], at):
            continue  # a cheap read first; the claim decides
        run = _attempt(kernel, job, owner, at, force=False)
        if run is not None:
            runs.append(run)
    return runs


def run_job(
    kernel: Kernel, name: str, *, owner: str, now: datetime | None = None, force: bool = False
) -> JobRun | None:
    """Run one job as ``owner`` if it is due — or, with ``force``, at once (its schedule is
    kept). Returns None when it is not due; NotFound for an undeclared job; ValidationError
    while another worker holds its lease."""
    at = _now(now)
    jobs = declared_jobs(kernel)
    job = jobs.get(name)
    if job is None:
        raise NotFound(f"没有名为 {name} 的定时任务")
    _ensure_rows(kernel, {name: job}, at)
    run = _attempt(kernel, job, owner, at, force)
    if run is None:
        state = job_states(kernel, {name: job})[0]
        if state.running(at):
            raise ValidationError(f"定时任务 {name} 正在由 {state.lease_owner} 运行，请稍后再试")
    return run


def job_states(kernel: Kernel, jobs: dict[str, Job] | None = None) -> list[JobState]:
    """Every declared job (or ``jobs``) with its schedule, lease and last run, in declaration
    order."""
    declared = declared_jobs(kernel) if jobs is None else jobs
    rows = _rows(kernel, declared)
    out = []
    for job in declared.values():
        r = rows.get(job.name)
        if r is None:
            out.append(JobState(job))
            continue
        out.append(
            JobState(
                job, as_utc(r.next_run_at), r.lease_owner, as_utc(r.lease_until),
                as_utc(r.last_started_at), as_utc(r.last_finished_at),
                None if r.last_ok is None else bool(r.last_ok), r.last_error or "",
                r.last_result, int(r.runs), int(r.failures),
            )
        )  # fmt: skip
    return out
