"""Jobs: work a plugin (or the kernel) wants done periodically (declared with ``yiwang_jobs``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from yiwang.errors import PluginError

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

#: What a job runs: ``run(kernel, now)``, ``now`` being the scheduled time of this run (UTC);
#: returns how many things it did (for the log and the jobs page), or None.
JobFunction = Callable[["Kernel", datetime], "int | None"]

#: Longest job name (the ``kernel_job.name`` column).
NAME_LENGTH = 80


@dataclass(frozen=True)
class Job:
    """A periodic job (定时任务).

    Parameters
    ----------
    name: ``<plugin>.<thing>``, e.g. ``cases.clock`` (the prefix is checked at start-up).
    title: Chinese name shown on the jobs page, e.g. ``"督办计时"``.
    every: the period. A job runs at most once per period on the whole deployment, whatever the
        number of workers; after downtime it runs once, not once per missed period, so write it
        to catch up by itself ("every case past its deadline", not "cases that fell due in the
        last minute").
    run: ``run(kernel, now) -> int | None``; ``now`` is the scheduled time (UTC). Do the work in
        your own units of work (``kernel.db.write()``); raise to report failure.
    lease: how long one run may take; a worker that holds a job longer is presumed dead and
        another takes the job over. None: ``jobs.lease_seconds``.
    plugin: set by the kernel to the declaring plugin's name.
    """

    name: str
    title: str
    every: timedelta
    run: JobFunction
    lease: timedelta | None = None
    plugin: str = ""


def declared_jobs(kernel: Kernel) -> dict[str, Job]:
    """Every declared job by name, tagged with its plugin and with its lease filled in; raises
    PluginError for a name without its plugin's prefix, a duplicate, or a bad period or lease."""
    default_lease = timedelta(seconds=kernel.settings.jobs.lease_seconds)
    out: dict[str, Job] = {}
    for plugin, job in kernel.host.collect_items("yiwang_jobs"):
        if plugin != "yiwang" and not job.name.startswith(f"{plugin}."):
            raise PluginError(f"插件 {plugin} 声明的定时任务 {job.name} 应以 {plugin}. 开头")
        if job.name in out:
            raise PluginError(f"定时任务 {job.name} 被重复声明")
        if not job.name or len(job.name) > NAME_LENGTH:
            raise PluginError(f"定时任务名称应为 1–{NAME_LENGTH} 个字符: {job.name!r}")
        if not isinstance(job.every, timedelta) or job.every < timedelta(seconds=1):
            raise PluginError(f"定时任务 {job.name} 的周期 every 应至少为 1 秒")
        lease = job.lease if job.lease is not None else default_lease
        if not isinstance(lease, timedelta) or lease < timedelta(seconds=1):
            raise PluginError(f"定时任务 {job.name} 的租约 lease 应至少为 1 秒")
        if not callable(job.run):
            raise PluginError(f"定时任务 {job.name} 的 run 不可调用")
        out[job.name] = Job(job.name, job.title, job.every, job.run, lease, plugin)
    return out


def describe_every(every: timedelta) -> str:
    """The period in Chinese: ``每 5 分钟``, ``每 1 天``, ``每 90 秒``."""
    seconds = int(every.total_seconds())
    for unit, size in (("天", 86400), ("小时", 3600), ("分钟", 60)):
        if seconds % size == 0:
            return f"每 {seconds // size} {unit}"
    return f"每 {seconds} 秒"
