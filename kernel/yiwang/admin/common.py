"""Shared by the administration pages: who acts, forms, the jurisdiction tree, audit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse

from yiwang import audit
from yiwang.auth.principal import Principal
from yiwang.errors import Forbidden
from yiwang.grid import tree
from yiwang.grid.tree import ROW_COLUMNS, NodeRow, T
from yiwang.rbac.guard import principal, require
from yiwang.rbac.sync import declared_permissions
from yiwang.web.context import actor as actor
from yiwang.web.context import kernel_of

#: Rows per page of every administration list.
PAGE_SIZE = 50
#: Times are stored in UTC and shown in Beijing time (the whole country uses it).
BEIJING = timezone(timedelta(hours=8), "北京时间")


def who(request: Request) -> Principal:
    """The signed-in administrator (the route guard has already checked there is one)."""
    found = principal(request)
    if found is None:  # pragma: no cover - every route is guarded
        raise Forbidden("请先登录")
    return found


def record_denied(request: Request, action: str, object_type: str, object_id: str | int, reason: str,
                  detail: Mapping[str, Any] | None = None) -> None:  # fmt: skip
    """Audit a refused change in its own transaction (the refused unit has rolled back)."""
    audit.record_now(
        kernel_of(request).db, action, actor=actor(request), object_type=object_type,
        object_id=object_id, result="denied", detail={"reason": reason, **(detail or {})},
    )  # fmt: skip


async def read_form(request: Request) -> dict[str, str]:
    """The submitted form's text fields, stripped (files and repeated keys ignored)."""
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str)}


def declared(request: Request) -> list[str]:
    """Every declared permission name (kernel and enabled plugins)."""
    return list(declared_permissions(kernel_of(request)))


def node_by_code(session: Session, code: str) -> NodeRow | None:
    row = session.connection().execute(select(*ROW_COLUMNS).where(T.c.code == code)).first()
    return NodeRow(*row) if row is not None else None


def in_jurisdiction(p: Principal, path: str) -> bool:
    """Is the node at ``path`` inside one of the principal's assignments (theirs to name)?"""
    return any(path.startswith(g.node_path) for g in p.grants)


def tree_context(session: Session, p: Principal, node: NodeRow | None) -> dict[str, Any]:
    """Breadcrumbs (ancestors inside the jurisdiction only) and children of ``node``."""
    if node is None:
        return {"trail": [], "children": []}
    trail = [a for a in tree.ancestors(session, node) if in_jurisdiction(p, a.path)]
    return {"trail": trail, "children": tree.children(session, node.id)}


def require_everywhere(request: Request, permission: str, paths: Sequence[str]) -> None:
    """``require`` at each of ``paths`` (all must pass)."""
    for path in paths:
        require(request, permission, path)


def require_global(request: Request, session: Session, permission: str) -> None:
    """The permission must hold over the whole net (at every root): for platform-wide changes
    such as the grants of a role, which apply in every jurisdiction."""
    roots = session.execute(select(T.c.path).where(T.c.parent_id.is_(None))).scalars().all()
    if not roots:
        require(request, permission, None)
    require_everywhere(request, permission, list(roots))


def page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, min(int(raw), 100_000)) if raw.isdigit() else 1


def when(value: datetime | None) -> str:
    """A stored (UTC) time as Beijing time, ``2026-01-02 11:04``; "—" when missing."""
    if value is None:
        return "—"
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def page_url(request: Request, page: int) -> str:
    """This list's URL (path and filters) at another page."""
    params = {**request.query_params, "page": str(page)}
    return str(request.url.path) + "?" + "&".join(f"{k}={quote(v)}" for k, v in params.items())


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    node: NodeRow | None = None,
) -> HTMLResponse:
    """Render an administration page (a whole page, or its content for htmx)."""
    return kernel_of(request).templates.render(
        request,
        name,
        {"when": when, "page_url": lambda n: page_url(request, n), **context},
        status_code=status_code,
        node=node,
    )
