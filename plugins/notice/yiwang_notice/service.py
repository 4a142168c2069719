"""Posting and finding notices; used by the pages, the CLI and the demo."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlmodel import Session

from yiwang.api import Actor, Node, NodeRow, ValidationError, ancestor_ids, audit, subtree_filter

from yiwang_notice.models import URGENCIES, Notice


def post(
    session: Session,
    node: Node,
    title: str,
    body: str,
    urgency: str = "normal",
    author: str = "",
    *,
    actor: Actor | None = None,
) -> Notice:
    """Validate and add a notice at ``node``; recorded in the audit trail (``actor``: who, the
    system when None)."""
    title = title.strip()
    problems = []
    if not title:
        problems.append("标题不能为空")
    elif len(title) > 200:
        problems.append(f"标题过长（{len(title)} 字，最多 200 字）")
    if urgency not in URGENCIES:
        problems.append(f"紧急程度应为 {'、'.join(URGENCIES)} 之一")
    if len(body) > 20000:
        problems.append("正文过长（最多 20000 字）")
    if problems:
        raise ValidationError("通知未发布", problems)
    notice = Notice(
        node_id=node.id or 0, node_path=node.path, title=title, body=body.strip(),
        urgency=urgency, author=author.strip(),
    )  # fmt: skip
    session.add(notice)
    session.flush()
    audit(session, "notice.post", actor=actor or Actor.system("notice"), object_type="notice",
          object_id=str(notice.id), detail={"node": node.code, "urgency": urgency})  # fmt: skip
    return notice


def reaching(session: Session, node: Node | NodeRow, limit: int = 50) -> Sequence[Notice]:
    """Notices posted at ``node`` or any of its ancestors, newest first."""
    stmt = (
        select(Notice)
        .where(Notice.node_id.in_(ancestor_ids(node.path)))  # type: ignore[attr-defined]
        .order_by(Notice.published_at.desc(), Notice.id.desc())  # type: ignore[attr-defined,union-attr]
        .limit(limit)
    )
    return list(session.scalars(stmt))


def posted_within(session: Session, node: Node | NodeRow, limit: int = 50) -> Sequence[Notice]:
    """Notices posted anywhere inside ``node``'s subtree (itself included), newest first."""
    stmt = (
        select(Notice)
        .where(subtree_filter(Notice.node_path, node.path))
        .order_by(Notice.published_at.desc(), Notice.id.desc())  # type: ignore[attr-defined,union-attr]
        .limit(limit)
    )
    return list(session.scalars(stmt))
