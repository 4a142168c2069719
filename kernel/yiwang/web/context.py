"""Request context: the kernel serving a request and the node (辖区) a request concerns."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from yiwang.errors import Forbidden, NotFound
from yiwang.grid.tree import BY_CODE, BY_ID, NodeRow

if TYPE_CHECKING:
    from yiwang.audit import Actor
    from yiwang.auth.principal import Principal
    from yiwang.kernel import Kernel


_PLUGIN_API = re.compile(r"^/p/[a-z][a-z0-9_]*/api/")


def is_api_path(path: str) -> bool:
    """JSON API paths: the kernel's ``/api/…`` and each plugin's ``/p/<plugin>/api/…``."""
    return path.startswith("/api/") or bool(_PLUGIN_API.match(path))


def kernel_of(conn: HTTPConnection) -> Kernel:
    return conn.app.state.kernel  # type: ignore[no-any-return]


def node_resolved(conn: HTTPConnection) -> bool:
    """Can ``current_node`` answer without a query (no ``?node=``, the principal carries its
    jurisdiction's row, or it was resolved already)? Then async code may call it directly."""
    if "yiwang.node" in conn.scope:
        return True
    who = conn.scope.get("yiwang.principal")
    if who is None:
        return True
    return not conn.query_params.get("node") and (who.current is None or who.current.node_id in who.nodes)


def current_node(conn: HTTPConnection) -> NodeRow | None:
    """The node a request concerns.

    For a logged-in user: ``?node=<code>`` when that node lies inside one of their assignments
    (else Forbidden), otherwise the node of their current jurisdiction (辖区). For anonymous
    requests: None. An unknown code is NotFound. Resolved once per request; sync (call it from
    a thread-pool endpoint).
    """
    if "yiwang.node" in conn.scope:
        return conn.scope["yiwang.node"]  # type: ignore[no-any-return]
    kernel = kernel_of(conn)
    who = conn.scope.get("yiwang.principal")
    code = conn.query_params.get("node", "").strip()
    node: NodeRow | None = None
    if who is not None and not code and who.current is not None and who.current.node_id in who.nodes:
        node = who.nodes[who.current.node_id]  # read with the principal's grants
    elif who is not None and (code or who.current is not None):
        with kernel.db.read() as s:
            db = s.connection()
            row = (
                db.execute(BY_CODE, {"code": code}) if code else db.execute(BY_ID, {"id": who.current.node_id})
            ).first()
        if row is None:
            raise NotFound(f"编码为 {code} 的节点不存在")
        node = NodeRow(*row)
        if not any(node.path.startswith(g.node_path) for g in who.grants):
            raise Forbidden("该节点不在您的辖区内")
    conn.scope["yiwang.node"] = node
    return node


def actor(conn: HTTPConnection) -> Actor:
    """The audit actor of a request: user, current role and node, client IP, request id."""
    from yiwang.audit import Actor

    who = principal(conn)
    client = conn.scope.get("client")
    return Actor(
        user_id=who.user_id if who else None,
        username=who.username if who else "",
        role=who.role if who else "",
        node_id=who.current.node_id if who and who.current else None,
        client_ip=str(client[0]) if client else "",
        request_id=str(conn.scope.get("state", {}).get("request_id", "")),
    )


def principal(conn: HTTPConnection) -> Principal | None:
    """The logged-in user of the request, or None."""
    return conn.scope.get("yiwang.principal")


__all__ = ["actor", "current_node", "is_api_path", "kernel_of", "principal"]
