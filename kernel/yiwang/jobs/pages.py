"""定时任务: every declared job's schedule and last run, and "立即运行" (audited ``jobs.run``).

Jobs act on the whole platform, so ``jobs.manage`` must hold at every root of the net.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from yiwang import audit
from yiwang.admin.common import actor, read_form, render, require_global
from yiwang.errors import ValidationError
from yiwang.jobs.declarations import describe_every
from yiwang.jobs.schedule import job_states, new_owner, run_job, utcnow
from yiwang.rbac.guard import requires
from yiwang.web.context import current_node, kernel_of


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/jobs", jobs_page, methods=["GET"], name="admin:jobs"),
        Route("/admin/jobs/{job:str}/run", job_run, methods=["POST"], name="admin:job_run"),
    ]


def _page(request: Request, problems: list[str], status: int = 200) -> Response:
    kernel = kernel_of(request)
    with kernel.db.read() as s:
        require_global(request, s, "jobs.manage")
    now = utcnow()
    states = job_states(kernel)
    rows: list[dict[str, Any]] = [
        {"s": st, "every": describe_every(st.job.every), "running": st.running(now), "outcome": st.outcome}
        for st in states
    ]
    ran = request.query_params.get("ran", "")
    message = next((f"已运行「{r['s'].job.title}」：{r['outcome']}" for r in rows if r["s"].job.name == ran), "")
    return render(
        request,
        "admin/jobs.html",
        {"rows": rows, "problems": problems, "message": message},
        status_code=status,
        node=current_node(request),
    )


@requires("jobs.manage")
def jobs_page(request: Request) -> Response:
    return _page(request, [])


@requires("jobs.manage")
async def job_run(request: Request) -> Response:
    await read_form(request)
    return await run_in_threadpool(_run, request)


def _run(request: Request) -> Response:
    """Run the job now (its schedule is kept), then record who ran it and how it went."""
    kernel = kernel_of(request)
    name: str = request.path_params["job"]
    with kernel.db.read() as s:
        require_global(request, s, "jobs.manage")
    try:
        run = run_job(kernel, name, owner=new_owner("web"), force=True)
    except ValidationError as exc:
        return _page(request, [str(exc)], 409)
    if run is None:  # its lease ended between the claim and the look: nothing ran
        return _page(request, ["任务刚刚结束运行，请重试"], 409)
    audit.record_now(
        kernel.db, "jobs.run", actor=actor(request), object_type="job", object_id=name,
        result="ok" if run.ok else "failed", detail={"result": run.result, "error": run.error},
    )  # fmt: skip
    url = request.url_for("admin:jobs").include_query_params(ran=name)
    return RedirectResponse(str(url), status_code=303)
