"""The audit page (审计日志): the audit administrator searches and exports the trail.

Scope: an audit administrator whose ``audit.view`` covers a root of the net sees every record;
one lower down sees records whose actor worked at a node inside their subtree. Free text that
may hold personal data (purpose, detail) is shown masked.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from yiwang.audit import record
from yiwang.audit.query import CSV_COLUMNS, RESULT_LABELS, _cell, count, iter_entries, search
from yiwang.audit.records import EVENT
from yiwang.errors import ValidationError
from yiwang.grid.tree import T
from yiwang.rbac.guard import requires
from yiwang.web.context import actor, kernel_of, principal

PAGE_SIZE = 50


def _scope(request: Request, permission: str) -> ColumnElement[bool] | None:
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    paths = kernel.authz.scope_paths(who.grants, permission)
    if any(p.count("/") == 2 for p in paths):  # a root: the whole trail
        return None
    nodes = select(T.c.id).where(kernel.authz.scope_filter(who.grants, permission, T.c.path))
    scope: ColumnElement[bool] = EVENT.c.node_id.in_(nodes)
    return scope


def _date(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValidationError(f"{name}应为 YYYY-MM-DD 格式的日期") from None


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    until = _date(q.get("until", "").strip(), "截止日期")
    result = q.get("result", "").strip()
    if result and result not in RESULT_LABELS:
        raise ValidationError("结果应为 成功/拒绝/失败 之一")
    return {
        "user": q.get("user", "").strip() or None,
        "action": q.get("action", "").strip() or None,
        "result": result or None,
        "since": _date(q.get("since", "").strip(), "开始日期"),
        "until": until + timedelta(days=1) if until else None,  # the end day is included
    }


@requires("audit.view")
def audit_page(request: Request) -> Response:
    from yiwang.privacy.masking import mask_text

    kernel = kernel_of(request)
    filters = _filters(request)
    raw_page = request.query_params.get("page", "1")
    page = max(1, int(raw_page)) if raw_page.isdigit() else 1
    scope = _scope(request, "audit.view")
    with kernel.db.read() as s:
        total = count(s, scope=scope, **filters)
        entries = search(s, scope=scope, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **filters)
    return kernel.templates.render(
        request,
        "audit/list.html",
        {
            "entries": entries,
            "total": total,
            "page": page,
            "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
            "q": request.query_params,
            "results": RESULT_LABELS,
            "masked": mask_text,
        },
    )


@requires("audit.export")
def audit_export(request: Request) -> Response:
    from yiwang.privacy.masking import mask_text

    kernel = kernel_of(request)
    filters = _filters(request)
    scope = _scope(request, "audit.export")
    with kernel.db.write() as s:  # the export itself is a recorded act
        record(s, "audit.export", actor=actor(request), object_type="audit_event",
               detail={k: str(v) for k, v in filters.items() if v is not None})  # fmt: skip

    def rows() -> Iterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([label for _, label in CSV_COLUMNS])
        yield ("\ufeff" + buffer.getvalue()).encode()
        with kernel.db.read() as s:
            for entry in iter_entries(s, scope=scope, **filters):
                buffer.seek(0)
                buffer.truncate()
                values = [_cell(getattr(entry, name)) for name, _ in CSV_COLUMNS]
                values = [mask_text(v) if name in ("purpose", "detail") else v for v, (name, _) in zip(values, CSV_COLUMNS, strict=True)]
                writer.writerow(values)
                yield buffer.getvalue().encode()

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/audit/", audit_page, name="audit:list"),
        Route("/audit/export.csv", audit_export, name="audit:export"),
    ]
