"""``yiwang files …``: collect unreferenced blobs, verify the store against the rows."""

from __future__ import annotations

from typing import Any

import click

from yiwang.errors import ValidationError


def _kernel() -> Any:
    from yiwang.cli.main import Context, _ready

    kernel = click.get_current_context().ensure_object(Context).kernel
    _ready(kernel)
    return kernel


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KB"


@click.group("files")
def files_group() -> None:
    """附件：清理未被引用的文件、核对存储。"""


@files_group.command("gc")
@click.option("--grace-hours", type=click.FloatRange(min=0), default=24.0, show_default=True,
              help="只删除早于这么多小时、且没有任何记录引用的文件")
@click.option("--dry-run", is_flag=True, help="只列出将删除的文件，不删除")
def gc_command(grace_hours: float, dry_run: bool) -> None:
    """删除没有任何附件记录引用的文件（如事务回滚后留下的）。"""
    from yiwang.audit.cli import cli_actor
    from yiwang.files.check import gc

    kernel = _kernel()
    report = gc(kernel, grace_hours=grace_hours, dry_run=dry_run, actor=cli_actor())
    verb = "将删除" if dry_run else "已删除"
    for sha in report.removed[:50]:
        click.echo(f"  {verb} {sha}")
    if len(report.removed) > 50:
        click.echo(f"  ……另有 {len(report.removed) - 50} 个")
    click.echo(
        f"{verb} {len(report.removed)} 个未引用的文件（{_size(report.freed_bytes)}）；"
        f"在用 {report.kept} 个，未满 {grace_hours:g} 小时暂留 {report.young} 个。"
    )


@files_group.command("check")
def check_command() -> None:
    """核对每条附件记录的文件都存在且内容完整（sha256 一致）。"""
    from yiwang.files.check import verify

    kernel = _kernel()
    rows, bad = verify(kernel)
    if bad:
        problems = [b.describe() for b in bad[:200]]
        if len(bad) > 200:
            problems.append(f"……另有 {len(bad) - 200} 处")
        raise ValidationError(f"{len(bad)} 个附件的存储有问题（共 {rows} 个）", problems)
    click.echo(f"{rows} 个附件的存储完整。")
