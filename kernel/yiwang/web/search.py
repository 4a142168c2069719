"""Global search (全局搜索): one box in the top bar for cases, nodes and — through plugins — people.

Every active plugin answers through ``yiwang_search``; the kernel answers for nodes and cases
through the same hook (``builtin``). ``/search/suggest`` is the drop-down under the box (htmx,
as the user types), ``/search?q=`` the full page. A Latin query also matches the pinyin
initials of names and titles (``xxt`` → 西乡塘区), which staff type faster than Chinese.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from yiwang.pinyin import pinyin_initials
from yiwang.plugins.records import SearchHit
from yiwang.rbac.guard import AUTHENTICATED, requires
from yiwang.web.context import current_node, kernel_of

#: Longest query taken; longer input is cut (a search box, not a document).
MAX_QUERY = 50
SUGGEST_LIMIT = 5
PAGE_LIMIT = 30


def like_escape(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def is_latin(q: str) -> bool:
    return q.isascii() and any(ch.isalpha() for ch in q)


def text_match(q: str, name_col: Any, initials_col: Any = None) -> ColumnElement[bool]:
    """Name contains ``q``; for a Latin ``q`` also: initials start with it."""
    cond: ColumnElement[bool] = name_col.like(f"%{like_escape(q)}%", escape="\\")
    if initials_col is not None and is_latin(q):
        cond = or_(cond, initials_col.like(f"{like_escape(q.lower())}%", escape="\\"))
    return cond


def run(request: Request, q: str, limit: int) -> list[tuple[str, list[SearchHit]]]:
    """Every active plugin's hits for ``q``, grouped by kind (kinds in the order they came)."""
    q = q.strip()[:MAX_QUERY]
    if not q:
        return []
    kernel = kernel_of(request)
    answers = kernel.hook_at(current_node(request)).yiwang_search(request=request, q=q, limit=limit)
    groups: dict[str, list[SearchHit]] = {}
    for hits in reversed(answers):  # pluggy calls the last registered first; the kernel leads
        for hit in hits or ():
            groups.setdefault(hit.kind, []).append(hit)
    return [(kind, sorted(hits, key=lambda h: h.rank)[:limit]) for kind, hits in groups.items()]


async def _query(request: Request) -> str:
    """The query: from the form of a POST (what the search box sends: an ID number or a name
    typed there never lands in a URL, an access log or a Referer), else from ``?q=``."""
    if request.method == "POST":
        form = await request.form()
        value = form.get("q", "")
        return value if isinstance(value, str) else ""
    return request.query_params.get("q", "")


def _page(request: Request, q: str, template: str, limit: int) -> Response:
    groups = run(request, q, limit)
    return kernel_of(request).templates.render(
        request, template, {"q": q.strip()[:MAX_QUERY], "groups": groups},
        node=current_node(request),
    )  # fmt: skip


@requires(AUTHENTICATED)
async def search_page(request: Request) -> Response:
    q = await _query(request)
    return await run_in_threadpool(_page, request, q, "search/page.html", PAGE_LIMIT)


@requires(AUTHENTICATED)
async def suggest(request: Request) -> Response:
    q = await _query(request)
    response = await run_in_threadpool(_page, request, q, "search/_suggest.html", SUGGEST_LIMIT)
    response.headers["Cache-Control"] = "no-store"
    return response


def routes() -> list[BaseRoute]:
    return [
        Route("/search", search_page, methods=["GET", "POST"], name="search"),
        Route("/search/suggest", suggest, methods=["POST"], name="search:suggest"),
    ]


def kernel_hits(request: Request, q: str, limit: int) -> Sequence[SearchHit]:
    """The kernel's own answers: nodes (by code prefix, name, initials) and cases (by serial,
    title, address), each scoped to where the user holds the view permission."""
    from yiwang.cases import queries
    from yiwang.cases.engine import CASE
    from yiwang.grid import tree
    from yiwang.grid.levels import Level
    from yiwang.privacy.masking import mask_text
    from yiwang.web.context import principal

    kernel = kernel_of(request)
    who = principal(request)
    if who is None:
        return []
    hits: list[SearchHit] = []
    with kernel.db.read() as s:
        db = s.connection()
        node_scope = kernel.authz.scope_filter(who.grants, "grid.view", tree.T.c.path)
        cond = tree.T.c.code.like(f"{like_escape(q)}%", escape="\\") if q.isdigit() else text_match(
            q, tree.T.c.name, tree.T.c.initials
        )
        rows = db.execute(
            select(tree.T.c.code, tree.T.c.name, tree.T.c.level)
            .where(cond, node_scope)
            .order_by(tree.T.c.level, tree.T.c.code)
            .limit(limit)
        )
        for code, name, level in rows:
            exact = name == q or code == q
            hits.append(SearchHit("区划", name, f"/grid/{code}", f"{Level(level).label} · {code}", 0 if exact else 10 + level))
        if kernel.authz.allowed(who.grants, "cases.view", None):
            like = f"%{like_escape(q)}%"
            case_cond: ColumnElement[bool] = or_(
                CASE.c.serial.like(f"{like_escape(q)}%", escape="\\"),
                CASE.c.title.like(like, escape="\\"),
                CASE.c.address.like(like, escape="\\"),
            )
            if is_latin(q):
                case_cond = or_(case_cond, CASE.c.title_initials.like(f"{like_escape(q.lower())}%", escape="\\"))
            states = {st.name: st.title for wf in kernel.cases.workflows.values() for st in wf.states}
            rows = db.execute(
                select(CASE.c.id, CASE.c.serial, CASE.c.title, CASE.c.state)
                .where(case_cond, queries.view_scope(kernel, who.grants, who.user_id))
                .order_by(CASE.c.id.desc())
                .limit(limit)
            )
            for case_id, serial, title, state in rows:
                hits.append(SearchHit("事件", mask_text(title), f"/cases/{case_id}",
                                      f"{serial} · {states.get(state, state)}", 0 if serial == q else 10))  # fmt: skip
    return hits


__all__ = ["kernel_hits", "pinyin_initials", "routes", "run", "text_match"]
