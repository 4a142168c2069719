"""``yiwang notify …``: deliver now, list, retry, send a test message."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import func, select

from yiwang.errors import NotFound, ValidationError


def _kernel() -> Any:
    from yiwang.cli.main import Context, _ready

    kernel = click.get_current_context().ensure_object(Context).kernel
    _ready(kernel)
    return kernel


@click.group("notify")
def notify_group() -> None:
    """通知：立即投递、查看、重发失败的通知、发送测试消息。"""


@notify_group.command("deliver")
@click.option("--limit", default=200, show_default=True, help="本次最多处理的条数")
def deliver_command(limit: int) -> None:
    """投递一批到期的通知（定时任务 notify.deliver 也会定期执行）。"""
    from yiwang.notify.outbox import deliver_due

    report = deliver_due(_kernel(), limit=max(1, limit))
    click.echo(report.describe() if report.claimed else "没有到期待发送的通知。")


@notify_group.command("list")
@click.option("--failed", is_flag=True, help="只列出失败待重试与已放弃的通知")
@click.option("--limit", default=50, show_default=True, help="最多列出的条数（最新的在前）")
def list_command(failed: bool, limit: int) -> None:
    """列出通知（不显示收件地址）。"""
    from yiwang.admin.common import when
    from yiwang.notify.models import DEAD, FAILED, STATUS_LABELS
    from yiwang.notify.outbox import M, U

    kernel = _kernel()
    cond = [M.c.status.in_((FAILED, DEAD))] if failed else []
    with kernel.db.read() as s:
        conn = s.connection()
        total = conn.execute(select(func.count()).select_from(M).where(*cond)).scalar_one()
        rows = conn.execute(
            select(M.c.id, M.c.status, M.c.channel, U.c.username, M.c.event, M.c.attempts,
                   M.c.created_at, M.c.last_error)
            .select_from(M.outerjoin(U, U.c.id == M.c.user_id))
            .where(*cond)
            .order_by(M.c.id.desc())
            .limit(max(1, limit))
        ).all()  # fmt: skip
    if not rows:
        click.echo("没有失败的通知。" if failed else "没有通知。")
        return
    for r in rows:
        who = r.username or "外部地址"
        error = f"  {r.last_error}" if r.last_error else ""
        click.echo(
            f"#{r.id}  {STATUS_LABELS.get(r.status, r.status)}  {r.channel}  {who}  "
            f"{r.event or '-'}  第{r.attempts}次  {when(r.created_at)}{error}"
        )
    click.echo(f"共 {total} 条" + (f"，显示最新 {len(rows)} 条" if total > len(rows) else ""))


@notify_group.command("retry")
@click.option("--id", "ids", type=int, multiple=True, help="要重发的通知编号（可重复）")
@click.option("--all-failed", is_flag=True, help="重发全部失败待重试与已放弃的通知")
def retry_command(ids: tuple[int, ...], all_failed: bool) -> None:
    """把失败或已放弃的通知恢复为待发送（重新计数），记入审计日志。"""
    from yiwang.audit.cli import cli_actor
    from yiwang.notify.models import DEAD, FAILED
    from yiwang.notify.outbox import M, retry

    if bool(ids) == all_failed:
        raise ValidationError("请指定 --id（可重复）或 --all-failed 之一")
    kernel = _kernel()
    with kernel.db.write() as s:
        chosen = list(ids) or [
            int(i) for i in s.execute(select(M.c.id).where(M.c.status.in_((FAILED, DEAD)))).scalars()
        ]
        done = retry(s, kernel, chosen, actor=cli_actor())
    if ids and done < len(set(ids)):
        click.echo(f"有 {len(set(ids)) - done} 条不存在或不在失败状态，未处理。", err=True)
    click.echo(f"已将 {done} 条通知恢复为待发送，将由投递任务发送（或运行 yiwang notify deliver）。")


@notify_group.command("test")
@click.option("--user", "username", required=True, help="收件用户的用户名")
@click.option("--channel", required=True, help="通道名，须已在 notify.channels 中启用")
def test_command(username: str, channel: str) -> None:
    """给一个用户发送一条测试消息并报告结果。"""
    from yiwang.audit.cli import cli_actor
    from yiwang.audit.records import record
    from yiwang.auth.models import User
    from yiwang.notify.models import STATUS_LABELS, NotifyMessage
    from yiwang.notify.outbox import deliver_ids, enqueue
    from yiwang.notify.worker import runtime

    kernel = _kernel()
    with kernel.db.write() as s:
        user = s.execute(select(User).where(User.username == username.strip().lower())).scalar_one_or_none()  # type: ignore[arg-type]
        if user is None or user.id is None:
            raise NotFound(f"用户 {username} 不存在")
        [message_id] = enqueue(
            s, kernel, user_ids=[user.id], channels=[channel], subject="一网测试消息",
            body="这是一条测试消息：收到即说明通知通道配置正确。", event="notify.test",
        )  # fmt: skip
        record(s, "notify.test", actor=cli_actor(), object_type="notify_message",
               object_id=message_id, detail={"channel": channel, "user_id": user.id})  # fmt: skip
    deliver_ids(kernel, [message_id])
    runtime(kernel).dispatcher.wait_idle(30)  # in case the on-commit thread took it first
    with kernel.db.read() as s:
        row = s.get(NotifyMessage, message_id)
    assert row is not None
    outcome = STATUS_LABELS.get(row.status, row.status)
    click.echo(f"测试通知 #{message_id} 经 {channel} 发给 {username}: {outcome}")
    if row.last_error:
        click.echo(f"原因: {row.last_error}")
    if row.status != "sent":
        raise ValidationError(f"测试通知未能发送（{outcome}）")
