"""Error pages in Chinese (HTML for pages, JSON under /api/ or when JSON is asked for)."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from yiwang.errors import Conflict, Forbidden, NotFound, ValidationError
from yiwang.web.context import is_api_path, kernel_of

log = logging.getLogger(__name__)

MESSAGES = {
    400: "请求有误",
    403: "没有权限",
    404: "页面不存在",
    405: "不支持该请求方法",
    409: "已被他人处理，请刷新后重试",
    422: "提交的内容有误",
    500: "系统内部错误",
    503: "服务暂不可用",
}


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return is_api_path(request.url.path) or (
        "application/json" in accept and "text/html" not in accept
    )


def error_response(
    request: Request, status: int, detail: str | None = None, problems: list[str] | None = None
) -> Response:
    message = detail or MESSAGES.get(status, "请求失败")
    request_id = getattr(request.state, "request_id", "")
    if wants_json(request):
        body: dict[str, object] = {"code": status, "message": message, "request_id": request_id}
        if problems:
            body["problems"] = problems
        return JSONResponse({"error": body}, status_code=status)
    try:
        return kernel_of(request).templates.render(
            request,
            "errors/error.html",
            {"status": status, "message": message, "request_id": request_id},
            status_code=status,
        )
    except Exception:  # the error page itself failed: still answer, plainly
        log.exception("错误页面渲染失败")
        return PlainTextResponse(f"{status} {message}（请求编号 {request_id}）", status_code=status)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.detail and exc.detail not in _STOCK else None
    return error_response(request, exc.status_code, detail)


async def not_found(request: Request, exc: Exception) -> Response:
    return error_response(request, 404, str(exc))


async def invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    if wants_json(request):
        return error_response(request, 422, exc.args[0] if exc.args else None, exc.problems)
    return error_response(request, 422, str(exc))


async def conflict(request: Request, exc: Exception) -> Response:
    return error_response(request, 409, str(exc))


async def forbidden(request: Request, exc: Exception) -> Response:
    from starlette.concurrency import run_in_threadpool

    from yiwang.web.security import audit_denied

    await run_in_threadpool(
        audit_denied, kernel_of(request), request, request.scope.get("yiwang.principal"), str(exc)
    )
    return error_response(request, 403, "没有权限访问（超出您的辖区或未获授权）")


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("请求 %s %s 失败", request.method, request.url.path)
    response = error_response(request, 500)
    # Starlette runs this handler outside every middleware, RequestIdMiddleware included.
    request_id = getattr(request.state, "request_id", "")
    if request_id:
        response.headers.setdefault("x-request-id", request_id)
    return response


# Starlette's default English reason phrases; replaced by our Chinese ones.
_STOCK = {"Not Found", "Method Not Allowed", "Internal Server Error", "Bad Request", "Forbidden"}

HANDLERS = {
    HTTPException: http_exception,
    NotFound: not_found,
    Forbidden: forbidden,
    ValidationError: invalid,
    Conflict: conflict,
    Exception: server_error,
}
