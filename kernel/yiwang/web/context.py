"""Request context: the kernel serving a request and the node (辖区) a request concerns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from starlette.requests import HTTPConnection

from yiwang.errors import NotFound
from yiwang.grid.tree import ROW_COLUMNS, NodeRow, T

if TYPE_CHECKING:
    from yiwang.kernel import Kernel


def kernel_of(conn: HTTPConnection) -> Kernel:
    return conn.app.state.kernel  # type: ignore[no-any-return]


def current_node(conn: HTTPConnection) -> NodeRow | None:
    """The node a request concerns: ``?node=<code>``, else the first root of the net.

    Resolved once per request (sync: call from a threadpool endpoint). None when the net is
    empty; an unknown code raises NotFound (a Chinese 404). The identity layer narrows this to
    the user's jurisdiction.
    """
    if "yiwang.node" in conn.scope:
        return conn.scope["yiwang.node"]  # type: ignore[no-any-return]
    kernel = kernel_of(conn)
    code = conn.query_params.get("node", "").strip()
    with kernel.db.read() as s:
        stmt = select(*ROW_COLUMNS)
        if code:
            stmt = stmt.where(T.c.code == code)
        else:
            stmt = stmt.where(T.c.parent_id.is_(None)).order_by(T.c.code).limit(1)
        row = s.connection().execute(stmt).first()
    if row is None and code:
        raise NotFound(f"编码为 {code} 的节点不存在")
    node = NodeRow(*row) if row else None
    conn.scope["yiwang.node"] = node
    return node


__all__ = ["current_node", "kernel_of"]
