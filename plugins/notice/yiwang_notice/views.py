"""Pages: the notices reaching the current node, and one notice."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yiwang.api import Node, NotFound, ancestor_ids, current_node, read, render, requires

from yiwang_notice import service
from yiwang_notice.models import URGENCIES, Notice


@requires("notice.view")
def notice_list(request: Request) -> Response:
    node = current_node(request)
    with read(request) as s:
        notices = service.reaching(s, node) if node else []
        below = service.posted_within(s, node, limit=20) if node else []
        names = _node_names(s, {n.node_id for n in [*notices, *below]})
    return render(
        request,
        "notice/list.html",
        {"notices": notices, "below": [n for n in below if n.node_id != (node.id if node else None)],
         "names": names, "urgencies": URGENCIES},
    )  # fmt: skip


@requires("notice.view")
def notice_detail(request: Request) -> Response:
    node = current_node(request)
    with read(request) as s:
        notice = s.get(Notice, request.path_params["notice_id"])
        # Only notices that reach the current node, or were posted below it, may be read here.
        visible = notice is not None and node is not None and (
            notice.node_id in ancestor_ids(node.path) or notice.node_path.startswith(node.path)
        )
        if not visible or notice is None:
            raise NotFound("通知不存在或不在本辖区")
        names = _node_names(s, {notice.node_id})
    return render(request, "notice/detail.html", {"notice": notice, "names": names, "urgencies": URGENCIES})


def _node_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Node.id, Node.name).where(Node.id.in_(ids)))  # type: ignore[call-overload,union-attr]
    return {i: n for i, n in rows}


routes = [
    Route("/", notice_list, name="list"),
    Route("/{notice_id:int}", notice_detail, name="detail"),
]
