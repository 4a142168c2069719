"""Login, second factor, logout, password change and jurisdiction switch (web), and the phone
API's token endpoints. Every path goes through ``service.authenticate``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pyotp
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from yiwang.auth import service
from yiwang.auth.models import AuthSession, User
from yiwang.errors import ValidationError
from yiwang.rbac.guard import AUTHENTICATED, principal, public, requires
from yiwang.web.context import kernel_of
from yiwang.web.security import SESSION_COOKIE, client_ip, cookie_secure, set_cookie_header


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would let a phishing link borrow our login."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _form_value(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@public
def login_page(request: Request) -> Response:
    return kernel_of(request).templates.render(
        request, "auth/login.html", {"error": "", "username": "", "next": _safe_next(request.query_params.get("next"))}
    )


@public
async def login_submit(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    username, password = _form_value(form, "username"), _form_value(form, "password")
    target = _safe_next(_form_value(form, "next"))
    return await run_in_threadpool(_login, request, username, password, target)


def _login(request: Request, username: str, password: str, target: str) -> Response:
    kernel = kernel_of(request)
    policy = kernel.settings.auth
    try:
        user = service.authenticate(
            kernel.db, policy, username, password, client_ip=client_ip(request.scope), channel="web"
        )
    except service.LoginFailed as exc:
        return kernel.templates.render(
            request, "auth/login.html", {"error": str(exc), "username": username, "next": target}, status_code=400
        )
    new = service.start_session(
        kernel.db, policy, user, client_ip=client_ip(request.scope),
        user_agent=request.headers.get("user-agent", ""),
    )  # fmt: skip
    where = "/login/totp" if user.totp_enabled else target
    response = RedirectResponse(where, status_code=303)
    response.headers.append(
        "set-cookie",
        set_cookie_header(SESSION_COOKIE, new.token, secure=cookie_secure(kernel, request.scope)).decode(),
    )
    return response


@requires(AUTHENTICATED, allow_pending_password=True)
def logout(request: Request) -> Response:
    kernel = kernel_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        service.end_session(kernel.db, token)
    response = RedirectResponse("/login", status_code=303)
    response.headers.append(
        "set-cookie",
        set_cookie_header(SESSION_COOKIE, "", secure=cookie_secure(kernel, request.scope), max_age=0).decode(),
    )
    return response


@public
def totp_page(request: Request) -> Response:
    who = principal(request)
    if who is None or not who.second_factor_pending:
        return RedirectResponse("/", status_code=303)
    return kernel_of(request).templates.render(request, "auth/totp.html", {"error": ""})


@public
async def totp_submit(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    return await run_in_threadpool(_totp, request, _form_value(form, "code"))


def _totp(request: Request, code: str) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    if who is None or not who.second_factor_pending:
        return RedirectResponse("/", status_code=303)
    with kernel.db.write() as s:
        user = s.get(User, who.user_id)
        row = s.get(AuthSession, who.session_id)
        ok = bool(user and user.totp_secret and pyotp.TOTP(user.totp_secret).verify(code.strip(), valid_window=1))
        if ok and row is not None:
            row.second_factor_pending = False
            s.add(row)
    if not ok:
        return kernel.templates.render(request, "auth/totp.html", {"error": "动态口令错误"}, status_code=400)
    return RedirectResponse("/", status_code=303)


@requires(AUTHENTICATED, allow_pending_password=True)
def password_page(request: Request) -> Response:
    return kernel_of(request).templates.render(request, "auth/password.html", {"problems": [], "done": False})


@requires(AUTHENTICATED, allow_pending_password=True)
async def password_submit(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    return await run_in_threadpool(
        _change_password, request, _form_value(form, "current"), _form_value(form, "new"), _form_value(form, "confirm")
    )


def _change_password(request: Request, current: str, new: str, confirm: str) -> Response:
    from yiwang.audit import record
    from yiwang.web.context import actor

    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    problems: list[str] = []
    if new != confirm:
        problems.append("两次输入的新密码不一致")
    else:
        try:
            service.change_password(kernel.db, kernel.settings.auth, who.user_id, current, new)
        except ValidationError as exc:
            problems = exc.problems
    with kernel.db.write() as s:
        record(s, "auth.password.change", actor=actor(request), object_type="user",
               object_id=str(who.user_id), result="failed" if problems else "ok")  # fmt: skip
    if problems:
        return kernel.templates.render(
            request, "auth/password.html", {"problems": problems, "done": False}, status_code=400
        )
    return kernel.templates.render(request, "auth/password.html", {"problems": [], "done": True})


@requires(AUTHENTICATED)
async def switch_jurisdiction(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    raw = _form_value(form, "assignment")
    who = principal(request)
    assert who is not None
    if not raw.isdigit():
        raise ValidationError("请选择辖区")
    await run_in_threadpool(service.switch_jurisdiction, kernel_of(request).db, who, int(raw))
    return RedirectResponse("/", status_code=303)


# --- phone API --------------------------------------------------------------------------------


def _json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "message": message}}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError("请求体不是合法的 JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("请求体应为 JSON 对象")
    return body


@public
async def api_login(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    body = await _json(request)
    return await run_in_threadpool(_api_login, request, body)


def _api_login(request: Request, body: dict[str, Any]) -> Response:
    kernel = kernel_of(request)
    policy = kernel.settings.auth
    username, password = str(body.get("username", "")), str(body.get("password", ""))
    device = str(body.get("device_id", ""))
    try:
        user = service.authenticate(
            kernel.db, policy, username, password, client_ip=client_ip(request.scope), channel="api"
        )
    except service.LoginFailed as exc:
        return _json_error(401, str(exc))
    if user.totp_enabled:
        code = str(body.get("totp", ""))
        if not (user.totp_secret and pyotp.TOTP(user.totp_secret).verify(code, valid_window=1)):
            return _json_error(401, "需要正确的动态口令 totp")
    tokens = service.issue_tokens(kernel.db, policy, user, device)
    return JSONResponse(
        {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
         "token_type": "Bearer", "expires_in": tokens.access_expires_in,
         "must_change_password": user.must_change_password}
    )  # fmt: skip


@public
async def api_refresh(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    body = await _json(request)
    kernel = kernel_of(request)
    try:
        tokens = await run_in_threadpool(
            service.refresh_tokens, kernel.db, kernel.settings.auth,
            str(body.get("refresh_token", "")), str(body.get("device_id", "")),
        )  # fmt: skip
    except service.LoginFailed as exc:
        return _json_error(401, str(exc))
    return JSONResponse(
        {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
         "token_type": "Bearer", "expires_in": tokens.access_expires_in}
    )  # fmt: skip


@requires(AUTHENTICATED, allow_pending_password=True)
def api_logout(request: Request) -> Response:
    header = request.headers.get("authorization", "")
    token = header.partition(" ")[2].strip()
    if token:
        service.revoke_token(kernel_of(request).db, token)
    return JSONResponse({"ok": True})


@requires(AUTHENTICATED)
def api_me(request: Request) -> Response:
    """The phone app's first call: who am I, where may I work."""
    who = principal(request)
    assert who is not None
    return JSONResponse(
        {
            "id": who.user_id,
            "username": who.username,
            "name": who.name,
            "grants": [
                {"role": g.role, "node": g.node_code, "name": g.node_name, "level": g.node_level}
                for g in who.grants
            ],
        }
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/login", login_page, methods=["GET"], name="auth:login"),
        Route("/login", login_submit, methods=["POST"], name="auth:login_submit"),
        Route("/login/totp", totp_page, methods=["GET"], name="auth:totp"),
        Route("/login/totp", totp_submit, methods=["POST"], name="auth:totp_submit"),
        Route("/logout", logout, methods=["POST"], name="auth:logout"),
        Route("/account/password", password_page, methods=["GET"], name="auth:password"),
        Route("/account/password", password_submit, methods=["POST"], name="auth:password_submit"),
        Route("/account/jurisdiction", switch_jurisdiction, methods=["POST"], name="auth:switch"),
        Route("/api/auth/login", api_login, methods=["POST"], name="api:login"),
        Route("/api/auth/refresh", api_refresh, methods=["POST"], name="api:refresh"),
        Route("/api/auth/logout", api_logout, methods=["POST"], name="api:logout"),
        Route("/api/me", api_me, methods=["GET"], name="api:me"),
    ]
