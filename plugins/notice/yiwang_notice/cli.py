"""``yiwang notice …`` commands."""

from __future__ import annotations

import click
from sqlalchemy import select
from sqlmodel import Session

from yiwang.api import Kernel, Node, NotFound

from yiwang_notice import service
from yiwang_notice.models import URGENCIES


def _node(session: Session, code: str) -> Node:
    node = session.scalars(select(Node).where(Node.code == code)).first()  # type: ignore[arg-type]
    if node is None:
        raise NotFound(f"编码为 {code} 的节点不存在")
    return node


@click.command("post")
@click.argument("node_code")
@click.option("--title", required=True, help="标题。")
@click.option("--body", default="", help="正文。")
@click.option("--urgency", type=click.Choice(list(URGENCIES)), default="normal", show_default=True)
@click.option("--author", default="", help="发布单位。")
@click.pass_obj
def post(obj: object, node_code: str, title: str, body: str, urgency: str, author: str) -> None:
    """在 NODE_CODE 发布一条通知（本级及全部下级可见）。"""
    kernel: Kernel = obj.kernel  # type: ignore[attr-defined]
    with kernel.db.write() as s:
        node = _node(s, node_code)
        notice = service.post(s, node, title, body, urgency, author)
        click.echo(f"已在 {node.name} 发布通知 #{notice.id}")


@click.command("list")
@click.argument("node_code")
@click.pass_obj
def list_(obj: object, node_code: str) -> None:
    """列出 NODE_CODE 可见的通知。"""
    kernel: Kernel = obj.kernel  # type: ignore[attr-defined]
    with kernel.db.read() as s:
        node = _node(s, node_code)
        for n in service.reaching(s, node):
            click.echo(f"#{n.id} [{URGENCIES[n.urgency]}] {n.title}  {n.published_at:%Y-%m-%d}")


commands = [post, list_]
