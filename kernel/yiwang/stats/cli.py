"""``yiwang stats …``: verify and repair the kept counts."""

from __future__ import annotations

from typing import Any

import click

from yiwang.errors import ValidationError


def _kernel() -> Any:
    from yiwang.cli.main import Context, _ready

    kernel = click.get_current_context().ensure_object(Context).kernel
    _ready(kernel)
    return kernel


@click.group("stats")
def stats_group() -> None:
    """统计指标：核对与修复各节点的汇总计数。"""


@stats_group.command("recount")
@click.option("--check", is_flag=True, help="只核对，不修复（有差异时退出码 5）")
@click.option("--indicator", "indicators", multiple=True, help="只处理这些指标（可重复）")
def recount_command(check: bool, indicators: tuple[str, ...]) -> None:
    """按各指标的数据来源重算汇总计数，核对并修复差异。"""
    from yiwang.audit.cli import cli_actor
    from yiwang.audit.records import record
    from yiwang.stats.recount import recount

    kernel = _kernel()
    with kernel.db.write() as s:
        found = recount(kernel, s, check=check, indicators=list(indicators) or None)
        if found and not check:
            record(
                s, "stats.recount", actor=cli_actor(), object_type="stats",
                detail={"repaired": len(found)},
            )  # fmt: skip
    if not found:
        click.echo("统计汇总与数据一致。")
        return
    problems = [d.describe() for d in found[:200]]
    if len(found) > 200:
        problems.append(f"……另有 {len(found) - 200} 处")
    if check:
        raise ValidationError(f"统计汇总有 {len(found)} 处与数据不一致（未修复）", problems)
    click.echo(f"已修复 {len(found)} 处统计汇总:")
    for p in problems:
        click.echo(f"  - {p}")
