"""Route guards: every endpoint declares the permission it needs (or that it is public).

``requires("grid.view")`` checks, before the endpoint runs, that the user is logged in (else the
login page, or 401 JSON under /api/), has finished a pending second factor and a forced password
change, and holds the permission at the request's node (``current_node``: their jurisdiction,
or a node inside it named by ``?node=``). Endpoints that act on an object check that object's
node again with ``require``. A test enumerates every route and fails on one without a guard.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from yiwang.auth.principal import Principal
from yiwang.errors import Forbidden

PUBLIC = "public"
AUTHENTICATED = "authenticated"
ATTR = "__yiwang_permission__"

Endpoint = Callable[[Request], Any]


def principal(conn: HTTPConnection) -> Principal | None:
    return conn.scope.get("yiwang.principal")


def permission_of(endpoint: Any) -> str | None:
    return getattr(endpoint, ATTR, None)


def public(endpoint: Endpoint) -> Endpoint:
    """Mark an endpoint that anyone may call (login page, health check)."""
    setattr(endpoint, ATTR, PUBLIC)
    return endpoint


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    from yiwang.web.context import is_api_path

    return is_api_path(request.url.path) or (
        "application/json" in accept and "text/html" not in accept
    )


def _gate(request: Request, permission: str, *, allow_pending_password: bool) -> Response | None:
    """None when the request may proceed, else the response that stops it (sync)."""
    from yiwang.web.context import current_node, kernel_of

    who = principal(request)
    if who is None:
        if _wants_json(request):
            return JSONResponse({"error": {"code": 401, "message": "请先登录"}}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    if who.second_factor_pending:
        return RedirectResponse("/login/totp", status_code=303)
    if who.must_change_password and not allow_pending_password:
        if _wants_json(request):
            return JSONResponse({"error": {"code": 403, "message": "请先修改密码"}}, status_code=403)
        return RedirectResponse("/account/password", status_code=303)
    if who.totp_setup_required and not allow_pending_password:
        if _wants_json(request):
            return JSONResponse({"error": {"code": 403, "message": "请先在网页端启用动态口令"}}, status_code=403)
        return RedirectResponse("/account/totp", status_code=303)
    if permission == AUTHENTICATED:
        return None
    node = current_node(request)
    if not kernel_of(request).authz.allowed(who.grants, permission, node.path if node else None):
        raise Forbidden(f"没有权限: {permission}")
    return None


def requires(permission: str, *, allow_pending_password: bool = False) -> Callable[[Endpoint], Endpoint]:
    """Guard an endpoint (sync or async) with ``permission`` at the request's node.

    ``permission`` may be ``AUTHENTICATED`` (any logged-in user). ``allow_pending_password``
    lets a user who must first change their password or set up TOTP reach this endpoint (those
    pages themselves, logout).
    """

    def decorate(endpoint: Endpoint) -> Endpoint:
        if inspect.iscoroutinefunction(endpoint):

            @functools.wraps(endpoint)
            async def async_wrapper(request: Request) -> Any:
                from yiwang.web.context import node_resolved

                if node_resolved(request):  # no query left to make: decide on the event loop
                    stop = _gate(request, permission, allow_pending_password=allow_pending_password)
                else:
                    stop = await run_in_threadpool(
                        _gate, request, permission, allow_pending_password=allow_pending_password
                    )
                return stop if stop is not None else await endpoint(request)

            setattr(async_wrapper, ATTR, permission)
            return async_wrapper

        @functools.wraps(endpoint)
        def wrapper(request: Request) -> Any:
            stop = _gate(request, permission, allow_pending_password=allow_pending_password)
            return stop if stop is not None else endpoint(request)

        setattr(wrapper, ATTR, permission)
        return wrapper

    return decorate


def require(request: HTTPConnection, permission: str, node_path: str | None) -> None:
    """Inside an endpoint: the user holds ``permission`` at the object's node, else Forbidden.

    Use it for every object named by id in the path, query, form or JSON body.
    """
    from yiwang.web.context import kernel_of

    who = principal(request)
    if who is None or not kernel_of(request).authz.allowed(who.grants, permission, node_path):
        raise Forbidden(f"没有权限: {permission}")
