"""JobRunner: calls ``run_due`` every ``jobs.tick_seconds`` — in a daemon thread of each app
worker (``jobs.run_in_app``), or in the foreground (``yiwang jobs loop``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from yiwang.jobs.declarations import declared_jobs
from yiwang.jobs.schedule import JobRun, new_owner, run_due

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

logger = logging.getLogger("yiwang.jobs")


class JobRunner:
    """Runs due jobs on a tick until stopped.

    Parameters
    ----------
    kernel: the deployment's kernel; its job declarations are checked here (PluginError).
    tick_seconds: how often to look for due jobs; default ``jobs.tick_seconds``.
    owner: the worker id written into leases; default a new ``host-pid-random``.
    on_run: called with each run this worker made (the CLI prints them).
    """

    def __init__(
        self,
        kernel: Kernel,
        *,
        tick_seconds: float | None = None,
        owner: str | None = None,
        on_run: Callable[[JobRun], None] | None = None,
    ) -> None:
        declared_jobs(kernel)
        self.kernel = kernel
        self.tick_seconds = kernel.settings.jobs.tick_seconds if tick_seconds is None else tick_seconds
        self.owner = owner or new_owner()
        self.on_run = on_run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = ""

    @property
    def alive(self) -> bool:
        """The background thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def tick(self) -> list[JobRun]:
        """Look for due jobs once and run them. Never raises: a failure to reach the database
        is logged (once until it recovers) and retried on the next tick."""
        try:
            runs = run_due(self.kernel, owner=self.owner)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            if message != self._failing:
                logger.exception("定时任务检查失败，将在下一周期重试")
            self._failing = message
            return []
        if self._failing:
            logger.info("定时任务检查已恢复")
            self._failing = ""
        for run in runs:
            if self.on_run is not None:
                self.on_run(run)
        return runs

    def run_forever(self) -> None:
        """Tick until ``request_stop`` (the current job is finished first)."""
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.tick_seconds)

    def request_stop(self) -> None:
        """Ask the loop to end after the job it is running (safe from a signal handler)."""
        self._stop.set()

    def start(self) -> None:
        """Run ``run_forever`` in a daemon thread."""
        if self.alive:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run_forever, name=f"yiwang-jobs-{self.owner}", daemon=True
        )
        self._thread.start()
        logger.info("定时任务执行器已启动（%s，每 %s 秒检查）", self.owner, self.tick_seconds)

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop the thread and wait for it (and the job it is running); True when it ended.

        A job still running after ``timeout`` keeps its lease until it expires, when another
        worker may take the job over.
        """
        self.request_stop()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("定时任务执行器 %s 未在 %s 秒内结束", self.owner, timeout)
            return False
        self._thread = None
        return True


def start_in_app(kernel: Kernel) -> JobRunner | None:
    """The app's runner, started — or None when ``jobs.run_in_app`` is off."""
    if not kernel.settings.jobs.run_in_app:
        return None
    runner = JobRunner(kernel)
    runner.start()
    return runner
