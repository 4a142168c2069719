"""我的消息 (every user's in-app messages), 通知投递 (failed deliveries for administrators), and
the unread count for phones and the top bar."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from yiwang.admin.common import PAGE_SIZE, actor, page_number, render, who
from yiwang.auth.models import User
from yiwang.errors import Forbidden, NotFound
from yiwang.grid.models import Node
from yiwang.notify.models import DEAD, FAILED, STATUS_LABELS
from yiwang.notify.outbox import INBOX, M, mark_all_read, mark_read, retry, unread_count
from yiwang.notify.worker import runtime
from yiwang.rbac.guard import AUTHENTICATED, requires
from yiwang.rbac.models import Assignment
from yiwang.web.context import current_node, kernel_of

U = User.__table__  # type: ignore[attr-defined]
A = Assignment.__table__  # type: ignore[attr-defined]
N = Node.__table__  # type: ignore[attr-defined]


# --- 我的消息 ---------------------------------------------------------------------------------------


@requires(AUTHENTICATED)
def inbox(request: Request) -> Response:
    """The signed-in user's in-app messages, newest first; only their own."""
    kernel = kernel_of(request)
    user_id = who(request).user_id
    page = page_number(request)
    mine = and_(M.c.user_id == user_id, M.c.channel == INBOX)
    with kernel.db.read() as s:
        conn = s.connection()
        total = conn.execute(select(func.count()).select_from(M).where(mine)).scalar_one()
        rows = conn.execute(
            select(M.c.id, M.c.subject, M.c.body, M.c.link, M.c.created_at, M.c.read_at)
            .where(mine)
            .order_by(M.c.created_at.desc(), M.c.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
        unread = unread_count(s, user_id)
    return render(
        request,
        "notify/inbox.html",
        {"rows": rows, "unread": unread, "total": total, "page": page,
         "pages": max(1, -(-total // PAGE_SIZE))},
        node=current_node(request),
    )  # fmt: skip


@requires(AUTHENTICATED)
def inbox_read(request: Request) -> Response:
    """Mark one of one's own messages read (another user's is 404, as if absent)."""
    kernel = kernel_of(request)
    with kernel.db.write() as s:
        if not mark_read(s, who(request).user_id, request.path_params["message_id"]):
            raise NotFound("消息不存在")
    return RedirectResponse(_back(request, "notify:inbox"), status_code=303)


@requires(AUTHENTICATED)
def inbox_read_all(request: Request) -> Response:
    kernel = kernel_of(request)
    with kernel.db.write() as s:
        mark_all_read(s, who(request).user_id)
    return RedirectResponse(request.url_for("notify:inbox"), status_code=303)


@requires(AUTHENTICATED)
def api_unread(request: Request) -> Response:
    """``{"unread": n}`` — the badge of the top bar and of the phone app."""
    kernel = kernel_of(request)
    with kernel.db.read() as s:
        n = unread_count(s, who(request).user_id)
    return JSONResponse({"unread": n}, headers={"Cache-Control": "no-store"})


def _back(request: Request, route: str) -> str:
    """The list to return to, keeping its page (only a page number is taken from the form)."""
    page = request.query_params.get("page", "")
    url = str(request.url_for(route))
    return f"{url}?page={page}" if page.isdigit() else url


# --- 通知投递 (administrators) --------------------------------------------------------------------------

PROBLEMS = (FAILED, DEAD)
#: Messages shown after a redirect, by code (the URL never carries text to show).
NOTICES = {"stale": "该通知已不在失败状态，无需重发。"}


def _scope(request: Request, session: Session) -> Any:
    """Messages of users holding a role inside the administrator's ``notify.manage`` scope;
    messages to raw addresses only for an administrator of the whole net."""
    kernel = kernel_of(request)
    grants = who(request).grants
    scope = kernel.authz.scope_filter(grants, "notify.manage", N.c.path)
    users_here = exists(
        select(A.c.id).join(N, N.c.id == A.c.node_id).where(A.c.user_id == M.c.user_id, scope)
    )
    roots = session.execute(select(N.c.path).where(N.c.parent_id.is_(None))).scalars().all()
    whole_net = bool(roots) and all(kernel.authz.allowed(grants, "notify.manage", r) for r in roots)
    return or_(users_here, M.c.user_id.is_(None)) if whole_net else users_here


@requires("notify.manage")
def admin_list(request: Request) -> Response:
    """Failed and dead messages of the administrator's jurisdiction, newest first."""
    kernel = kernel_of(request)
    status = request.query_params.get("status", "")
    statuses = (status,) if status in PROBLEMS else PROBLEMS
    page = page_number(request)
    drivers = runtime(kernel).drivers
    with kernel.db.read() as s:
        cond = and_(M.c.status.in_(statuses), _scope(request, s))
        conn = s.connection()
        total = conn.execute(select(func.count()).select_from(M).where(cond)).scalar_one()
        rows = conn.execute(
            select(
                M.c.id, M.c.channel, M.c.subject, M.c.event, M.c.status, M.c.attempts,
                M.c.next_attempt_at, M.c.last_error, M.c.created_at, U.c.username,
            )
            .select_from(M.outerjoin(U, U.c.id == M.c.user_id))
            .where(cond)
            .order_by(M.c.created_at.desc(), M.c.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()  # fmt: skip
    titles = {name: d.title for name, d in drivers.items()}
    return render(
        request,
        "notify/admin.html",
        {"rows": rows, "status": status if status in PROBLEMS else "", "labels": STATUS_LABELS,
         "titles": titles, "total": total, "page": page, "pages": max(1, -(-total // PAGE_SIZE)),
         "problems": [NOTICES[n] for n in request.query_params.getlist("notice") if n in NOTICES][:1]},
        node=current_node(request),
    )  # fmt: skip


@requires("notify.manage")
def admin_retry(request: Request) -> Response:
    """重新发送: back to pending with a fresh attempt count (audited ``notify.retry``)."""
    kernel = kernel_of(request)
    message_id: int = request.path_params["message_id"]
    with kernel.db.write() as s:
        visible = s.execute(select(M.c.id).where(M.c.id == message_id, _scope(request, s))).first()
        if visible is None:
            raise Forbidden("通知不存在或不在您的辖区内")
        done = retry(s, kernel, [message_id], actor=actor(request))
    url = request.url_for("notify:admin")
    if not done:
        return RedirectResponse(f"{url}?notice=stale", status_code=303)
    return RedirectResponse(url, status_code=303)


def routes() -> list[BaseRoute]:
    """The notification routes, mounted at the root by the kernel (``builtin.yiwang_routes``)."""
    from yiwang.admin import users

    return [
        Route("/notifications", inbox, methods=["GET"], name="notify:inbox"),
        Route("/notifications/read-all", inbox_read_all, methods=["POST"], name="notify:read_all"),
        Route("/notifications/{message_id:int}/read", inbox_read, methods=["POST"], name="notify:read"),
        Route("/api/notifications/unread", api_unread, methods=["GET"], name="api:notify_unread"),
        Route("/admin/notifications", admin_list, methods=["GET"], name="notify:admin"),
        Route("/admin/notifications/{message_id:int}/retry", admin_retry, methods=["POST"],
              name="notify:retry"),  # fmt: skip
        # A user's notification addresses: edited on the user page (yiwang.admin.users).
        Route("/admin/users/{user_id:int}/contact", users.user_contact, methods=["POST"],
              name="admin:contact"),  # fmt: skip
    ]


__all__ = ["routes"]
