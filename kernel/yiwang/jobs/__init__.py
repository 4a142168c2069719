"""Periodic jobs (定时任务): declared by plugins and the kernel, run on every worker's tick,
each at most once per period on the whole deployment (docs/jobs.md).

Declare with ``yiwang_jobs`` → ``Job``; ``run_due`` runs what is due (claim, run, record);
``JobRunner`` ticks in the app (``jobs.run_in_app``) or in ``yiwang jobs loop``.
"""

from __future__ import annotations

from yiwang.jobs.declarations import Job, declared_jobs, describe_every
from yiwang.jobs.runner import JobRunner, start_in_app
from yiwang.jobs.schedule import JobRun, JobState, job_states, new_owner, run_due, run_job

__all__ = [
    "Job",
    "JobRun",
    "JobRunner",
    "JobState",
    "declared_jobs",
    "describe_every",
    "job_states",
    "new_owner",
    "run_due",
    "run_job",
    "start_in_app",
]
