"""``yiwang jobs …``: list the periodic jobs, run them once, or run the runner in the foreground
(for deployments with ``jobs.run_in_app = false``)."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from yiwang.errors import YiwangError


def _kernel() -> Any:
    from yiwang.cli.main import Context, _ready

    kernel = click.get_current_context().ensure_object(Context).kernel
    _ready(kernel)
    return kernel


@click.group("jobs")
def jobs_group() -> None:
    """定时任务：查看、立即运行，或在前台持续运行（独立的任务进程）。"""


@jobs_group.command("list")
def jobs_list() -> None:
    """列出定时任务：名称、周期、下次运行时间（北京时间）、上次结果。"""
    from yiwang.admin.common import when
    from yiwang.jobs.declarations import describe_every
    from yiwang.jobs.schedule import job_states

    states = job_states(_kernel())
    if not states:
        click.echo("没有声明任何定时任务。")
    for st in states:
        running = f"  运行中（{st.lease_owner}）" if st.running() else ""
        click.echo(
            f"{st.job.name}  {st.job.title}  {describe_every(st.job.every)}  "
            f"下次 {when(st.next_run_at)}  上次 {when(st.last_finished_at)} {st.outcome}  "
            f"共 {st.runs} 次（失败 {st.failures}）{running}"
        )


@jobs_group.command("run")
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="不论是否到期，立即运行（任务的周期不变）。")
def jobs_run(name: str | None, force: bool) -> None:
    """运行到期的定时任务一次；给出 NAME 时只运行该任务。有任务失败时退出码非零。"""
    from yiwang.admin.common import when
    from yiwang.audit.cli import cli_actor
    from yiwang.audit.records import record_now
    from yiwang.jobs.declarations import declared_jobs
    from yiwang.jobs.schedule import JobRun, job_states, new_owner, run_due, run_job

    kernel = _kernel()
    owner = new_owner("cli")
    runs: list[JobRun] = []
    if name is None and not force:
        runs = run_due(kernel, owner=owner)
    else:
        for job in [name] if name else list(declared_jobs(kernel)):
            run = run_job(kernel, job, owner=owner, force=force)
            if run is None:
                nxt = next(s.next_run_at for s in job_states(kernel) if s.job.name == job)
                click.echo(f"{job} 未到期（下次运行 {when(nxt)}），如需立即运行请加 --force")
                continue
            runs.append(run)
            record_now(
                kernel.db, "jobs.run", actor=cli_actor(), object_type="job", object_id=job,
                result="ok" if run.ok else "failed", detail={"result": run.result, "error": run.error},
            )  # fmt: skip
    if not runs and name is None:
        click.echo("没有到期的定时任务。")
    for run in runs:
        click.echo(run.describe())
    failed = [r.name for r in runs if not r.ok]
    if failed:
        raise YiwangError(f"{len(failed)} 个定时任务运行失败: {', '.join(failed)}")


@jobs_group.command("loop")
@click.option("--tick", "tick", type=click.FloatRange(min=0.01), default=None, metavar="SECONDS",
              help="多久检查一次到期任务（默认取配置 jobs.tick_seconds）。")  # fmt: skip
def jobs_loop(tick: float | None) -> None:
    """在前台持续运行定时任务（供 jobs.run_in_app = false 时作为独立进程，如 systemd 服务）。

    收到 SIGTERM 或 Ctrl+C 时，等当前任务结束后退出。
    """
    from yiwang.jobs.runner import JobRunner

    runner = JobRunner(_kernel(), tick_seconds=tick, on_run=lambda r: click.echo(r.describe()))
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: runner.request_stop())
    click.echo(
        f"定时任务执行器已启动（{runner.owner}，每 {runner.tick_seconds:g} 秒检查；Ctrl+C 停止）"
    )
    runner.run_forever()
    click.echo("定时任务执行器已停止")
