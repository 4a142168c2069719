"""``yiwang calendar …``: show a month with 班/休 marks, check the official data, set overrides."""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from yiwang.errors import ValidationError


def _kernel() -> Any:
    from yiwang.cli.main import Context, _ready

    kernel = click.get_current_context().ensure_object(Context).kernel
    _ready(kernel)
    return kernel


def _province(kernel: Any, code: str) -> Any:
    """The province node with this code (a root of the net)."""
    from yiwang.grid import tree

    with kernel.db.read() as s:
        node = tree.by_code(s, code)
    if node.parent_id is not None:
        raise ValidationError(f"工作日历只能按省调整：{code} {node.name} 不是省级（根）节点")
    return node


def _day(text: str) -> date:
    from yiwang.calendar.overrides import parse_day

    return parse_day(text)


@click.group("calendar")
def calendar_group() -> None:
    """工作日历：节假日与调休（国家安排 + 本省调整），期限按工作日计算。"""


@calendar_group.command("show")
@click.argument("month")
@click.option("--province", default=None, help="省级节点编码（如 45）；不填则只看国家安排。")
def show_command(month: str, province: str | None) -> None:
    """显示 MONTH（如 2026-10）的日历，每天标注 班 或 休。"""
    from yiwang.calendar.cache import calendar_for
    from yiwang.calendar.pages import layout, parse_month

    year, mon = parse_month(month)
    kernel = _kernel()
    node = _province(kernel, province) if province else None
    cal = calendar_for(kernel, node.path if node else None)
    days = cal.month(year, mon)
    where = f"{node.name}（{node.code}）" if node else "国家安排（无本省调整）"
    click.echo(f"{year}年{mon}月  {where}")
    # Each cell is four columns wide on a terminal (班, 休 and the weekdays are double width).
    click.echo(" ".join(f"  {w}" for w in "一二三四五六日"))
    for week in layout(days):
        click.echo(" ".join(f"{d.day.day:>2}{d.mark}" if d else "    " for d in week).rstrip())
    named = [d for d in days if d.name]
    if named:
        click.echo("")
    for d in named:
        own = "（本省调整）" if d.source == "override" else ""
        click.echo(f"{d.day.isoformat()} {d.mark} {d.name}{own}")
    if year not in cal.covered_years():
        click.echo(f"警告: 没有 {year} 年的国家节假日安排数据，只按周末计算。", err=True)


@calendar_group.command("check")
@click.option("--today", default=None, help="按此日期检查（年-月-日，默认今天）。")
def check_command(today: str | None) -> None:
    """列出缺少国家节假日安排数据的年份（今年及两个月内将到的下一年）。只警告，退出码 0。"""
    from yiwang.calendar.workcal import WorkCalendar

    cal = WorkCalendar()
    covered = cal.covered_years()
    click.echo(f"已收录国家节假日安排: {covered[0]}–{covered[-1]} 年" if covered else "未收录任何年份")
    missing = cal.missing_years(_day(today) if today else None)
    if not missing:
        click.echo("近期年份的国家安排数据齐全。")
        return
    years = "、".join(str(y) for y in missing)
    click.echo(
        f"警告: 缺少 {years} 年的国家节假日安排数据，这些年份的期限只按周末计算。"
        "请在国务院办公厅发布通知后升级 chinesecalendar，或用 `yiwang calendar set` 添加调整。",
        err=True,
    )


@calendar_group.command("set")
@click.argument("day")
@click.option("--workday/--holiday", "workday", default=None, help="上班（工作日）或休息。")
@click.option("--name", required=True, help="名称或原因，如“国庆节调休”。")
@click.option("--province", required=True, help="省级节点编码，如 45。")
def set_command(day: str, workday: bool | None, name: str, province: str) -> None:
    """把本省的 DAY（年-月-日）设为上班或休息，优先于国家安排。"""
    from yiwang.audit.cli import auto_checkpoint, cli_actor
    from yiwang.calendar.overrides import set_override

    if workday is None:
        raise ValidationError("请用 --workday（上班）或 --holiday（休息）指明安排")
    the_day = _day(day)
    kernel = _kernel()
    node = _province(kernel, province)
    set_override(kernel, node, the_day, workday=workday, name=name, actor=cli_actor())
    auto_checkpoint(kernel)
    click.echo(f"已将 {node.name} 的 {the_day.isoformat()} 设为{'上班' if workday else '休息'}（{name.strip()}）")


@calendar_group.command("unset")
@click.argument("day")
@click.option("--province", required=True, help="省级节点编码，如 45。")
@click.option("--reason", default="", help="撤销原因（记入审计日志）。")
def unset_command(day: str, province: str, reason: str) -> None:
    """撤销本省对 DAY 的调整，恢复国家安排。"""
    from yiwang.audit.cli import auto_checkpoint, cli_actor
    from yiwang.calendar.overrides import remove_override

    the_day = _day(day)
    kernel = _kernel()
    node = _province(kernel, province)
    remove_override(kernel, node, the_day, actor=cli_actor(), reason=reason)
    auto_checkpoint(kernel)
    click.echo(f"已撤销 {node.name} 对 {the_day.isoformat()} 的调整，恢复国家安排")
