"""The live inbox badge (待办角标) in the top bar.

``/cases/badge/stream`` is a server-sent event stream: on connect and whenever the user's count
of cases to do (or overdue) changes, an event ``badge`` carries the badge's HTML, which htmx's SSE
extension swaps in. It checks every ``ui.badge_refresh_seconds`` and ends when the session does
(idle or absolute timeout, logout) — it reads the session without touching it, so an open tab
never keeps an idle session alive. A client that does not ask for ``text/event-stream`` gets the
current badge once (a crawler never hangs on it). ``/cases/badge`` is the same fragment for the polling fallback
(browsers or proxies without event streams); the page's script sends it with
``X-Yiwang-Background`` so polling does not touch the session either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from yiwang.auth import service
from yiwang.auth.principal import Principal
from yiwang.cases import queries
from yiwang.kernel import Kernel
from yiwang.rbac.guard import requires
from yiwang.web.context import kernel_of, principal


def routes() -> list[BaseRoute]:
    return [
        Route("/cases/badge", badge, methods=["GET"], name="cases:badge"),
        Route("/cases/badge/stream", badge_stream, methods=["GET"], name="cases:badge_stream"),
    ]


def _html(kernel: Kernel, who: Principal, request: Request) -> tuple[tuple[int, int], Markup]:
    with kernel.db.read() as s:
        counts = queries.counts(kernel, s, who.grants, who.user_id)
    todo, overdue = counts.get("todo", 0), counts.get("overdue", 0)
    html = kernel.templates.render_fragment(
        "cases/_badge.html", {"request": request, "todo": todo, "overdue": overdue}
    )
    return (todo, overdue), html


@requires("cases.view")
def badge(request: Request) -> Response:
    who = principal(request)
    assert who is not None
    _, html = _html(kernel_of(request), who, request)
    response = HTMLResponse(html)
    response.headers["Cache-Control"] = "no-store"
    return response


def _event(name: str, html: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {name}\n{lines}\n".encode()


@requires("cases.view")
async def badge_stream(request: Request) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    every = kernel.settings.ui.badge_refresh_seconds
    # Only an event-stream client (EventSource sends this) is kept connected; anything else — a
    # link checker, a crawler — gets the current badge once.
    listening = "text/event-stream" in request.headers.get("accept", "")

    async def events() -> AsyncIterator[bytes]:
        # The browser reconnects on its own after a dropped connection; tell it when.
        yield f"retry: {int(every * 1000)}\n\n".encode()
        seen: tuple[int, int] | None = None
        while True:
            if who.via == "session" and not await run_in_threadpool(
                service.session_alive, kernel.db, kernel.settings.auth, who.session_id
            ):
                yield _event("expired", "")
                return
            counts, html = await run_in_threadpool(_html, kernel, who, request)
            if counts != seen:
                seen = counts
                yield _event("badge", str(html))
            else:
                yield b": keep-alive\n\n"
            if not listening:
                return
            await anyio.sleep(every)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
