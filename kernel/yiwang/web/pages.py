"""The kernel's own pages: the net browsed level by level, node search, health check."""

from __future__ import annotations

import logging

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from yiwang import __version__
from yiwang.errors import DatabaseUnavailable
from yiwang.grid import tree
from yiwang.grid.levels import Level
from yiwang.grid.models import ORG_KINDS, Organisation
from yiwang.rbac.guard import AUTHENTICATED, public, require, requires
from yiwang.web.context import current_node, kernel_of, principal

log = logging.getLogger(__name__)


@requires(AUTHENTICATED)
def home(request: Request) -> Response:
    """The dashboard (工作台) for those who may see cases in their jurisdiction, else the net."""
    who = principal(request)
    node = current_node(request)
    if who is not None and node is not None and kernel_of(request).authz.allowed(
        who.grants, "cases.view", node.path
    ):
        return RedirectResponse(request.url_for("dashboard"), status_code=302)
    return RedirectResponse(request.url_for("grid:index"), status_code=302)


@requires("grid.view")
def grid_index(request: Request) -> Response:
    """The user's jurisdiction (辖区) on the net."""
    node = current_node(request)
    if node is None:
        return kernel_of(request).templates.render(
            request, "grid/node.html", {"current": None, "trail": [], "children": [], "orgs": []}
        )
    return grid_node_page(request, node.code)


@requires("grid.view")
def grid_node(request: Request) -> Response:
    return grid_node_page(request, request.path_params["code"])


def grid_node_page(request: Request, code: str) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    with kernel.db.read() as s:
        current = tree.by_code(s, code)
        require(request, "grid.view", current.path)
        # Ancestors above the user's jurisdiction are not theirs to browse.
        trail = [a for a in tree.ancestors(s, current) if any(a.path.startswith(g.node_path) for g in who.grants)]
        children = tree.children(s, current.id)
        orgs = list(
            s.scalars(
                select(Organisation)
                .where(Organisation.node_id == current.id)  # type: ignore[arg-type]
                .order_by(Organisation.kind, Organisation.name)
            )
        )
    return kernel.templates.render(
        request,
        "grid/node.html",
        {
            "current": current,
            "level_label": Level(current.level).label,
            "trail": trail,
            "children": children,
            "orgs": orgs,
            "org_kinds": ORG_KINDS,
        },
        node=current,
    )


@requires("grid.view")
def grid_search(request: Request) -> Response:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    q = request.query_params.get("q", "")
    scope = kernel.authz.scope_filter(who.grants, "grid.view", tree.T.c.path)
    with kernel.db.read() as s:
        results = tree.search(s, q, limit=30, scope=scope) if q.strip() else []
    return kernel.templates.render(request, "grid/search.html", {"q": q, "results": results})


@public
async def set_locale(request: Request) -> Response:
    """Switch the interface language (a cookie; a year), then back to the page it came from."""
    from yiwang.web.i18n import COOKIE

    form = await request.form()
    chosen = str(form.get("locale", ""))
    back = str(form.get("next", "")) or "/"
    if not back.startswith("/") or back.startswith("//") or "\\" in back:
        back = "/"
    response = RedirectResponse(back, status_code=303)
    if chosen in kernel_of(request).templates.catalogs.available:
        response.set_cookie(COOKIE, chosen, max_age=365 * 86400, httponly=True, samesite="lax")
    return response


@public
def healthz(request: Request) -> Response:
    """Liveness and readiness: 200 when the database answers, 503 otherwise."""
    kernel = kernel_of(request)
    body: dict[str, object] = {
        "status": "ok",
        "version": __version__,
        "plugins": kernel.host.names,
    }
    # The answer is public: say what is wrong, keep hosts and SQL in the server log.
    try:
        kernel.db.check()
    except DatabaseUnavailable as exc:
        log.warning("健康检查: %s", exc)
        body |= {"status": "error", "database": "无法连接数据库"}
        return JSONResponse(body, status_code=503)
    try:
        with kernel.db.read() as s:
            s.execute(text("SELECT 1 FROM grid_node LIMIT 1"))
    except SQLAlchemyError as exc:
        log.warning("健康检查: %s", str(exc).splitlines()[0])
        body |= {"status": "error", "database": "数据库结构未初始化，请运行 yiwang db upgrade"}
        return JSONResponse(body, status_code=503)
    body["database"] = "ok"
    return JSONResponse(body)


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, name="home"),
        Route("/healthz", healthz, name="healthz"),
        Route("/locale", set_locale, methods=["POST"], name="locale"),
        Route("/grid/", grid_index, name="grid:index"),
        Route("/grid/search", grid_search, name="grid:search"),
        Route("/grid/{code:str}", grid_node, name="grid:node"),
    ]
