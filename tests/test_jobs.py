"""Periodic jobs: declared through ``yiwang_jobs``, each run once per period on the whole
deployment however many workers tick, once after downtime, taken over from a crashed worker,
failures recorded without stopping the others; the kernel's audit checkpoint job; the runner in
the app and in ``yiwang jobs loop``; the jobs page and CLI."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from yiwang import audit
from yiwang.api import Job, PluginSpec, hookimpl
from yiwang.audit.models import AuditCheckpoint
from yiwang.cli.main import Context, cli
from yiwang.errors import PluginError, YiwangError
from yiwang.jobs import JobRun, JobRunner, declared_jobs, job_states, run_due, run_job
from yiwang.jobs.models import KernelJob

JOB = KernelJob.__table__  # type: ignore[attr-defined]
#: A scheduled "now" on a whole minute, so periods are easy to read.
T0 = datetime.now(UTC).replace(second=0, microsecond=0)
MINUTE = timedelta(minutes=1)

#: ``(job name, scheduled now, thread name)`` of every run of the test plugins' jobs.
CALLS: list[tuple[str, datetime, str]] = []
BROKEN = {"fails": True}


def _called(name: str) -> Callable[[Any, datetime], None]:
    def note(kernel: Any, now: datetime) -> None:
        CALLS.append((name, now, threading.current_thread().name))

    return note


def _fast(kernel: Any, now: datetime) -> int:
    _called("tick.fast")(kernel, now)
    time.sleep(0.02)  # long enough for the other worker to try while this one runs
    return 2


def _slow(kernel: Any, now: datetime) -> str:
    _called("tick.slow")(kernel, now)
    return "not a count"


def _broken(kernel: Any, now: datetime) -> int:
    _called("tick.broken")(kernel, now)
    if BROKEN["fails"]:
        raise RuntimeError("磁盘已满，写入失败")
    return 0


def _spec(name: str, jobs: Callable[[], list[Job]]) -> PluginSpec:
    hooks = types.SimpleNamespace()

    @hookimpl
    def yiwang_jobs() -> list[Job]:
        return jobs()

    hooks.yiwang_jobs = yiwang_jobs
    return PluginSpec(name=name, version="1.0", title=f"测试插件 {name}", api=">=1.0,<2", hooks=hooks)


TICK = _spec("tick", lambda: [
    Job("tick.fast", "每分钟任务", every=MINUTE, run=_fast),
    Job("tick.slow", "每十分钟任务", every=10 * MINUTE, run=_slow),
    Job("tick.broken", "会失败的任务", every=MINUTE, run=_broken),
])  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_calls() -> Iterator[None]:
    CALLS.clear()
    BROKEN["fails"] = True
    yield
    CALLS.clear()


def ran(runs: list[JobRun]) -> list[str]:
    return sorted(r.name for r in runs)


def mine(runs: list[JobRun], prefix: str = "tick.") -> list[str]:
    """The runs of the test's own jobs (the kernel declares jobs of its own as well)."""
    return [name for name in ran(runs) if name.startswith(prefix)]


def states(kernel: Any) -> dict[str, Any]:
    return {s.job.name: s for s in job_states(kernel)}


def calls_of(name: str) -> list[datetime]:
    return [now for n, now, _ in CALLS if n == name]


def in_threads(*workers: Callable[[], list[JobRun]]) -> list[JobRun]:
    """Run the workers at the same moment, each in its own thread; all their runs."""
    start = threading.Barrier(len(workers))
    results: list[list[JobRun]] = [[] for _ in workers]
    errors: list[BaseException] = []

    def go(i: int) -> None:
        try:
            start.wait()
            results[i] = workers[i]()
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,), name=f"worker-{i}") for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return [run for runs in results for run in runs]


# --- once per period, whatever the number of workers -------------------------------------------------


@pytest.mark.with_plugins(TICK)
def test_two_workers_run_each_due_job_exactly_once_per_period(kernel: Any) -> None:
    for step in range(6):
        now = T0 + step * MINUTE
        # Two workers tick in the same period, one of them two seconds later.
        runs = in_threads(
            lambda now=now: run_due(kernel, owner="worker-a", now=now),
            lambda now=now: run_due(kernel, owner="worker-b", now=now + timedelta(seconds=2)),
        )
        names = [r.name for r in runs if r.name.startswith("tick.")]
        assert names.count("tick.fast") == 1, step
        assert names.count("tick.broken") == 1, step
        assert names.count("tick.slow") == (1 if step == 0 else 0), step
    assert len(calls_of("tick.fast")) == 6 and len(calls_of("tick.slow")) == 1
    # Each run was given the scheduled time of the worker that claimed it.
    assert all(now - T0 in (k * MINUTE, k * MINUTE + timedelta(seconds=2)) for k, now in enumerate(calls_of("tick.fast")))
    fast = states(kernel)["tick.fast"]
    assert (fast.runs, fast.failures, fast.last_ok, fast.last_result) == (6, 0, True, 2)
    # The cadence starts when the first worker saw the job (T0 or T0 + 2 s) and keeps to it.
    assert fast.next_run_at in (T0 + 6 * MINUTE, T0 + 6 * MINUTE + timedelta(seconds=2))
    assert fast.lease_owner is None and fast.lease_until is None


@pytest.mark.with_plugins(TICK)
def test_a_job_not_yet_due_does_not_run(kernel: Any) -> None:
    first = run_due(kernel, owner="a", now=T0)
    assert {"tick.fast", "tick.slow", "tick.broken"} <= set(ran(first))  # new jobs are due at once
    assert mine(run_due(kernel, owner="b", now=T0 + timedelta(seconds=59))) == []
    assert mine(run_due(kernel, owner="b", now=T0 + MINUTE)) == ["tick.broken", "tick.fast"]
    assert states(kernel)["tick.slow"].next_run_at == T0 + 10 * MINUTE
    assert len(calls_of("tick.slow")) == 1


@pytest.mark.with_plugins(TICK)
def test_after_downtime_a_job_runs_once_and_keeps_its_rhythm(kernel: Any) -> None:
    run_due(kernel, owner="a", now=T0)
    back = T0 + 3 * 10 * MINUTE + timedelta(seconds=20)  # three periods of tick.slow missed
    runs = run_due(kernel, owner="a", now=back)
    assert ran(runs).count("tick.slow") == 1 and ran(runs).count("tick.fast") == 1
    slow = states(kernel)["tick.slow"]
    assert slow.next_run_at == T0 + 40 * MINUTE and slow.next_run_at > back
    assert states(kernel)["tick.fast"].next_run_at == T0 + 31 * MINUTE
    assert mine(run_due(kernel, owner="b", now=back + timedelta(seconds=5))) == []
    assert calls_of("tick.slow") == [T0, back]


@pytest.mark.with_plugins(TICK)
def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(kernel: Any) -> None:
    run_due(kernel, owner="a", now=T0)
    t1 = T0 + MINUTE
    # A worker claimed tick.fast at t1 and died: its lease (300 s by default) stays behind.
    with kernel.db.write() as s:
        s.execute(update(JOB).where(JOB.c.name == "tick.fast")
                  .values(lease_owner="dead-host-1-abc", lease_until=t1 + timedelta(seconds=300)))  # fmt: skip
    assert states(kernel)["tick.fast"].running(t1)
    assert mine(run_due(kernel, owner="b", now=t1)) == ["tick.broken"]
    assert "tick.fast" not in ran(run_due(kernel, owner="b", now=t1 + timedelta(seconds=299)))
    with pytest.raises(YiwangError, match="正在由 dead-host-1-abc 运行"):
        run_job(kernel, "tick.fast", owner="b", now=t1 + timedelta(seconds=299), force=True)
    taken = run_due(kernel, owner="b", now=t1 + timedelta(seconds=301))
    assert "tick.fast" in ran(taken)
    fast = states(kernel)["tick.fast"]
    assert fast.lease_owner is None and fast.lease_until is None and fast.runs == 2
    assert fast.next_run_at == T0 + 7 * MINUTE


def _thief(kernel: Any, now: datetime) -> int:
    """Overruns its lease: meanwhile another worker takes the job over."""
    with kernel.db.write() as s:
        s.execute(update(JOB).where(JOB.c.name == "late.job")
                  .values(lease_owner="other-worker", lease_until=now + timedelta(hours=1)))  # fmt: skip
    return 1


@pytest.mark.with_plugins(_spec("late", lambda: [Job("late.job", "超时任务", every=MINUTE, run=_thief)]))
def test_a_run_that_lost_its_lease_does_not_overwrite_the_new_owner(kernel: Any) -> None:
    (run,) = [r for r in run_due(kernel, owner="slow-worker", now=T0) if r.name == "late.job"]
    assert run.ok and run.lease_lost and "租约已过期" in run.describe()
    row = states(kernel)["late.job"]
    assert row.lease_owner == "other-worker" and row.runs == 0 and row.next_run_at == T0


@pytest.mark.with_plugins(TICK)
def test_a_failing_job_records_its_error_and_the_others_still_run(
    kernel: Any, caplog: pytest.LogCaptureFixture
) -> None:
    runs = {r.name: r for r in run_due(kernel, owner="a", now=T0)}
    assert not runs["tick.broken"].ok
    assert runs["tick.broken"].error == "RuntimeError: 磁盘已满，写入失败"
    assert "失败：RuntimeError: 磁盘已满" in runs["tick.broken"].describe()
    assert runs["tick.fast"].ok and runs["tick.slow"].ok and runs["tick.slow"].result is None
    logged = [r for r in caplog.records if r.name == "yiwang.jobs" and r.levelno >= logging.ERROR]
    assert len(logged) == 1 and "tick.broken" in logged[0].getMessage() and logged[0].exc_info
    broken = states(kernel)["tick.broken"]
    assert (broken.last_ok, broken.failures, broken.runs, broken.last_result) == (False, 1, 1, None)
    assert broken.last_error == "RuntimeError: 磁盘已满，写入失败"
    assert broken.next_run_at == T0 + MINUTE  # a failure keeps the schedule: retried next period
    run_due(kernel, owner="a", now=T0 + MINUTE)
    BROKEN["fails"] = False
    run_due(kernel, owner="a", now=T0 + 2 * MINUTE)
    broken = states(kernel)["tick.broken"]
    assert (broken.last_ok, broken.failures, broken.runs, broken.last_error, broken.last_result) == (
        True, 2, 3, "", 0,
    )  # fmt: skip
    assert len(calls_of("tick.fast")) == 3


# --- declaring jobs -------------------------------------------------------------------------------------


@pytest.mark.with_plugins(TICK)
def test_jobs_declared_through_the_hook_are_tagged_and_run(kernel: Any) -> None:
    declared = declared_jobs(kernel)
    assert list(declared)[:1] == ["audit.checkpoint"]  # the kernel's own, then the plugins'
    assert declared["tick.fast"].plugin == "tick" and declared["audit.checkpoint"].plugin == "yiwang"
    assert declared["tick.fast"].lease == timedelta(seconds=kernel.settings.jobs.lease_seconds)
    assert mine(run_due(kernel, owner="a", now=T0)) == ["tick.broken", "tick.fast", "tick.slow"]
    assert len(calls_of("tick.fast")) == 1


def _bad(message: str, jobs: Callable[[], list[Job]]) -> Any:
    return pytest.param(message, marks=pytest.mark.with_plugins(_spec("bad", jobs)), id=message)


@pytest.mark.parametrize(
    "message",
    [
        _bad("应以 bad. 开头", lambda: [Job("tick.stolen", "冒名", every=MINUTE, run=_fast)]),
        _bad("被重复声明", lambda: [Job("bad.a", "一", every=MINUTE, run=_fast),
                                     Job("bad.a", "二", every=MINUTE, run=_fast)]),
        _bad("至少为 1 秒", lambda: [Job("bad.hasty", "太快", every=timedelta(milliseconds=10), run=_fast)]),
        _bad("租约", lambda: [Job("bad.lease", "无租约", every=MINUTE, run=_fast, lease=timedelta(0))]),
    ],
)  # fmt: skip
def test_bad_declarations_stop_the_runner_with_a_clear_message(kernel: Any, message: str) -> None:
    with pytest.raises(PluginError, match=message):
        JobRunner(kernel)
    with pytest.raises(PluginError, match=message):
        run_due(kernel, owner="a")


# --- the kernel's audit checkpoint job ------------------------------------------------------------------


def _checkpoints(kernel: Any) -> int:
    with kernel.db.read() as s:
        return int(s.execute(select(func.count()).select_from(AuditCheckpoint)).scalar_one())


def checkpoint_runs(kernel: Any, now: datetime) -> list[JobRun]:
    return [r for r in run_due(kernel, owner="a", now=now) if r.name == "audit.checkpoint"]


def test_the_audit_checkpoint_job_signs_a_checkpoint_when_one_is_due(kernel: Any, settings: Any) -> None:
    assert [r.result for r in checkpoint_runs(kernel, T0)] == [0]  # an empty trail: nothing to sign
    audit.record_now(kernel.db, "test.act", actor=audit.Actor.system("test"))
    assert checkpoint_runs(kernel, T0 + 4 * MINUTE) == []  # every 5 minutes
    (run,) = checkpoint_runs(kernel, T0 + 5 * MINUTE)
    assert (run.ok, run.result) == (True, 1)
    assert _checkpoints(kernel) == 1
    assert len(settings.audit_checkpoint_log.read_text().splitlines()) == 1
    (again,) = checkpoint_runs(kernel, T0 + 10 * MINUTE)
    assert again.result == 0 and _checkpoints(kernel) == 1  # no new record since


# --- the runner -----------------------------------------------------------------------------------------


@pytest.mark.with_plugins(TICK)
def test_the_app_runs_jobs_in_the_background_only_when_configured(
    settings: Any, yiwang_db: Any, app: Any, client: Any
) -> None:
    from yiwang.app import create_app
    from yiwang.kernel import Kernel

    assert app.state.job_runner is None  # the testing kit's default: jobs.run_in_app = false
    assert CALLS == []
    on = replace(settings, jobs=replace(settings.jobs, run_in_app=True, tick_seconds=0.05))
    in_app = create_app(on, kernel=Kernel(on, db=yiwang_db, extra_plugins=[TICK]))
    with TestClient(in_app):
        runner = in_app.state.job_runner
        deadline = time.monotonic() + 20
        while not calls_of("tick.fast") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner.alive and runner.owner.count("-") >= 2  # host-pid-random
        assert calls_of("tick.fast") and CALLS[0][2].startswith("yiwang-jobs-")
    assert not runner.alive  # stopped and joined at shutdown
    assert states(in_app.state.kernel)["tick.fast"].lease_owner is None


@pytest.mark.sqlite_only
@pytest.mark.with_plugins(TICK)
def test_a_runner_tick_survives_an_unreachable_database(
    settings: Any, yiwang_db: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from yiwang.kernel import Kernel

    caplog.set_level(logging.INFO, "yiwang.jobs")
    gone = replace(settings, database_url=f"sqlite:///{tmp_path / 'no-such-dir' / 'y.db'}")
    kernel = Kernel(gone, extra_plugins=[TICK])
    unreachable = kernel.db
    runner = JobRunner(kernel, owner="w")
    try:
        assert runner.tick() == [] and runner.tick() == []
        failures = [r for r in caplog.records if "定时任务检查失败" in r.getMessage()]
        assert len(failures) == 1 and failures[0].exc_info  # logged once until it recovers
        kernel.db = yiwang_db  # the database is back
        assert "tick.fast" in ran(runner.tick())
        assert any("定时任务检查已恢复" in r.getMessage() for r in caplog.records)
    finally:
        unreachable.dispose()


def _site(settings: Any, yiwang_db: Any) -> dict[str, str]:
    """A site file for a separate ``yiwang`` process on the test database."""
    from yiwang.plugins.loader import discover

    url = yiwang_db.url.render_as_string(hide_password=False)
    # The test schema holds every installed plugin's tables, so the process enables them all.
    installed = sorted(n for n, c in discover().items() if c.spec is not None and not c.errors)
    (settings.home / "site.toml").write_text(
        f'[security]\nsecret_key = "{settings.secret_key}"\n\n[database]\nurl = "{url}"\n\n'
        f"[plugins]\nenabled = {json.dumps(installed)}\n\n[jobs]\ntick_seconds = 0.1\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIWANG_") or k.startswith("YIWANG_TEST")}
    return {**env, "YIWANG_HOME": str(settings.home)}


def test_jobs_loop_runs_in_the_foreground_until_sigterm(kernel: Any, settings: Any, yiwang_db: Any) -> None:
    audit.record_now(kernel.db, "test.act", actor=audit.Actor.system("test"))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from yiwang.cli.main import main; main(['jobs', 'loop'])"],
        env=_site(settings, yiwang_db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if states(kernel)["audit.checkpoint"].runs:
                break
            time.sleep(0.1)
        assert states(kernel)["audit.checkpoint"].runs == 1, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "定时任务执行器已启动" in out and "每 0.1 秒检查" in out
    assert "audit.checkpoint（审计签名检查点）处理 1 项" in out
    assert out.rstrip().endswith("定时任务执行器已停止")
    assert _checkpoints(kernel) == 1


# --- CLI ------------------------------------------------------------------------------------------------


@pytest.fixture
def invoke(kernel: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    obj = Context()
    obj.__dict__["kernel"] = kernel
    # The test database carries every installed plugin's migrations, this kernel only its own.
    monkeypatch.setattr("yiwang.cli.main._ready", lambda kernel: None)

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["jobs", *args], obj=obj)

    return run


@pytest.mark.with_plugins(TICK)
def test_jobs_cli_lists_runs_due_jobs_and_forces_one(invoke: Any, kernel: Any) -> None:
    listed = invoke("list")
    assert listed.exit_code == 0, listed.output
    assert "tick.slow  每十分钟任务  每 10 分钟  下次 —  上次 — 尚未运行" in listed.output
    assert "audit.checkpoint  审计签名检查点  每 5 分钟" in listed.output
    first = invoke("run")
    assert first.exit_code == 1 and isinstance(first.exception, YiwangError)
    assert "1 个定时任务运行失败: tick.broken" in str(first.exception)
    assert "tick.fast（每分钟任务）处理 2 项" in first.output
    assert "tick.broken（会失败的任务）失败：RuntimeError: 磁盘已满" in first.output
    again = invoke("run")
    assert again.exit_code == 0 and "没有到期的定时任务。" in again.output
    not_due = invoke("run", "tick.slow")
    assert not_due.exit_code == 0 and "tick.slow 未到期" in not_due.output and "--force" in not_due.output
    forced = invoke("run", "tick.slow", "--force")
    assert forced.exit_code == 0 and "tick.slow（每十分钟任务）完成" in forced.output
    assert len(calls_of("tick.slow")) == 2
    listed = invoke("list")
    assert "tick.slow  每十分钟任务  每 10 分钟" in listed.output and "成功  共 2 次（失败 0）" in listed.output
    assert "失败：RuntimeError: 磁盘已满，写入失败  共 1 次（失败 1）" in listed.output
    with kernel.db.read() as s:
        (entry,) = audit.search(s, action="jobs.run")
    assert (entry.object_id, entry.result, entry.username.startswith("cli:")) == ("tick.slow", "ok", True)
    unknown = invoke("run", "tick.nope")
    assert unknown.exit_code != 0 and "没有名为 tick.nope 的定时任务" in str(unknown.exception)


# --- the jobs page --------------------------------------------------------------------------------------


@pytest.mark.with_plugins(TICK)
def test_jobs_page_lists_jobs_and_runs_one_now_audited(client: Any, login: Any, users: Any, kernel: Any) -> None:
    login("system_admin", "45")
    page = client.get("/admin/jobs")
    assert page.status_code == 200
    assert "定时任务" in page.text and "审计签名检查点" in page.text and "每 10 分钟" in page.text
    jobs = len(declared_jobs(kernel))
    assert jobs >= 4 and page.text.count("尚未运行") == jobs and page.text.count("立即运行") == jobs
    assert 'href="/admin/jobs"' in client.get("/grid/").text  # the menu item under 系统管理
    token = users.csrf(client, "/admin/jobs")
    done = client.post("/admin/jobs/tick.slow/run", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith("/admin/jobs?ran=tick.slow")
    after = client.get(done.headers["location"])
    assert "已运行「每十分钟任务」：成功" in after.text
    failed = client.post("/admin/jobs/tick.broken/run", data={"csrf_token": token}, follow_redirects=True)
    assert "已运行「会失败的任务」：失败：RuntimeError: 磁盘已满，写入失败" in failed.text
    with kernel.db.read() as s:
        entries = {e.object_id: e for e in audit.search(s, action="jobs.run")}
    assert entries["tick.slow"].result == "ok" and entries["tick.broken"].result == "failed"
    assert "磁盘已满" in entries["tick.broken"].detail
    missing = client.post("/admin/jobs/tick.nope/run", data={"csrf_token": token})
    assert missing.status_code == 404


@pytest.mark.with_plugins(TICK)
def test_a_job_running_elsewhere_cannot_be_started_from_the_page(client: Any, login: Any, users: Any, kernel: Any) -> None:
    login("system_admin", "45")
    run_due(kernel, owner="a")
    with kernel.db.write() as s:
        s.execute(update(JOB).where(JOB.c.name == "tick.fast").values(
            lease_owner="host-7-abc", lease_until=datetime.now(UTC) + timedelta(minutes=5)))  # fmt: skip
    page = client.get("/admin/jobs")
    assert "运行中" in page.text and "host-7-abc" in page.text
    assert page.text.count("立即运行") == len(declared_jobs(kernel)) - 1
    token = users.csrf(client, "/admin/jobs")
    busy = client.post("/admin/jobs/tick.fast/run", data={"csrf_token": token})
    assert busy.status_code == 409 and "正在由 host-7-abc 运行，请稍后再试" in busy.text


@pytest.mark.parametrize(("role", "node"), [("county_staff", "45"), ("audit_admin", "45"), ("system_admin", "450107")])
def test_jobs_page_needs_jobs_manage_over_the_whole_net(
    client: Any, login: Any, users: Any, grid: Any, role: str, node: str
) -> None:
    grid.node("450107")
    login(role, node)
    assert client.get("/admin/jobs").status_code == 403
    token = users.csrf(client, "/grid/")
    refused = client.post("/admin/jobs/audit.checkpoint/run", data={"csrf_token": token})
    assert refused.status_code == 403
    assert states(users.kernel)["audit.checkpoint"].runs == 0


def test_run_job_keeps_the_schedule_of_a_forced_run(kernel: Any) -> None:
    run_due(kernel, owner="a", now=T0)
    forced = run_job(kernel, "audit.checkpoint", owner="a", now=T0 + MINUTE, force=True)
    assert forced is not None and forced.next_run_at == T0 + 5 * MINUTE
    assert run_job(kernel, "audit.checkpoint", owner="a", now=T0 + 2 * MINUTE) is None


def test_settings_of_jobs_are_checked(tmp_path: Path) -> None:
    from yiwang.errors import SettingsError
    from yiwang.settings import load_settings

    defaults = load_settings({"YIWANG_HOME": str(tmp_path)})
    assert (defaults.jobs.run_in_app, defaults.jobs.tick_seconds, defaults.jobs.lease_seconds) == (True, 5.0, 300)
    with pytest.raises(SettingsError, match="jobs.tick_seconds"):
        load_settings({"YIWANG_HOME": str(tmp_path), "YIWANG_JOBS__TICK_SECONDS": "0"})
    off = load_settings({"YIWANG_HOME": str(tmp_path), "YIWANG_JOBS__RUN_IN_APP": "false"})
    assert off.jobs.run_in_app is False
