"""``yiwang audit …``: verify, checkpoint, purge, export — and helpers other commands use to
record what they change (``cli_actor``, ``failure_recorded``, ``auto_checkpoint``)."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from yiwang.audit.records import Actor
from yiwang.errors import AuditTampered, ValidationError, YiwangError

_DATE = click.DateTime(formats=["%Y-%m-%d"])


def cli_actor() -> Actor:
    """The operator at the command line: ``cli:<OS user>`` with the system role."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError, ImportError):
        who = "?"
    return Actor.system(f"cli:{who}")


@contextmanager
def failure_recorded(kernel: Any, action: str, **kwargs: Any) -> Iterator[None]:
    """Record ``action`` as failed (in its own transaction) when the block raises a YiwangError."""
    from yiwang.audit.records import record_now

    try:
        yield
    except YiwangError as exc:
        detail = {**kwargs.pop("detail", {}), "error": str(exc)[:500]}
        record_now(kernel.db, action, actor=cli_actor(), result="failed", detail=detail, **kwargs)
        raise


def auto_checkpoint(kernel: Any) -> None:
    """Sign a checkpoint if ``audit.checkpoint_every`` records came since the last one; a
    failure (e.g. no key here) is reported, not fatal — the work is already committed."""
    from yiwang.audit.checkpoints import maybe_checkpoint

    try:
        maybe_checkpoint(kernel.db, kernel.settings)
    except YiwangError as exc:
        click.echo(f"警告: 未能写入审计检查点: {exc}", err=True)


def _kernel() -> Any:
    from yiwang.cli.main import Context, _ready

    kernel = click.get_current_context().ensure_object(Context).kernel
    _ready(kernel)
    return kernel


def _utc(day: datetime | None) -> datetime | None:
    """A date given on the command line, as UTC midnight."""
    return day.replace(tzinfo=UTC) if day is not None else None


@click.group("audit")
def audit_group() -> None:
    """审计日志（全程留痕）：校验、签名检查点、清理、导出。"""


@audit_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出校验结果。")
def audit_verify(as_json: bool) -> None:
    """校验整条审计链。完好时退出码 0；被篡改时退出码 7，并指出第一条断裂的记录及原因。"""
    from yiwang.audit.integrity import verify

    kernel = _kernel()
    report = verify(kernel.db, kernel.settings)
    if as_json:
        click.echo(json.dumps(asdict(report), ensure_ascii=False, indent=2))
    for notice in report.notices if not as_json else ():
        click.echo(f"提示: {notice}")
    if report.ok:
        if not as_json:
            click.echo(report.reason)
        return
    if not as_json:
        click.echo(f"已校验 {report.checked} 条记录，发现 {len(report.problems)} 处问题:")
        for problem in report.problems[:50]:
            click.echo(f"  - {problem}")
    where = f"第一条断裂的记录为 #{report.first_broken_id}：" if report.first_broken_id else ""
    raise AuditTampered(f"审计链被篡改，{where}{report.reason}")


@audit_group.command("checkpoint")
@click.option("--if-due", is_flag=True,
              help="仅当距上次检查点已有 audit.checkpoint_every 条新记录时写入（供定时任务每分钟运行）。")
@click.option("--max-age", "max_age", type=click.IntRange(min=1), default=None, metavar="MINUTES",
              help="与 --if-due 一起使用：上次检查点已超过这么多分钟且有新记录时也写入。")
def audit_checkpoint(if_due: bool, max_age: int | None) -> None:
    """用审计签名密钥签署当前链尾，存入数据库并追加到外部检查点日志。"""
    from yiwang.audit.checkpoints import checkpoint

    if max_age is not None and not if_due:
        raise ValidationError("--max-age 只能与 --if-due 一起使用")
    kernel = _kernel()
    cp = checkpoint(
        kernel.db, kernel.settings, kind="auto" if if_due else "manual", if_due=if_due,
        max_age=timedelta(minutes=max_age) if max_age else None,
    )  # fmt: skip
    if cp is None:
        click.echo(f"距上次检查点不足 {kernel.settings.audit_checkpoint_every} 条新记录，未写入")
        return
    click.echo(
        f"已写入检查点 #{cp.seq}：记录 #{cp.first_id}–#{cp.last_id}（{cp.count} 条），"
        f"日志 {kernel.settings.audit_checkpoint_log}"
    )


@audit_group.command("purge")
@click.option("--before", type=_DATE, required=True, help="删除该日期（UTC 零点）之前的记录，格式 YYYY-MM-DD。")
@click.option("--yes", is_flag=True, help="不再确认。")
def audit_purge(before: datetime, yes: bool) -> None:
    """清理保留期以外的旧审计记录；早于保留期下限（audit.retention_days）的日期会被拒绝。"""
    from yiwang.audit.retention import check_before, purge

    kernel = _kernel()
    cutoff = check_before(kernel.settings, before)
    if not yes:
        click.confirm(f"将永久删除 {cutoff:%Y-%m-%d} (UTC) 之前的审计记录，确定吗？", abort=True)
    result = purge(kernel.db, kernel.settings, cutoff, cli_actor())
    if result.checkpoint is None and not result.deleted:
        click.echo(f"没有 {cutoff:%Y-%m-%d} 之前的审计记录需要清理")
        return
    signed = f"，清理检查点 #{result.checkpoint.seq} 已签名" if result.checkpoint else ""
    click.echo(f"已清理 {result.deleted} 条审计记录（至 #{result.boundary_id}）{signed}")


@audit_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--since", type=_DATE, default=None, help="起始日期（含，UTC），YYYY-MM-DD。")
@click.option("--until", type=_DATE, default=None, help="截止日期（不含，UTC），YYYY-MM-DD。")
@click.option("--action", default=None, help="操作，如 grid.move；grid.* 表示一类操作。")
@click.option("--user", default=None, help="用户名。")
@click.option("--result", type=click.Choice(["ok", "denied", "failed"]), default=None, help="结果。")
def audit_export(
    file: Path, since: datetime | None, until: datetime | None, action: str | None,
    user: str | None, result: str | None,
) -> None:  # fmt: skip
    """把审计记录导出为 CSV（UTF-8 带 BOM，含哈希，可对照审计链）。导出本身也会被记录。"""
    from yiwang.audit.query import export_csv
    from yiwang.audit.records import record_now

    if not file.parent.is_dir():
        raise ValidationError(f"目录不存在: {file.parent}")
    kernel = _kernel()
    filters = {"since": _utc(since), "until": _utc(until), "action": action, "user": user, "result": result}
    tmp = file.with_name(file.name + ".part")
    try:
        with kernel.db.read() as s, tmp.open("w", encoding="utf-8-sig", newline="") as out:
            n = export_csv(s, out, **filters)
        tmp.replace(file)
    finally:
        tmp.unlink(missing_ok=True)
    shown = {k: (v.date().isoformat() if isinstance(v, datetime) else v) for k, v in filters.items() if v}
    record_now(
        kernel.db, "audit.export", actor=cli_actor(), object_type="audit_event",
        detail={"file": file.name, "rows": n, "filters": shown},
    )  # fmt: skip
    click.echo(f"已导出 {n} 条审计记录到 {file}")
