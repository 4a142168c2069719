"""Who is asking, and CSRF: an ASGI middleware in front of every route.

- A session cookie (``yw_session``: a random token; the database keeps only its hash) or a
  ``Authorization: Bearer`` phone token yields the request's Principal.
- Every unsafe request (POST, PUT, PATCH, DELETE) made with the session cookie must carry the
  session's CSRF token, in the ``X-CSRF-Token`` header (htmx sends it from ``hx-headers``) or as
  the ``csrf_token`` field of a url-encoded form. Anonymous unsafe requests (the login form) use
  a double-submit cookie ``yw_csrf``. Bearer-token requests, and /api/ requests that carry no
  cookie at all (the phone app logging in), have no ambient credential to forge and need none.
- Security headers on every response.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yiwang.auth import service
from yiwang.web.context import is_api_path

if TYPE_CHECKING:
    from yiwang.auth.principal import Principal
    from yiwang.kernel import Kernel

SESSION_COOKIE = "yw_session"
ANON_CSRF_COOKIE = "yw_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FORM_BYTES = 2 * 1024 * 1024

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        b"script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
    ),
]


def tile_origin(tile_url: str) -> str:
    """The image source a configured map tile server needs (``map.tile_url``): its origin, with a
    ``{s}`` subdomain as a wildcard; "" for a same-site path or no tiles."""
    found = re.match(r"(https?)://([^/?#]+)", tile_url)
    if not found:
        return ""
    host = re.sub(r"^\{s\}\.", "*.", found.group(2))
    return f"{found.group(1)}://{host}" if re.fullmatch(r"[\w.*:-]+", host) else ""


def security_headers(tile_url: str) -> list[tuple[bytes, bytes]]:
    """The headers every answer gets; the tile server's images are allowed when one is set."""
    origin = tile_origin(tile_url)
    if not origin:
        return SECURITY_HEADERS
    return [
        (k, v.replace(b"img-src 'self' data: blob:", b"img-src 'self' data: blob: " + origin.encode()))
        for k, v in SECURITY_HEADERS
    ]


def cookie_secure(kernel: Kernel, scope: Scope) -> bool:
    mode = kernel.settings.auth.cookie_secure
    return mode == "always" or (mode == "auto" and scope.get("scheme") == "https")


def set_cookie_header(name: str, value: str, *, secure: bool, max_age: int | None = None) -> bytes:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts).encode()


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def csrf_token_of(request: Request) -> str:
    """The token a page must embed in its forms and htmx headers."""
    who = request.scope.get("yiwang.principal")
    if who is not None and who.csrf_token:
        return str(who.csrf_token)
    return str(request.scope.get("yiwang.anon_csrf", ""))


class SecurityMiddleware:
    """Resolves the principal and enforces CSRF; see the module docstring."""

    def __init__(self, app: ASGIApp, kernel: Kernel) -> None:
        self.app = app
        self.kernel = kernel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookies = request.cookies
        session_token = cookies.get(SESSION_COOKIE, "")
        bearer = _bearer(request)
        principal = None
        if bearer or session_token:
            # A background refresh (the inbox badge) is not the user at work: it must not keep
            # an idle session alive.
            touch = not any(k == b"x-yiwang-background" for k, _ in scope["headers"])
            principal = await run_in_threadpool(self._resolve, bearer, session_token, touch)
        scope["yiwang.principal"] = principal
        anon = cookies.get(ANON_CSRF_COOKIE, "")
        new_anon = "" if anon else secrets.token_urlsafe(24)
        scope["yiwang.anon_csrf"] = anon or new_anon
        clear_session = bool(session_token) and principal is None and not bearer
        secure = cookie_secure(self.kernel, scope)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in security_headers(self.kernel.settings.map.tile_url):
                    if key.decode() not in headers:
                        headers.append(key.decode(), value.decode())
                if new_anon:
                    headers.append("set-cookie", set_cookie_header(ANON_CSRF_COOKIE, new_anon, secure=secure).decode())
                if clear_session and not _sets_cookie(message, SESSION_COOKIE):
                    headers.append(
                        "set-cookie", set_cookie_header(SESSION_COOKIE, "", secure=secure, max_age=0).decode()
                    )
            await send(message)

        # Phone clients call /api/ with no cookie at all: nothing ambient to forge.
        cookieless_api = is_api_path(scope["path"]) and not session_token
        if scope["method"] in UNSAFE and not bearer and not cookieless_api:
            expected = principal.csrf_token if principal is not None else anon
            receive, given = await _csrf_given(request, receive)
            if not expected or not service.csrf_matches(expected, given):
                await _reject(self.kernel, scope, receive, send_wrapper, principal)
                return
        await self.app(scope, receive, send_wrapper)


    def _resolve(self, bearer: str, session_token: str, touch: bool = True) -> Principal | None:
        """The principal and a fresh policy, in one trip to the thread pool."""
        if bearer:
            principal = service.principal_for_token(self.kernel.db, bearer)
        else:
            principal = service.principal_for_session(
                self.kernel.db, self.kernel.settings.auth, session_token, touch
            )
        if principal is not None:
            self.kernel.authz.check_epoch()
        return principal


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _sets_cookie(message: Message, name: str) -> bool:
    for key, value in message.get("headers", []):
        if key.lower() == b"set-cookie" and value.decode("latin-1").startswith(f"{name}="):
            return True
    return False


_MULTIPART_TOKEN = re.compile(
    rb'Content-Disposition:\s*form-data;\s*name="' + CSRF_FIELD.encode() + rb'"\r\n\r\n([^\r]{1,200})\r\n',
    re.IGNORECASE,
)


async def _csrf_given(request: Request, receive: Receive) -> tuple[Receive, str | None]:
    """The CSRF token from the header, else from the form body: a url-encoded form, or the
    ``csrf_token`` part of a multipart form (forms with files, posted without JavaScript), which
    our templates put first — only the body's head is read for it. What was read is replayed."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return receive, header
    ctype = request.headers.get("content-type", "")
    multipart = ctype.startswith("multipart/form-data")
    if not (multipart or ctype.startswith("application/x-www-form-urlencoded")):
        return receive, None
    chunks: list[bytes] = []
    size, more, found = 0, True, None
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        body = message.get("body", b"")
        size += len(body)
        chunks.append(body)
        more = bool(message.get("more_body", False))
        if multipart:
            match = _MULTIPART_TOKEN.search(b"".join(chunks))
            if match or size > MAX_FORM_BYTES:
                found = match.group(1).decode("utf-8", "replace") if match else None
                break
        elif size > MAX_FORM_BYTES:
            return receive, None
    raw = b"".join(chunks)
    if not multipart:
        values = parse_qs(raw.decode("utf-8", errors="replace")).get(CSRF_FIELD, [])
        found = values[0] if values else None
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": more}
        return await receive()

    return replay, found


async def _reject(
    kernel: Kernel, scope: Scope, receive: Receive, send: Callable[[Message], Awaitable[None]], principal: Any
) -> None:
    from yiwang.web.errors import error_response

    request = Request(scope, receive)
    request.scope.setdefault("state", {})
    await run_in_threadpool(audit_denied, kernel, request, principal, "csrf")
    response = error_response(request, 403, "请求已过期或来源不明（CSRF 校验失败），请刷新页面后重试")
    await response(scope, receive, send)


def audit_denied(kernel: Kernel, request: Request, principal: Any, reason: str) -> None:
    """Record a refused request in its own transaction (the request's work is not committed)."""
    from yiwang import audit

    actor = audit.Actor(
        user_id=principal.user_id if principal else None,
        username=principal.username if principal else "",
        role=principal.role if principal else "",
        client_ip=client_ip(request.scope),
        request_id=str(request.scope.get("state", {}).get("request_id", "")),
    )
    audit.record_now(kernel.db, "http.denied", actor=actor, object_type="route",
                     object_id=f"{request.method} {request.url.path}", result="denied",
                     detail={"reason": reason})  # fmt: skip


__all__ = ["SecurityMiddleware", "csrf_token_of"]
