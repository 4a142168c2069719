"""Pages: persons of the subtree (with counts by kind per child from the rollups), a person,
revealing a sensitive field with a purpose, and a building's floors × rooms."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlmodel import col
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from yiwang.api import (
    Node,
    NotFound,
    ValidationError,
    actor,
    audit,
    audit_reveal,
    current_node,
    is_within,
    kernel,
    principal,
    read,
    render,
    render_fragment,
    require,
    requires,
    reveal,
    stats,
    write,
)

from yiwang_population import exporter, importer, runs, service
from yiwang_population.models import INDICATOR, KINDS, Building, ImportRun, Person

#: Fields a user may ask to see in plain text.
REVEALABLE = {"id_number": "公民身份号码", "phone": "联系电话"}


def _scope(request: Request, permission: str, column: Any) -> Any:
    """SQL condition: ``column`` lies where the user holds ``permission``."""
    who = principal(request)
    return kernel(request).authz.scope_filter(who.grants if who else (), permission, column)


def _allowed(request: Request, permission: str, path: str) -> bool:
    who = principal(request)
    return who is not None and kernel(request).authz.allowed(who.grants, permission, path)


def _names(s: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        i: n
        for i, n in s.execute(
            select(col(Node.id), col(Node.name)).where(col(Node.id).in_(ids))
        ).all()
    }


@requires("population.view")
def person_list(request: Request) -> Response:
    """Persons of the current node's subtree (filters: kind, name) and counts per child."""
    node = current_node(request)
    if node is None:
        raise NotFound("尚无网格数据")
    kind = request.query_params.get("kind", "")
    q = request.query_params.get("q", "")
    with read(request) as s:
        persons = service.persons_within(s, node.path, _scope(request, "population.view", Person.node_path),
                                         kind=kind, name=q)  # fmt: skip
        buildings = service.buildings_within(
            s, node.path, _scope(request, "population.view", Building.node_path)
        )
        from yiwang_population.models import Claim

        claims = service.claims_within(s, node.path, _scope(request, "population.view", Claim.node_path),
                                       _scope(request, "population.view", Claim.holder_path))  # fmt: skip
        from yiwang_population.households import households_within
        from yiwang_population.models import Household

        homes = households_within(
            s, node.path, _scope(request, "population.view", Household.node_path)
        )
        children = stats.children(s, INDICATOR, node.id or 0, keys=tuple(KINDS))
        here = stats.by_key(s, INDICATOR, node.id or 0)
        names = _names(
            s,
            {p.node_id for p in persons}
            | {b.node_id for b in buildings}
            | {c.node_id for c in claims}
            | {h.node_id for h in homes},
        )
    return render(request, "population/list.html", {
        "persons": persons, "buildings": buildings, "households": homes, "claims": claims, "children": children, "here": here,
        "names": names, "kinds": KINDS, "kind": kind, "q": q,
        "may_manage": _allowed(request, "population.manage", node.path),
        "may_reveal": _allowed(request, "privacy.reveal", node.path)})  # fmt: skip


def _person(request: Request, s: Any) -> Person:
    person = s.get(Person, request.path_params["person_id"])
    if person is None:
        raise NotFound("人员不存在")
    require(request, "population.view", person.node_path)
    return person  # type: ignore[no-any-return]


@requires("population.view")
def person_detail(request: Request) -> Response:
    """One person: masked fields, household, residence, grid and kind history, the reveal form
    and (with population.manage) the edit, kind and move-in/out forms."""
    from yiwang_population.manage import person_context

    with read(request) as s:
        person = _person(request, s)
        ctx = person_context(request, s, person)
    return render(request, "population/person.html", ctx)


@requires("population.view")
async def person_reveal(request: Request) -> Response:
    """``POST …/persons/{id}/reveal`` (field, purpose): the plain value, audited."""
    form = await request.form()
    field = str(form.get("field", ""))
    purpose = str(form.get("purpose", ""))
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_reveal, request, field, purpose)


def _reveal(request: Request, field: str, purpose: str) -> Response:
    try:
        with write(request) as s:
            person = _person(request, s)
            if field not in REVEALABLE:
                raise ValidationError("无法查看", ["只能查看公民身份号码或联系电话"])
            allowed = _allowed(request, "privacy.reveal", person.node_path)
            plain = reveal(s, actor(request), person, field, purpose, allowed=allowed)
    except ValidationError as err:
        return render(request, "population/_revealed.html", {"error": err}, status_code=422)
    return render(
        request,
        "population/_revealed.html",
        {"value": plain, "title": REVEALABLE[field], "error": None},
    )


@requires("population.view")
def building_detail(request: Request) -> Response:
    """A building: floors × rooms with current occupants (names masked), the add-house form."""
    from yiwang_population.manage import building_context

    with read(request) as s:
        building = s.get(Building, request.path_params["building_id"])
        if building is None:
            raise NotFound("楼栋不存在")
        require(request, "population.view", building.node_path)
        ctx = building_context(request, s, building)
    return render(request, "population/building.html", ctx)


# --- import / export (see importer.py, exporter.py, runs.py) ----------------------------------

MAX_UPLOAD = 50 * 1024 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _download(data: bytes, filename: str, media_type: str) -> Response:
    from urllib.parse import quote

    disposition = f"attachment; filename*=UTF-8''{quote(filename)}"
    return Response(data, media_type=media_type, headers={"Content-Disposition": disposition})


@requires("population.manage")
def import_template(request: Request) -> Response:
    """``…/import/template.xlsx`` or ``.csv``: the import template."""
    if request.path_params["fmt"] == "csv":
        return _download(importer.template_csv(), "实有人口导入模板.csv", "text/csv; charset=utf-8")
    return _download(importer.template_xlsx(), "实有人口导入模板.xlsx", XLSX)


def _writable(request: Request) -> Callable[[str], bool]:
    """Where this import may write: grids in the current node's subtree where the user holds
    ``population.manage`` (decided in the request, used by the background run)."""
    node = current_node(request)
    who = principal(request)
    if node is None or who is None:
        raise NotFound("尚无网格数据")
    authz, grants, root = kernel(request).authz, who.grants, node.path
    return lambda path: is_within(path, root) and authz.allowed(grants, "population.manage", path)


def _runs_of(request: Request) -> list[ImportRun]:
    who = principal(request)
    with read(request) as s:
        stmt = select(ImportRun).where(col(ImportRun.user_id) == (who.user_id if who else -1))
        return list(s.scalars(stmt.order_by(col(ImportRun.id).desc()).limit(10)))


def _form_page(request: Request, error: Any = None, status_code: int = 200) -> Response:
    return render(request, "population/import.html", {"modes": importer.MODES, "runs": _runs_of(request),
                  "error": error, "columns": importer.COLUMNS}, status_code=status_code)  # fmt: skip


@requires("population.manage")
async def import_page(request: Request) -> Response:
    """``GET``: the upload form; ``POST`` (file, mode): store and check the file, then show
    its preview (``/import/{id}``)."""
    if request.method == "GET":
        return await run_in_threadpool(_form_page, request)
    async with request.form(max_files=1) as form:  # closes the spooled upload
        upload = form.get("file")
        mode = str(form.get("mode", "upsert"))
        if not isinstance(upload, UploadFile) or not upload.filename:
            error = ValidationError("请选择要上传的文件")
            return await run_in_threadpool(_form_page, request, error, 422)
        return await run_in_threadpool(_upload, request, upload.filename, upload.file, mode)


def _save(source: BinaryIO, path: Path) -> None:
    """Copy the upload to ``path`` in chunks, refusing files over ``MAX_UPLOAD``."""
    size = 0
    with path.open("wb") as out:
        while chunk := source.read(1 << 20):
            size += len(chunk)
            if size > MAX_UPLOAD:
                raise ValidationError(f"文件过大（最多 {MAX_UPLOAD // 1024 // 1024} MB）")
            out.write(chunk)


def _upload(request: Request, filename: str, source: BinaryIO, mode: str) -> Response:
    try:
        fmt = importer.detect_format(filename)
        if mode not in importer.MODES:
            raise ValidationError("请选择导入方式")
    except ValidationError as err:
        return _form_page(request, err, 422)
    allowed = _writable(request)
    node = current_node(request)
    who = principal(request)
    k = kernel(request)
    runs.clean_old(k)
    with write(request) as s:
        run = ImportRun(user_id=who.user_id if who else None, node_id=node.id if node else 0,
                        filename=filename[-200:], fmt=fmt, mode=mode)  # fmt: skip
        s.add(run)
        s.flush()
        path = runs.file_of(k, run)
    failed: ValidationError | None = None
    plan = None
    try:
        _save(source, path)
        with read(request) as r:  # a read: a large file must not hold the write lock
            plan = importer.check(r, path, fmt, mode=mode, allowed=allowed)
    except ValidationError as err:
        path.unlink(missing_ok=True)
        failed = err
    with write(request) as s:
        run = s.get_one(ImportRun, run.id)
        if plan is not None:
            runs.store_plan(run, plan)
        else:
            run.status, run.message = "failed", str(failed).splitlines()[0][:500]
            run.finished_at = datetime.now(UTC)
        s.add(run)
        run_id = run.id
    if failed is not None:
        return _form_page(request, failed, 422)
    return RedirectResponse(
        request.url_for("population:import_run", run_id=run_id), status_code=303
    )


def _run(request: Request, s: Any) -> ImportRun:
    run = s.get(ImportRun, request.path_params["run_id"])
    who = principal(request)
    if run is None or who is None or run.user_id != who.user_id:
        raise NotFound("导入记录不存在")
    return run  # type: ignore[no-any-return]


def _run_context(request: Request) -> dict[str, Any]:
    with read(request) as s:
        run = _run(request, s)
    listed = json.loads(run.errors)
    errors = [e for e in listed if not e.get("warning")]
    warnings = [e for e in listed if e.get("warning")]
    return {"run": run, "errors": errors, "warnings": warnings, "done": runs.progress(run),
            "modes": importer.MODES}  # fmt: skip


@requires("population.manage")
def import_run(request: Request) -> Response:
    """An import: its preview (counts, per-row errors, confirm) while pending, its progress
    (polled by htmx) while running, its outcome when done or failed."""
    return render(request, "population/import_run.html", _run_context(request))


@requires("population.manage")
def import_progress(request: Request) -> Response:
    """The progress fragment the run page polls every second until the run ends."""
    html = render_fragment(request, "population/_import_progress.html", _run_context(request))
    return HTMLResponse(html)


@requires("population.manage")
def import_confirm(request: Request) -> Response:
    """``POST``: apply a checked import in the background (all rows in one transaction)."""
    allowed = _writable(request)
    with write(request) as s:
        run = _run(request, s)
        if run.status != "pending":
            raise ValidationError("该导入已确认过，请重新上传文件")
        if run.error_count:
            raise ValidationError("文件中有错误的行，请修改后重新上传")
        run.status = "running"
        s.add(run)
        run_id = run.id or 0
    runs.start(kernel(request), run_id, actor(request), allowed)
    return RedirectResponse(
        request.url_for("population:import_run", run_id=run_id), status_code=303
    )


@requires("population.manage")
def import_errors(request: Request) -> Response:
    """The uploaded rows with an 错误说明 column (xlsx)."""
    allowed = _writable(request)
    k = kernel(request)
    with read(request) as s:
        run = _run(request, s)
        path = runs.file_of(k, run)
        if not path.exists():
            raise NotFound("上传的文件已清理，请重新上传")
        buf = io.BytesIO()
        importer.error_report(s, path, run.fmt, mode=run.mode, allowed=allowed, out=buf)
    return _download(buf.getvalue(), f"导入错误报告-{run.id}.xlsx", XLSX)


@requires("population.view")
async def export(request: Request) -> Response:
    """``export.xlsx`` / ``export.csv`` of the list's filter (kind, q) in the user's subtree,
    masked; ``POST`` with a purpose exports plain values for a user holding privacy.reveal."""
    params = dict(request.query_params)
    if request.method == "POST":
        async with request.form(max_files=0) as form:
            params |= {k: str(v) for k, v in form.items()}
    return await run_in_threadpool(_export, request, request.path_params["fmt"], params,
                                   request.method == "POST")  # fmt: skip


def _export(request: Request, fmt: str, params: dict[str, str], revealed: bool) -> Response:
    node = current_node(request)
    if node is None:
        raise NotFound("尚无网格数据")
    conds = service.persons_filter(node.path, _scope(request, "population.view", Person.node_path),
                                   kind=params.get("kind", ""), name=params.get("q", ""))  # fmt: skip
    with write(request) as s:
        if revealed:  # refuse before reading anything
            audit_reveal(s, actor(request), object_type="population_person", object_id="export",
                         fields=list(exporter.REVEALED), purpose=params.get("purpose", ""),
                         allowed=_allowed(request, "privacy.reveal", node.path),
                         detail={"format": fmt, "node": node.code})  # fmt: skip
        rows = exporter.rows(s, conds, reveal=revealed)
        data, n = exporter.to_csv(rows) if fmt == "csv" else exporter.to_xlsx(rows)
        audit(s, "population.export", actor=actor(request), object_type="population_person",
              object_id="export", detail={"format": fmt, "node": node.code, "count": n,
                                          "masked": not revealed})  # fmt: skip
    name = f"实有人口-{node.code}.{fmt}"
    return _download(data, name, "text/csv; charset=utf-8" if fmt == "csv" else XLSX)


routes = [
    Route("/", person_list, name="list"),
    Route("/import/template.{fmt:str}", import_template, name="import_template"),
    Route("/import", import_page, methods=["GET", "POST"], name="import"),
    Route("/import/{run_id:int}", import_run, name="import_run"),
    Route("/import/{run_id:int}/progress", import_progress, name="import_progress"),
    Route("/import/{run_id:int}/confirm", import_confirm, methods=["POST"], name="import_confirm"),
    Route("/import/{run_id:int}/errors.xlsx", import_errors, name="import_errors"),
    Route("/export.{fmt:str}", export, methods=["GET", "POST"], name="export"),
    Route("/persons/{person_id:int}", person_detail, name="person"),
    Route("/persons/{person_id:int}/reveal", person_reveal, methods=["POST"], name="reveal"),
    Route("/buildings/{building_id:int}", building_detail, name="building"),
]
