"""事件办理: the staff pages of the case lifecycle (docs/cases.md).

- ``/cases/`` the inbox (待办/已办/超期/全部) with a search that lives in the URL, column choice,
  saved queries, bulk actions and the xlsx export (``yiwang.cases.inbox``);
- ``/cases/{id}`` a case: its fields (personal data masked), clock, attachments, timeline and
  the forms of the actions the user may take now; ``/cases/{id}/print`` the same on A4;
- ``/cases/{id}/act/{action}`` takes an action through the engine (optimistic: the form
  carries the case version it was rendered with, a stale one is "已被他人处理");
- ``/cases/new`` a staff report (their own, or a citizen's by phone), offering likely
  duplicates first and idempotent against double submits;
- ``/admin/routing`` the routing rules (分级流转规则) of a node.

Only the engine changes cases; these pages read, ask and show. Every case named in a path is
checked with ``engine.may_view`` (403) and every node or rule named in a form with ``require``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from yiwang import audit
from yiwang.admin.common import in_jurisdiction, node_by_code, tree_context
from yiwang.auth.models import User
from yiwang.cases import engine, forms, queries
from yiwang.cases.api import doer_of
from yiwang.cases.engine import COPY, STEP, Doer
from yiwang.cases.models import (
    CARDS,
    CHANNELS,
    CLOSE_TYPES,
    SCALE,
    SUPERVISION,
    URGENCY,
    Case,
    CaseStep,
    RoutingRule,
)
from yiwang.cases.routing import (
    DEFAULT_LEVEL,
    NODE,
    ORG,
    RULE,
    OrgRow,
    dispatch_targets,
    orgs,
    validate_rule,
)
from yiwang.cases.workflow import Action, CaseType, FormField, Workflow
from yiwang.dicts import labels as dictionary_labels
from yiwang.errors import Conflict, Forbidden, NotFound, ValidationError
from yiwang.grid.levels import Level
from yiwang.grid.models import Node
from yiwang.grid.tree import ancestor_ids, within
from yiwang.privacy.masking import mask, mask_text
from yiwang.rbac.guard import require, requires
from yiwang.web.context import actor, current_node, kernel_of, principal

USER = User.__table__  # type: ignore[attr-defined]

#: A select of grids on the report form up to this many; beyond, a code input with suggestions.
MAX_GRID_CHOICES = 300
#: The levels a routing rule may send cases to.
RULE_LEVELS = (Level.PROVINCE, Level.CITY, Level.COUNTY, Level.TOWNSHIP, Level.COMMUNITY)
CLOCK_TITLES = {"accept": "受理时限", "handle": "处置时限"}
#: Timeline steps the clock writes, highlighted.
CARD_STEPS = {"card_yellow": "yellow", "card_red": "red", "overdue": "overdue"}


def routes() -> list[BaseRoute]:
    """The case pages and the routing-rule page (mounted at the root by ``builtin``)."""
    from yiwang.cases import inbox

    return [
        *inbox.routes(),
        Route("/cases/new", new_form, methods=["GET"], name="cases:new"),
        Route("/cases/new", new_submit, methods=["POST"], name="cases:create"),
        Route("/cases/{case_id:int}", detail, methods=["GET"], name="cases:detail"),
        Route("/cases/{case_id:int}/print", print_view, methods=["GET"], name="cases:print"),
        Route(
            "/cases/{case_id:int}/files/{file_id:int}",
            case_file,
            methods=["GET"],
            name="cases:file",
        ),
        Route("/cases/{case_id:int}/act/{action:str}", act, methods=["POST"], name="cases:act"),
        Route("/admin/routing", routing_page, methods=["GET"], name="cases:routing"),
        Route("/admin/routing", routing_set, methods=["POST"], name="cases:routing_set"),
        Route(
            "/admin/routing/{rule_id:int}/delete",
            routing_delete,
            methods=["POST"],
            name="cases:routing_delete",
        ),  # fmt: skip
    ]


# --- shared --------------------------------------------------------------------------------------


def render(request: Request, name: str, context: dict[str, Any], *, status_code: int = 200,
           node: Any = None) -> Response:  # fmt: skip
    kernel = kernel_of(request)
    where = current_node(request)
    path = where.path if where is not None else None
    # Urgencies are a dictionary a province may rename: translated here, kept plain text (escaped).
    catalogs = kernel.templates.catalogs
    translate = catalogs.translations(catalogs.choose(request)).gettext
    urgency = {k: translate(v) if v else v for k, v in dictionary_labels(kernel, "cases.urgency", path).items()}
    ctx = {"local": forms.local, "urgency_names": urgency,
           "scale_names": dictionary_labels(kernel, "cases.scale", path), "card_names": CARDS,
           "supervision_names": SUPERVISION, "channel_names": CHANNELS, **context}  # fmt: skip
    return kernel.templates.render(request, name, ctx, status_code=status_code, node=node)


def hx_target(request: Request) -> str:
    """The element an htmx request will swap ("" for a full page or history restore)."""
    if request.headers.get("HX-Request") != "true" or request.headers.get(
        "HX-History-Restore-Request"
    ):
        return ""
    return request.headers.get("HX-Target", "")


def go(request: Request, url: str) -> Response:
    """After a change: 303 to ``url``, or for htmx a full navigation there (``HX-Redirect``)."""
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=200, headers={"HX-Redirect": url, "Vary": "HX-Request"})
    return RedirectResponse(url, status_code=303)


def visible_case(kernel: Any, s: Session, doer: Doer, case_id: int) -> Case:
    case = s.get(Case, case_id)
    if case is None:
        raise NotFound(f"事件不存在（编号 {case_id}）")
    if not engine.may_view(kernel, s, doer, case):
        raise Forbidden("该事件不在您的辖区内")
    return case


def state_titles(kernel: Any) -> dict[str, str]:
    """State name → title over every declared workflow (lists mix workflows)."""
    out: dict[str, str] = {}
    for wf in kernel.cases.workflows.values():
        for st in wf.states:
            out.setdefault(st.name, st.title)
    return out


def types_by_category(kernel: Any) -> dict[str, list[CaseType]]:
    out: dict[str, list[CaseType]] = {}
    for ct in sorted(kernel.cases.types.values(), key=lambda t: (t.category or "其他", t.title)):
        out.setdefault(ct.category or "其他", []).append(ct)
    return out


def choice_label(f: FormField, value: Any) -> str:
    for v, label in f.choices:
        if v == str(value):
            return label
    return str(value)


# --- one case ------------------------------------------------------------------------------------


@dataclass
class ActionForm:
    """An action the user may take, with the choices its form offers."""

    action: Action
    targets: list[OrgRow] = field(default_factory=list)
    assignees: list[tuple[int, str]] = field(default_factory=list)
    copy_choices: list[OrgRow] = field(default_factory=list)


@dataclass(frozen=True)
class StepView:
    seq: int
    title: str
    action: str
    finished_at: datetime
    from_state: str
    to_state: str
    from_org: str
    to_org: str
    actor: str
    opinion: str
    notes: list[str]
    files: list[Any]
    card: str


def detail_context(kernel: Any, s: Session, doer: Doer, case: Case) -> dict[str, Any]:
    """Everything the detail and print pages show of ``case``."""
    from yiwang.files import files_of

    wf = engine.workflow_of(kernel, s, case)
    ct = kernel.cases.types.get(case.case_type)
    node = s.get(Node, case.node_id)
    by_seq = select(CaseStep).where(STEP.c.case_id == case.id).order_by(STEP.c.seq)
    steps = list(s.execute(by_seq).scalars())
    datas = {st.id: _loads(st.data) for st in steps}
    org_ids = {case.org_id, *(st.from_org_id for st in steps), *(st.to_org_id for st in steps)}
    copied = list(s.execute(select(COPY.c.org_id).where(COPY.c.case_id == case.id)).scalars())
    names = {i: o.name for i, o in orgs(s, sorted({i for i in (*org_ids, *copied) if i})).items()}
    user_ids = {case.assignee_id, *(d.get("assignee") for d in datas.values())}
    wanted = [u for u in user_ids if isinstance(u, int)]
    users = {
        r.id: r.display_name or r.username
        for r in s.execute(select(User).where(USER.c.id.in_(wanted))).scalars()
    }
    files = files_of(s, "case", int(case.id or 0))
    by_step: dict[int | None, list[Any]] = {}
    for f in files:
        by_step.setdefault(f.owner_ref, []).append(f)
    timeline = [
        _step_view(wf, st, datas[st.id], names, users, by_step.get(st.id, [])) for st in steps
    ]
    extra = _loads(case.extra)
    extra_rows = [
        (f.label, choice_label(f, extra[f.name]))
        for f in (ct.fields if ct else ())
        if f.name in extra
    ]
    available = engine.available(kernel, s, doer, case)
    return {
        "case": case,
        "wf": wf,
        "state_title": _state_title(wf, case.state),
        "type_title": ct.title if ct else case.case_type,
        "category": ct.category if ct else "",
        "node_name": node.name if node else "—",
        "node_code": node.code if node else "",
        "node_geometry": node.geometry if node and node.geometry else "",
        "holder": names.get(case.org_id or 0, "—"),
        "assignee": users.get(case.assignee_id or 0, ""),
        "copied": [names[i] for i in copied if i in names],
        "reporter_name": mask(case.reporter_name, "name"),
        "reporter_phone": mask(case.reporter_phone, "phone"),
        "title": mask_text(case.title),
        "description": mask_text(case.description),
        "extra_rows": extra_rows,
        "clock_title": CLOCK_TITLES.get(case.clock, ""),
        "close_type": CLOSE_TYPES.get(case.close_type, ""),
        "rating": _rating_label(wf, case.rating),
        "files": files,
        "timeline": timeline,
        "action_forms": _action_forms(kernel, s, case, available),
    }


def _loads(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _state_title(wf: Workflow, state: str) -> str:
    if not state:
        return ""
    try:
        return wf.state(state).title
    except KeyError:
        return state


def _rating_label(wf: Workflow, rating: int | None) -> str:
    if rating is None:
        return ""
    for a in wf.actions:
        for f in a.fields:
            if f.name == "rating" and f.choices:
                return f"{choice_label(f, rating)}（{rating}）"
    return str(rating)


def _step_view(wf: Workflow, st: CaseStep, data: dict[str, Any], names: Mapping[int, str],
               users: Mapping[int, str], files: list[Any]) -> StepView:  # fmt: skip
    notes: list[str] = []
    try:
        action: Action | None = wf.action(st.action)
    except KeyError:
        action = None
    shown: set[str] = set()
    for f in action.fields if action else ():
        if f.name in data:
            notes.append(f"{f.label}：{choice_label(f, data[f.name])}")
            shown.add(f.name)
    if "route_level" in data and st.action == "report":
        try:
            notes.append(f"承办层级：{Level(int(data['route_level'])).label}")
        except (ValueError, TypeError):
            pass
        notes.append(f"依流转规则 #{data['rule']}" if data.get("rule") else "依默认规则（按规模）")
    if data.get("copied"):
        notes.append("抄告：" + "、".join(str(n) for n in data["copied"]))
    if data.get("close_type") and "close_type" not in shown:
        notes.append(
            "结案方式：" + CLOSE_TYPES.get(str(data["close_type"]), str(data["close_type"]))
        )
    if "days" in data and "days" not in shown:
        notes.append(f"延期 {data['days']} 个工作日")
    if data.get("due_at"):
        try:
            notes.append("新期限：" + forms.local(datetime.fromisoformat(str(data["due_at"]))))
        except ValueError:
            pass
    if data.get("card"):
        notes.append("亮牌：" + CARDS.get(str(data["card"]), str(data["card"])))
    if data.get("assignee"):
        notes.append("承办人：" + users.get(int(data["assignee"]), "（已删除的用户）"))
    return StepView(
        seq=st.seq, title=st.title, action=st.action, finished_at=st.finished_at,
        from_state=_state_title(wf, st.from_state), to_state=_state_title(wf, st.to_state),
        from_org=names.get(st.from_org_id or 0, ""), to_org=names.get(st.to_org_id or 0, ""),
        actor=st.actor_name, opinion=mask_text(st.opinion), notes=notes, files=files,
        card=CARD_STEPS.get(st.action, ""),
    )  # fmt: skip


def _action_forms(
    kernel: Any, s: Session, case: Case, available: Sequence[Action]
) -> list[ActionForm]:
    holder = orgs(s, [case.org_id]).get(case.org_id) if case.org_id else None
    out = []
    targets: list[OrgRow] | None = None
    for a in available:
        form = ActionForm(a)
        if a.route in ("down", "copy") and holder is not None:
            targets = dispatch_targets(s, holder) if targets is None else targets
            if a.route == "down":
                form.targets = targets
                form.assignees = handlers_in(kernel, s, holder.path)
            else:
                form.copy_choices = copy_choices(s, holder, targets)
        out.append(form)
    return out


def handlers_in(kernel: Any, s: Session, path: str, *, limit: int = 500) -> list[tuple[int, str]]:
    """Users assigned inside ``path`` whose role may handle cases (承办人 choices)."""
    from yiwang.rbac.models import Assignment

    rows = s.execute(
        select(User.id, User.display_name, User.username, Assignment.role)  # type: ignore[call-overload]
        .join_from(Assignment, Node, Node.id == Assignment.node_id)
        .join(User, User.id == Assignment.user_id)
        .where(within(Node.path, path), User.active)
        .order_by(Node.path, User.username)
        .limit(limit)
    ).all()
    seen: dict[int, str] = {}
    for uid, name, username, role in rows:
        if uid not in seen and kernel.authz.role_allows(role, "cases.handle"):
            seen[uid] = f"{name or username}（{username}）"
    return list(seen.items())


def copy_choices(s: Session, holder: OrgRow, targets: Sequence[OrgRow]) -> list[OrgRow]:
    """Units a case may be copied to: those it could be dispatched to, and the member
    departments on the nodes above the holder (a county's police for a community's case)."""
    above = ancestor_ids(holder.path)[:-1]
    ids = s.execute(
        select(ORG.c.id).where(ORG.c.node_id.in_(above), ORG.c.kind == "department", ORG.c.active)
    ).scalars()
    found = orgs(s, list(ids))
    ups = sorted(found.values(), key=lambda o: (-o.level, o.name))
    return [*ups, *(t for t in targets if t.id not in found)]


def detail_page(
    request: Request, case_id: int, *, failed: str = "", heading: str = "", problems: Sequence[str] = (),
    values: Mapping[str, Any] | None = None, conflict: str = "", status: int = 200, template: str = "cases/detail.html",
    context: Mapping[str, Any] | None = None,
) -> Response:  # fmt: skip
    """A case's page (``template``: the staff detail, its print sheet, the mobile task page)."""
    kernel = kernel_of(request)
    doer = doer_of(request)
    with kernel.db.read() as s:
        case = visible_case(kernel, s, doer, case_id)
        ctx = detail_context(kernel, s, doer, case)
    ctx |= {"failed": failed, "heading": heading, "problems": list(problems), "values": dict(values or {}),
            "conflict": conflict, "max_files": forms.MAX_FILES, "now": engine.utcnow(), **(context or {})}  # fmt: skip
    return render(request, template, ctx, status_code=status)


@requires("cases.view")
def detail(request: Request) -> Response:
    return detail_page(request, int(request.path_params["case_id"]))


@requires("cases.view")
def print_view(request: Request) -> Response:
    return detail_page(request, int(request.path_params["case_id"]), template="cases/print.html")


@requires("cases.view")
def case_file(request: Request) -> Response:
    """An attachment of a case, to those who may view the case."""
    from yiwang.files import file_response, get_file

    kernel = kernel_of(request)
    doer = doer_of(request)
    with kernel.db.read() as s:
        case = visible_case(kernel, s, doer, int(request.path_params["case_id"]))
        stored = get_file(s, int(request.path_params["file_id"]))
        if stored.owner_type != "case" or stored.owner_id != case.id:
            raise NotFound("附件不存在")
    return file_response(kernel, stored, download=request.query_params.get("download") == "1")


# --- acting --------------------------------------------------------------------------------------


@requires("cases.view")
async def act(request: Request) -> Response:
    form = await forms.read_submitted(request, kernel_of(request))
    return await run_in_threadpool(_act, request, form)


def _act(request: Request, form: forms.Submitted) -> Response:
    case_id = int(request.path_params["case_id"])
    done = act_from_form(request, form, case_id, str(request.path_params["action"]))
    if done.ok:
        return go(request, str(request.url_for("cases:detail", case_id=case_id).path))
    return detail_page(request, case_id, **done.page())


@dataclass
class Acted:
    """What an action submitted from a form came to: done, or what to show beside the form
    (the failed action's name, its problems and the input to keep; or a conflict)."""

    ok: bool = False
    failed: str = ""
    heading: str = ""
    problems: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    conflict: str = ""
    status: int = 200

    def page(self) -> dict[str, Any]:
        """Keyword arguments of ``detail_page`` showing this outcome."""
        return {"failed": self.failed, "heading": self.heading, "problems": self.problems,
                "values": self.values, "conflict": self.conflict, "status": self.status}  # fmt: skip


def act_from_form(request: Request, form: forms.Submitted, case_id: int, name: str) -> Acted:
    """Take action ``name`` on a case from a submitted form, through the engine — the one path
    of the staff and the mobile pages. Raises NotFound / Forbidden for a case or an action the
    user may not reach; everything else is an ``Acted`` to render."""
    kernel = kernel_of(request)
    doer = doer_of(request)
    with kernel.db.read() as s:
        case = visible_case(kernel, s, doer, case_id)
        wf = engine.workflow_of(kernel, s, case)
        try:
            action = wf.action(name)
        except KeyError:
            raise NotFound(f"流程中没有此操作: {name}") from None
        allowed_copies: set[int] = set()
        if action.route == "copy" and case.org_id:
            holder = orgs(s, [case.org_id]).get(case.org_id)
            if holder is not None:
                allowed_copies = {
                    int(o.id or 0) for o in copy_choices(s, holder, dispatch_targets(s, holder))
                }
    problems = list(form.problems)
    version = forms.positive_int(form.get("version"))
    if version is None:
        problems.append("表单缺少事件版本，请刷新页面后重试")
    given = forms.action_input(action, form, problems)
    if any(i not in allowed_copies for i in given.copy_orgs):
        problems.append("所选抄告单位不在可选范围内")
    kept = forms.form_values(form)
    if problems:
        return Acted(failed=name, heading=f"无法{action.title}", problems=problems, values=kept, status=422)
    try:
        given.files = engine.prepare_uploads(kernel, given.files)  # outside the write unit
        with kernel.db.write() as s:
            engine.act(kernel, s, doer, case_id, name, given, version=version)
    except Conflict as exc:
        return Acted(conflict=str(exc) or engine.CONFLICT_MESSAGE, status=409)
    except ValidationError as exc:
        heading = exc.args[0] if exc.problems else f"无法{action.title}"
        return Acted(failed=name, heading=heading, problems=exc.problems or [exc.args[0]], values=kept,
                     status=422)  # fmt: skip
    return Acted(ok=True)


# --- reporting -----------------------------------------------------------------------------------


def report_nodes(kernel: Any, s: Session, grants: Sequence[Any]) -> tuple[list[Any], bool]:
    """Where the user may report: the grids of their jurisdiction (or, with none, the nodes they
    are assigned at), and whether there were too many to list in full."""
    paths = kernel.authz.scope_paths(grants, "cases.report")
    if not paths:
        return [], False
    cols = (NODE.c.code, NODE.c.name, NODE.c.path, NODE.c.lat, NODE.c.lon)
    rows = s.execute(
        select(*cols).where(or_(*(within(NODE.c.path, p) for p in paths)), NODE.c.level == Level.GRID)
        .order_by(NODE.c.path).limit(MAX_GRID_CHOICES + 1)
    ).all()  # fmt: skip
    if not rows:
        rows = s.execute(select(*cols).where(NODE.c.path.in_(paths)).order_by(NODE.c.path)).all()
    return list(rows[:MAX_GRID_CHOICES]), len(rows) > MAX_GRID_CHOICES


def _new_page(request: Request, values: Mapping[str, Any], *, problems: Sequence[str] = (),
              heading: str = "", similar: Sequence[Mapping[str, Any]] = (), status: int = 200) -> Response:  # fmt: skip
    kernel = kernel_of(request)
    who = principal(request)
    assert who is not None
    with kernel.db.read() as s:
        nodes, truncated = report_nodes(kernel, s, who.grants)
    values = {"channel": "web", "urgency": "normal", "scale": "small", "coord": "wgs84", **values}
    extra = {"channels": {c: CHANNELS[c] for c in forms.STAFF_CHANNELS}, "coords": forms.COORDS}
    return report_page(request, "cases/new.html", values, nodes, truncated, problems=problems,
                       heading=heading, similar=similar, status=status, extra=extra)  # fmt: skip


def report_page(request: Request, template: str, values: Mapping[str, Any], nodes: Sequence[Any],
                truncated: bool, *, problems: Sequence[str], heading: str, similar: Sequence[Mapping[str, Any]],
                status: int, extra: Mapping[str, Any] | None = None) -> Response:  # fmt: skip
    """A report form (the staff page's or the phone's) with its choices; the type swap
    (``HX-Target: type-fields``) gets the type's own fields only. A form without an
    idempotency key gets one: a double submit of it makes one case."""
    kernel = kernel_of(request)
    if not values.get("channel_key"):
        values = {**values, "channel_key": secrets.token_urlsafe(18)}
    ct = kernel.cases.types.get(str(values.get("case_type", "")))
    states = state_titles(kernel)
    ctx = {
        "values": values, "problems": list(problems), "heading": heading, "nodes": nodes,
        "truncated": truncated, "types": types_by_category(kernel), "type_fields": ct.fields if ct else (),
        "similar": [{**c, "state_title": states.get(c["state"], c["state"])} for c in similar],
        "max_files": forms.MAX_FILES, **(extra or {}),
    }  # fmt: skip
    if hx_target(request) == "type-fields":
        return render(request, "cases/_type_fields.html", ctx)
    return render(request, template, ctx, status_code=status)


@requires("cases.report")
def new_form(request: Request) -> Response:
    # The query only preselects (a link from a grid page, or the type swap): nothing is trusted.
    keep = ("case_type", "node", "channel")
    return _new_page(
        request, {k: request.query_params[k] for k in keep if k in request.query_params}
    )


@requires("cases.report")
async def new_submit(request: Request) -> Response:
    form = await forms.read_submitted(request, kernel_of(request))
    return await run_in_threadpool(_create, request, form)


def _create(request: Request, form: forms.Submitted) -> Response:
    done = report_from_form(request, form)
    if done.case_id is not None:
        return go(request, str(request.url_for("cases:detail", case_id=done.case_id).path))
    return _new_page(request, forms.form_values(form), heading=done.heading, problems=done.problems,
                     similar=done.similar, status=done.status)  # fmt: skip


@dataclass
class Reported:
    """What a submitted report form came to: the case (new, or the one its idempotency key
    already made), or the problems or likely duplicates to show beside the form."""

    case_id: int | None = None
    heading: str = ""
    problems: list[str] = field(default_factory=list)
    similar: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> int:
        return 422 if self.problems else 200


def report_from_form(request: Request, form: forms.Submitted, *, channel: str | None = None,
                     kinds: Collection[str] | None = None) -> Reported:  # fmt: skip
    """Report a case from a submitted form through the engine — the one path of the staff and
    the mobile pages. ``channel`` fixes the channel (else the form's, one of STAFF_CHANNELS);
    ``kinds`` limits the attachments to those file kinds (the phone's photos: ``{"image"}``).

    A form whose key (``channel_key``) already made a case finds that case — if the user may see
    it (Forbidden otherwise) — without asking about duplicates; a new one with a location is
    first checked for likely duplicates unless ``confirm_new`` is set."""
    kernel = kernel_of(request)
    doer = doer_of(request)
    who = principal(request)
    assert who is not None
    problems = list(form.problems)
    code = form.get("node")
    with kernel.db.read() as s:
        node = node_by_code(s, code) if code else None
    if not code:
        problems.append("请选择事发网格")
    elif node is None or not kernel.authz.allowed(who.grants, "cases.report", node.path):
        problems.append(f"事发网格 {code} 不存在或不在您的上报范围内")
    new = forms.new_case(kernel, form, node.id if node else 0, problems, channel=channel)
    if problems:
        return Reported(heading="上报信息有误", problems=problems)
    if new.channel_key:
        with kernel.db.read() as s:
            found = engine.by_channel_key(s, new.channel, new.channel_key)
            if found is not None:  # the same form sent again: the first submission's case
                return Reported(case_id=int(engine.retried_case(kernel, s, doer, found).id or 0))
    if (
        form.get("confirm_new") != "1"
        and new.lat is not None
        and new.lon is not None
        and new.case_type in kernel.cases.types
    ):
        lat, lon = forms.to_wgs84(new.lat, new.lon, new.coord)
        with kernel.db.read() as s:
            candidates = queries.similar(
                s,
                queries.view_scope(kernel, who.grants, who.user_id),
                new.case_type,
                lat,
                lon,
                now=engine.utcnow(),
            )
        if candidates:
            return Reported(similar=candidates)
    try:
        prepared = engine.prepare_uploads(kernel, new.files)  # outside the write unit
        wrong = [f for f in prepared if kinds is not None and f.type.kind not in kinds]
        if wrong:
            return Reported(heading="上报信息有误", problems=[
                f"{f.name}：只能上传照片（JPEG、PNG、WebP），此文件为{f.type.label}" for f in wrong])  # fmt: skip
        new.files = prepared
        with kernel.db.write() as s:
            case, _ = engine.report(kernel, s, doer, new)
            return Reported(case_id=int(case.id or 0))
    except ValidationError as exc:
        heading = exc.args[0] if exc.problems else "上报信息有误"
        return Reported(heading=heading, problems=exc.problems or [exc.args[0]])


# --- routing rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleView:
    id: int
    node_name: str
    case_type: str
    urgency: str
    scale: str
    level: str
    departments: str
    note: str
    updated_at: datetime | None


def _rule_view(kernel: Any, r: Any, node_name: str, departments: Mapping[str, str]) -> RuleView:
    types = kernel.cases.types
    codes = [c for c in r.copy_departments.split(",") if c]
    try:
        level = Level(int(r.level)).label
    except ValueError:
        level = str(r.level)
    return RuleView(
        id=r.id, node_name=node_name,
        case_type=types[r.case_type].title if r.case_type in types else (r.case_type or "全部类型"),
        urgency=URGENCY.get(r.urgency, "全部") if r.urgency else "全部",
        scale=SCALE.get(r.scale, "全部") if r.scale else "全部",
        level=level, departments="、".join(departments.get(c, c) for c in codes) or "—",
        note=r.note, updated_at=r.updated_at,
    )  # fmt: skip


def department_choices(s: Session, p: Any, node: Any) -> dict[str, str]:
    """Department codes of member units in ``node``'s subtree and on the nodes above it, each
    labelled with the names of such units inside the viewer's jurisdiction."""
    rows = s.execute(
        select(ORG.c.department, ORG.c.name, NODE.c.path)
        .select_from(ORG.join(NODE, NODE.c.id == ORG.c.node_id))
        .where(ORG.c.kind == "department", ORG.c.active, ORG.c.department != "",
               or_(within(NODE.c.path, node.path), ORG.c.node_id.in_(ancestor_ids(node.path))))
        .order_by(ORG.c.department, NODE.c.level, ORG.c.name).limit(1000)
    ).all()  # fmt: skip
    names: dict[str, list[str]] = {}
    for code, name, path in rows:
        shown = names.setdefault(code, [])
        if in_jurisdiction(p, path) and name not in shown and len(shown) < 3:
            shown.append(name)
    return {code: f"{code}（{'、'.join(n)}）" if n else code for code, n in names.items()}


def _routing(request: Request, node: Any, *, problems: Sequence[str] = (), values: Mapping[str, Any] | None = None,
             status: int = 200) -> Response:  # fmt: skip
    kernel = kernel_of(request)
    p = principal(request)
    assert p is not None
    ctx: dict[str, Any] = {"current": node, "here": [], "inherited": [], "departments": {},
                           "trail": [], "children": [], "can_edit": False}  # fmt: skip
    if node is not None:
        with kernel.db.read() as s:
            departments = department_choices(s, p, node)
            above = ancestor_ids(node.path)
            rows = s.execute(
                select(RoutingRule, Node.name, Node.path)  # type: ignore[call-overload]
                .join(Node, Node.id == RoutingRule.node_id)
                .where(RoutingRule.node_id.in_(above))  # type: ignore[attr-defined]
                .order_by(Node.path, RoutingRule.case_type, RoutingRule.urgency, RoutingRule.scale)
            ).all()
            ctx |= tree_context(s, p, node)
        for rule, name, path in rows:
            # Nodes above the jurisdiction are not the viewer's to name.
            shown = name if in_jurisdiction(p, path) else "上级（辖区以外）"
            view = _rule_view(kernel, rule, shown, departments)
            (ctx["here"] if rule.node_id == node.id else ctx["inherited"]).append(view)
        ctx |= {"departments": departments,
                "can_edit": kernel.authz.allowed(p.grants, "cases.routing", node.path)}  # fmt: skip
    ctx |= {
        "problems": list(problems), "values": dict(values or {}), "types": types_by_category(kernel),
        "levels": [(int(lv), lv.label) for lv in RULE_LEVELS],
        "defaults": [(SCALE[k], Level(v).label) for k, v in DEFAULT_LEVEL.items()],
        "tree_route": "cases:routing",
    }  # fmt: skip
    return render(request, "cases/routing.html", ctx, status_code=status, node=node)


class _Duplicate(Exception):
    """A rule with the same conditions exists at the node."""


@requires("cases.routing")
def routing_page(request: Request) -> Response:
    return _routing(request, current_node(request))


@requires("cases.routing")
async def routing_set(request: Request) -> Response:
    form = await forms.read_submitted(request, kernel_of(request))
    return await run_in_threadpool(_routing_set, request, form)


def _routing_set(request: Request, form: forms.Submitted) -> Response:
    kernel = kernel_of(request)
    code = form.get("node")
    with kernel.db.read() as s:
        node = node_by_code(s, code) if code else None
    if node is None:
        return _routing(
            request, current_node(request), problems=["请选择设置规则的节点"], status=400
        )
    require(request, "cases.routing", node.path)
    p = principal(request)
    assert p is not None
    kept = forms.form_values(form)
    problems = list(form.problems)
    case_type, urgency, scale = form.get("case_type"), form.get("urgency"), form.get("scale")
    if case_type and case_type not in kernel.cases.types:
        problems.append(f"事件类型无效: {case_type}")
    level = 0
    if not form.get("level"):
        problems.append("请选择承办层级")
    else:
        try:
            level = int(Level.parse(form.get("level")))
        except ValueError:
            level = 0  # validate_rule names the levels allowed
        try:
            validate_rule(level, urgency, scale, node.level)
        except ValidationError as exc:
            problems += exc.problems or [exc.args[0]]
    with kernel.db.read() as s:
        known = department_choices(s, p, node)
    codes = list(dict.fromkeys(form.getlist("departments")))
    unknown = [c for c in codes if c not in known]
    if unknown:
        problems.append(f"成员单位代码无效: {'、'.join(unknown)}")
    departments = ",".join(codes)
    if len(departments) > 200:
        problems.append("抄告的成员单位过多")
    note = form.get("note")
    if len(note) > 200:
        problems.append("说明不能超过 200 个字")
    if problems:
        return _routing(request, node, problems=problems, values=kept, status=422)
    duplicate = ["本节点已有相同条件（事件类型、紧急程度、规模）的规则，请先删除原规则再设置"]
    try:
        with kernel.db.write() as s:
            same = s.execute(
                select(RULE.c.id).where(RULE.c.node_id == node.id, RULE.c.case_type == case_type,
                                        RULE.c.urgency == urgency, RULE.c.scale == scale)
            ).first()  # fmt: skip
            if same is not None:
                raise _Duplicate
            rule = RoutingRule(node_id=node.id, node_path=node.path, case_type=case_type, urgency=urgency,
                               scale=scale, level=level, copy_departments=departments, note=note,
                               updated_by=p.user_id)  # fmt: skip
            s.add(rule)
            s.flush()
            audit.record(s, "cases.routing.set", actor=actor(request), object_type="routing_rule",
                         object_id=int(rule.id or 0), detail={"node": node.code, "case_type": case_type, "urgency": urgency,
                                                    "scale": scale, "level": level, "departments": departments})  # fmt: skip
    except (_Duplicate, IntegrityError):  # IntegrityError: the same rule saved concurrently
        return _routing(request, node, problems=duplicate, values=kept, status=422)
    return go(request, f"{request.url_for('cases:routing').path}?{urlencode({'node': node.code})}")


@requires("cases.routing")
def routing_delete(request: Request) -> Response:
    kernel = kernel_of(request)
    rule_id = int(request.path_params["rule_id"])
    with kernel.db.write() as s:
        rule = s.get(RoutingRule, rule_id)
        if rule is None:
            raise NotFound(f"流转规则不存在（编号 {rule_id}）")
        require(request, "cases.routing", rule.node_path)
        code = s.execute(select(NODE.c.code).where(NODE.c.id == rule.node_id)).scalar()
        detail = {"node": code, "case_type": rule.case_type, "urgency": rule.urgency, "scale": rule.scale,
                  "level": rule.level, "departments": rule.copy_departments}  # fmt: skip
        s.delete(rule)
        audit.record(s, "cases.routing.delete", actor=actor(request), object_type="routing_rule",
                     object_id=rule_id, detail=detail)  # fmt: skip
    return go(request, f"{request.url_for('cases:routing').path}?{urlencode({'node': code or ''})}")


__all__ = ["Acted", "Reported", "act_from_form", "detail_context", "detail_page", "doer_of", "report_from_form",
           "routes", "visible_case"]
