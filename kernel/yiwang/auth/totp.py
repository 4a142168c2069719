"""TOTP second factor: enrolment (QR code and key), activation by a first code, removal."""

from __future__ import annotations

import base64

import pyotp
import segno
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from yiwang.audit import record
from yiwang.auth.models import User
from yiwang.auth.service import confirm_password
from yiwang.rbac.guard import AUTHENTICATED, principal, requires
from yiwang.web.context import actor, kernel_of


def _qr(uri: str) -> str:
    """The provisioning URI as an SVG data URL (rendered locally: no internet needed)."""
    svg = segno.make(uri, error="m").svg_inline(scale=4)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _page(request: Request, *, error: str = "", done: str = "", status: int = 200) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    with kernel.db.read() as s:
        user = s.get(User, who.user_id)
        assert user is not None
        enabled, secret = user.totp_enabled, user.totp_secret or ""
    uri = pyotp.TOTP(secret).provisioning_uri(name=who.username, issuer_name=kernel.settings.site_name) if secret else ""
    return kernel.templates.render(
        request,
        "auth/totp_setup.html",
        {
            "enabled": enabled,
            "secret": "" if enabled else secret,
            "qr": _qr(uri) if uri and not enabled else "",
            "required": who.totp_setup_required or any(
                g.role in kernel.settings.auth.totp_required_roles for g in who.grants
            ),
            "error": error,
            "done": done,
        },
        status_code=status,
    )


@requires(AUTHENTICATED, allow_pending_password=True)
def setup_page(request: Request) -> Response:
    return _page(request)


@requires(AUTHENTICATED, allow_pending_password=True)
def start(request: Request) -> Response:
    """Create a pending secret (POST: GET never changes state); a first code activates it."""
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    with kernel.db.write() as s:
        user = s.get(User, who.user_id)
        assert user is not None
        if not user.totp_enabled:
            user.totp_secret = pyotp.random_base32()
            s.add(user)
    return RedirectResponse("/account/totp", status_code=303)


@requires(AUTHENTICATED, allow_pending_password=True)
async def enable(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    code = form.get("code")
    return await run_in_threadpool(_enable, request, code if isinstance(code, str) else "")


def _enable(request: Request, code: str) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    with kernel.db.write() as s:
        user = s.get(User, who.user_id)
        assert user is not None
        ok = bool(user.totp_secret) and pyotp.TOTP(user.totp_secret or "").verify(code.strip(), valid_window=1)
        if ok:
            user.totp_enabled = True
            s.add(user)
            record(s, "auth.totp.enable", actor=actor(request), object_type="user", object_id=str(user.id))
    if not ok:
        return _page(request, error="动态口令错误，请核对手机时间后重试", status=400)
    return RedirectResponse("/account/totp?done=1", status_code=303)


@requires(AUTHENTICATED)
async def disable(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    password = form.get("password")
    return await run_in_threadpool(_disable, request, password if isinstance(password, str) else "")


def _disable(request: Request, password: str) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    if any(g.role in kernel.settings.auth.totp_required_roles for g in who.grants):
        return _page(request, error="您的角色要求使用动态口令，不能停用", status=400)
    ok = confirm_password(kernel.db, kernel.settings.auth, who.user_id, password)
    if ok:
        with kernel.db.write() as s:
            user = s.get(User, who.user_id)
            assert user is not None
            user.totp_enabled, user.totp_secret = False, None
            s.add(user)
            record(s, "auth.totp.disable", actor=actor(request), object_type="user", object_id=str(user.id))
    if not ok:
        return _page(request, error="密码不正确", status=400)
    return RedirectResponse("/account/totp", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/account/totp", setup_page, methods=["GET"], name="auth:totp_setup"),
        Route("/account/totp", enable, methods=["POST"], name="auth:totp_enable"),
        Route("/account/totp/start", start, methods=["POST"], name="auth:totp_start"),
        Route("/account/totp/disable", disable, methods=["POST"], name="auth:totp_disable"),
    ]
