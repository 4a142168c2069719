"""用户管理: the users of one's jurisdiction, their assignments, account actions, login log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from yiwang import audit
from yiwang.admin.common import (
    PAGE_SIZE,
    actor,
    declared,
    page_number,
    read_form,
    record_denied,
    render,
    require_everywhere,
    tree_context,
    who,
)
from yiwang.auth import passwords, service
from yiwang.auth.models import LoginAttempt, User
from yiwang.auth.principal import Principal
from yiwang.cli.users import temporary_password
from yiwang.errors import Forbidden, ValidationError
from yiwang.grid import tree
from yiwang.grid.models import Node, utcnow
from yiwang.grid.tree import NodeRow
from yiwang.kernel import Kernel
from yiwang.notify.addresses import clean_email, clean_mobile, mask_email
from yiwang.privacy.masking import mask_phone
from yiwang.rbac.assignments import assign, check_grantor, unassign
from yiwang.rbac.guard import requires
from yiwang.rbac.models import Assignment, Role
from yiwang.web.context import current_node, kernel_of

U = User.__table__  # type: ignore[attr-defined]
A = Assignment.__table__  # type: ignore[attr-defined]
N = Node.__table__  # type: ignore[attr-defined]
L = LoginAttempt.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class AssignmentRow:
    """A role held at a node, as the pages show it."""

    id: int
    user_id: int
    role: str
    role_title: str
    node_code: str
    node_name: str
    node_path: str
    created_at: datetime


@dataclass
class Target:
    """A user named by id, with every assignment and those the viewer may see."""

    user: User
    rows: list[AssignmentRow]
    visible: list[AssignmentRow]


def _assignments(session: Session, where: ColumnElement[bool]) -> list[AssignmentRow]:
    R = Role.__table__  # type: ignore[attr-defined]
    rows = session.connection().execute(
        select(A.c.id, A.c.user_id, A.c.role, R.c.title, N.c.code, N.c.name, N.c.path, A.c.created_at)
        .join(N, N.c.id == A.c.node_id)
        .join(R, R.c.name == A.c.role)
        .where(where)
        .order_by(N.c.path, A.c.role)
    )
    return [AssignmentRow(*r) for r in rows]


def _target(request: Request, session: Session, user_id: int, permission: str = "users.view") -> Target:
    """The user ``user_id`` if they hold a role where the viewer has ``permission``; else
    Forbidden — the same answer for a user who does not exist (no enumeration of ids)."""
    p = who(request)
    authz = kernel_of(request).authz
    user = session.get(User, user_id)
    rows = _assignments(session, A.c.user_id == user_id) if user is not None else []
    visible = [r for r in rows if authz.allowed(p.grants, permission, r.node_path)]
    if user is None or not visible:
        raise Forbidden("用户不存在或不在您的辖区内")
    return Target(user, rows, visible)


def _account_problem(
    kernel: Kernel, p: Principal, target: Target, permission: str, names: list[str],
    kinds: dict[str, str] | None = None,
) -> str:
    """Why ``p`` may not act on the whole account ("" when they may).

    The account must lie entirely inside the actor's scope for ``permission``; for
    ``users.manage`` the actor must also hold every permission of every role the account has
    there — resetting a password hands over the account, so it must not be a wider one.
    """
    if target.user.id == p.user_id:
        return "不能在管理页面对自己的账号执行此操作（修改密码请用“修改密码”）"
    authz = kernel.authz
    if any(not authz.allowed(p.grants, permission, r.node_path) for r in target.rows):
        return "该账号在您的管理范围以外也有授权，须由上级管理员操作"
    if permission == "users.manage":
        kinds = kinds or {}
        for r in target.rows:
            held = {n for n in names if authz.allowed(p.grants, n, r.node_path)}
            # As when granting (``check_grantor``): a system administrator staffs their
            # jurisdiction, so ordinary accounts there are theirs to manage — except one that
            # reveals personal data the administrator may not see (a reset hands it over).
            if not kinds.get(r.role) and _system_admin_over(kernel, p, r.node_path, kinds):
                personal = set(kernel.personal_permissions())
                if not (authz.permissions_of(r.role, names) - held) & personal:
                    continue
            if authz.permissions_of(r.role, names) - held:
                return f"该账号的角色（{r.role_title}）权限超出您的权限，不能操作"
    return ""


def _system_admin_over(kernel: Kernel, p: Principal, path: str, kinds: dict[str, str]) -> bool:
    return any(
        path.startswith(g.node_path) and kinds.get(g.role) == "system"
        and kernel.authz.role_allows(g.role, "users.manage")
        for g in p.grants
    )  # fmt: skip


def _roles(session: Session) -> list[Role]:
    return list(session.scalars(select(Role).order_by(Role.admin_kind, Role.name)))


def _assignable(kernel: Kernel, p: Principal, roles: list[Role], node: NodeRow | None, names: list[str]) -> list[Role]:
    """Roles ``p`` may give at ``node`` (the grantor rules; the server checks again)."""
    if node is None or not kernel.authz.allowed(p.grants, "users.manage", node.path):
        return []
    held = {n for n in names if kernel.authz.allowed(p.grants, n, node.path)}
    return [r for r in roles if not (kernel.authz.permissions_of(r.name, names) - held)]


def _locked(until: datetime | None) -> bool:
    """Is an account locked now (SQLite hands back naive UTC datetimes)?"""
    if until is None:
        return False
    return (until if until.tzinfo else until.replace(tzinfo=UTC)) > utcnow()


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# --- list --------------------------------------------------------------------------------------


@requires("users.view")
def user_list(request: Request) -> Response:
    """Users holding a role inside the viewer's scope, searched by name, filtered by role."""
    kernel = kernel_of(request)
    p = who(request)
    node = current_node(request)
    q = request.query_params.get("q", "").strip()[:60]
    role = request.query_params.get("role", "").strip()[:60]
    page = page_number(request)
    scope = kernel.authz.scope_filter(p.grants, "users.view", N.c.path)
    if request.query_params.get("node") and node is not None:
        scope = and_(scope, tree.within(N.c.path, node.path))
    held_here = and_(A.c.user_id == U.c.id, scope, *([A.c.role == role] if role else []))
    cond: list[ColumnElement[bool]] = [exists(select(A.c.id).join(N, N.c.id == A.c.node_id).where(held_here))]
    if q:
        cond.append(or_(U.c.username.contains(q, autoescape=True), U.c.display_name.contains(q, autoescape=True)))
    with kernel.db.read() as s:
        conn = s.connection()
        total = conn.execute(select(func.count()).select_from(U).where(*cond)).scalar_one()
        rows = conn.execute(
            select(U.c.id, U.c.username, U.c.display_name, U.c.active, U.c.locked_until, U.c.last_login_at)
            .where(*cond)
            .order_by(U.c.username)
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
        ids = [r.id for r in rows]
        held = _assignments(s, and_(A.c.user_id.in_(ids), scope)) if ids else []
        roles = _roles(s)
        ctx = tree_context(s, p, node)
    by_user: dict[int, list[AssignmentRow]] = {}
    for a in held:
        by_user.setdefault(a.user_id, []).append(a)
    listed = [{**r._asdict(), "locked": _locked(r.locked_until)} for r in rows]
    return render(
        request,
        "admin/users.html",
        {
            **ctx,
            "current": node,
            "q": q,
            "role": role,
            "roles": roles,
            "rows": listed,
            "held": by_user,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "narrowed": bool(request.query_params.get("node")),
            "can_manage": node is not None and kernel.authz.allowed(p.grants, "users.manage", node.path),
        },
        node=node,
    )


# --- create --------------------------------------------------------------------------------------


def _new_form(request: Request, values: dict[str, str], problems: list[str], status: int = 200) -> Response:
    kernel = kernel_of(request)
    p = who(request)
    node = current_node(request)
    names = declared(request)
    with kernel.db.read() as s:
        roles = _assignable(kernel, p, _roles(s), node, names)
        ctx = tree_context(s, p, node)
    return render(
        request,
        "admin/user_new.html",
        {"values": values, "problems": problems, "roles": roles, "children": ctx["children"], "current": node},
        status_code=status,
        node=node,
    )


@requires("users.manage")
def user_new(request: Request) -> Response:
    node = current_node(request)
    return _new_form(request, {"node": node.code if node else ""}, [])


@requires("users.manage")
async def user_create(request: Request) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_create, request, form)


def _create(request: Request, form: dict[str, str]) -> Response:
    """Create the account and its first assignment in one unit: all or nothing."""
    kernel = kernel_of(request)
    p = who(request)
    username, display = form.get("username", ""), form.get("display_name", "")
    role, code = form.get("role", ""), form.get("node", "")
    values = {"username": username, "display_name": display, "role": role, "node": code,
              "email": form.get("email", ""), "mobile": form.get("mobile", "")}  # fmt: skip
    problems: list[str] = []
    if not display:
        problems.append("请填写姓名（显示名称）")
    email, mobile, contact_problems = _contact(form)
    problems += contact_problems
    if not role:
        problems.append("请选择角色")
    if not code:
        problems.append("请填写所属节点编码")
    if problems:
        return _new_form(request, values, problems, 400)
    password = temporary_password()
    denied = ""
    try:
        with kernel.db.write() as s:
            node = tree.find_code(s, code)
            if node is None:
                raise ValidationError(f"节点编码 {code} 不存在")
            user = service.create_user(s, kernel.settings.auth, username=username, password=password,
                                       display_name=display, must_change_password=True)  # fmt: skip
            user.email, user.mobile = email, mobile
            s.add(user)
            row = assign(s, kernel.authz, user_id=user.id or 0, role=role, node=node, grantor=p,
                         declared=declared(request))  # fmt: skip
            who_acts = actor(request)
            audit.record(s, "admin.user.create", actor=who_acts, object_type="user", object_id=user.id or 0,
                         detail={"username": user.username, "role": role, "node": node.code,
                                 "email": email is not None, "mobile": mobile is not None})  # fmt: skip
            audit.record(s, "admin.assign", actor=who_acts, object_type="assignment", object_id=row.id or 0,
                         detail={"user_id": user.id, "role": role, "node": node.code})  # fmt: skip
            created = {"id": user.id, "username": user.username, "display_name": user.display_name,
                       "role": role, "node_name": node.name}  # fmt: skip
    except Forbidden as exc:
        denied = str(exc)
    except ValidationError as exc:
        return _new_form(request, values, exc.problems or [str(exc)], 400)
    if denied:
        record_denied(request, "admin.user.create", "user", username, denied, {"role": role, "node": code})
        return _new_form(request, values, [denied], 403)
    response = render(
        request, "admin/user_created.html", {"created": created, "password": password}, node=current_node(request)
    )
    return _no_store(response)


def _contact(form: dict[str, str]) -> tuple[str | None, str | None, list[str]]:
    """The optional e-mail and mobile (for notifications) of a form, cleaned, and problems."""
    out: list[str | None] = []
    problems: list[str] = []
    for key, clean in (("email", clean_email), ("mobile", clean_mobile)):
        try:
            out.append(clean(form.get(key, "")))
        except ValidationError as exc:
            out.append(None)
            problems.append(str(exc))
    return out[0], out[1], problems


# --- detail and assignments ------------------------------------------------------------------------


def _detail(
    request: Request,
    user_id: int,
    *,
    problems: list[str] | None = None,
    message: str = "",
    password: str = "",
    status: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    kernel = kernel_of(request)
    p = who(request)
    node = current_node(request)
    names = declared(request)
    authz = kernel.authz
    with kernel.db.read() as s:
        target = _target(request, s, user_id)
        roles = _assignable(kernel, p, _roles(s), node, names)
        see_logins = any(authz.allowed(p.grants, "security.manage", r.node_path) for r in target.visible)
        logins = (
            s.connection().execute(
                select(L.c.at, L.c.client_ip, L.c.channel, L.c.success)
                .where(L.c.username == target.user.username)
                .order_by(L.c.at.desc())
                .limit(20)
            ).all()
            if see_logins
            else []
        )
    manage = {r.id for r in target.visible if authz.allowed(p.grants, "users.manage", r.node_path)}
    locked = _locked(target.user.locked_until)
    response = render(
        request,
        "admin/user.html",
        {
            "user": target.user,
            "visible": target.visible,
            "hidden": len(target.rows) - len(target.visible),
            "manage": manage,
            "roles": roles,
            "locked": locked,
            "can_manage": bool(manage),
            "can_unlock": see_logins,
            "logins": logins,
            "problems": problems or [],
            "message": message,
            "password": password,
            "values": values or {"node": node.code if node else ""},
            # Shown masked: the page proves an address is on file without disclosing it.
            "contact": {"email": mask_email(target.user.email) if target.user.email else "",
                        "mobile": mask_phone(target.user.mobile) if target.user.mobile else ""},
        },
        status_code=status,
        node=node,
    )
    return _no_store(response) if password else response


@requires("users.view")
def user_detail(request: Request) -> Response:
    return _detail(request, request.path_params["user_id"])


@requires("users.manage")
async def assignment_add(request: Request) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_assign, request, form)


def _assign(request: Request, form: dict[str, str]) -> Response:
    kernel = kernel_of(request)
    user_id: int = request.path_params["user_id"]
    role, code = form.get("role", ""), form.get("node", "")
    values = {"role": role, "node": code}
    with kernel.db.read() as s:
        _target(request, s, user_id, "users.manage")
    if not role or not code:
        return _detail(request, user_id, problems=["请选择角色并填写节点编码"], status=400, values=values)
    denied = ""
    try:
        with kernel.db.write() as s:
            _target(request, s, user_id, "users.manage")
            node = tree.find_code(s, code)
            if node is None:
                raise ValidationError(f"节点编码 {code} 不存在")
            row = assign(s, kernel.authz, user_id=user_id, role=role, node=node, grantor=who(request),
                         declared=declared(request))  # fmt: skip
            audit.record(s, "admin.assign", actor=actor(request), object_type="assignment", object_id=row.id or 0,
                         detail={"user_id": user_id, "role": role, "node": node.code})  # fmt: skip
    except Forbidden as exc:
        denied = str(exc)
    except ValidationError as exc:
        return _detail(request, user_id, problems=exc.problems or [str(exc)], status=400, values=values)
    if denied:
        record_denied(request, "admin.assign", "user", user_id, denied, {"role": role, "node": code})
        return _detail(request, user_id, problems=[denied], status=403, values=values)
    return RedirectResponse(request.url_for("admin:user", user_id=user_id), status_code=303)


@requires("users.manage")
def assignment_remove(request: Request) -> Response:
    kernel = kernel_of(request)
    p = who(request)
    user_id: int = request.path_params["user_id"]
    assignment_id: int = request.path_params["assignment_id"]
    problem = ""
    with kernel.db.write() as s:
        target = _target(request, s, user_id, "users.manage")
        row = next((r for r in target.rows if r.id == assignment_id), None)
        if row is None:
            raise Forbidden("该授权不属于此用户")
        require_everywhere(request, "users.manage", [row.node_path])
        node = tree.by_code(s, row.node_code)
        if user_id == p.user_id:
            problem = "不能收回自己的授权"
        elif len(target.rows) == 1:
            problem = "这是该账号唯一的授权；如不再使用该账号，请停用账号"
        else:
            try:
                check_grantor(kernel.authz, p, row.role, node, declared(request))
            except Forbidden as exc:
                problem = str(exc)
        if not problem:
            unassign(s, user_id=user_id, role=row.role, node=node, grantor=p, authz=kernel.authz)
            audit.record(s, "admin.unassign", actor=actor(request), object_type="assignment", object_id=row.id,
                         detail={"user_id": user_id, "role": row.role, "node": row.node_code})  # fmt: skip
    if problem:
        record_denied(request, "admin.unassign", "assignment", assignment_id, problem)
        return _detail(request, user_id, problems=[problem], status=403)
    return RedirectResponse(request.url_for("admin:user", user_id=user_id), status_code=303)


@requires("users.manage")
async def user_contact(request: Request) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_set_contact, request, form)


def _set_contact(request: Request, form: dict[str, str]) -> Response:
    """Set or clear the notification addresses; a blank field leaves the address as it is.
    Every assignment of the account must lie in the administrator's ``users.manage`` scope (an
    address decides where someone's notifications go); unlike the account actions, the roles
    need not be covered by the administrator's own permissions (no takeover is possible)."""
    kernel = kernel_of(request)
    user_id: int = request.path_params["user_id"]
    email, mobile, problems = _contact(form)
    if problems:
        return _detail(request, user_id, problems=problems, status=400)
    with kernel.db.write() as s:
        target = _target(request, s, user_id, "users.manage")
        wider = any(not kernel.authz.allowed(who(request).grants, "users.manage", r.node_path) for r in target.rows)
        problem = "该账号在您的管理范围以外也有授权，须由上级管理员操作" if wider else ""
        changed: list[str] = []
        if not problem:
            user = target.user
            for key, value in (("email", email), ("mobile", mobile)):
                new = None if form.get(f"clear_{key}") else value if value is not None else getattr(user, key)
                if new != getattr(user, key):
                    setattr(user, key, new)
                    changed.append(key)
            if changed:
                s.add(user)
                audit.record(s, "admin.user.contact", actor=actor(request), object_type="user",
                             object_id=user_id, detail={"changed": changed})  # fmt: skip
    if problem:
        record_denied(request, "admin.user.contact", "user", user_id, problem)
        return _detail(request, user_id, problems=[problem], status=403)
    return _detail(request, user_id, message="联系方式已更新。" if changed else "联系方式没有变化。")


# --- account actions -------------------------------------------------------------------------------

_ACTIONS: dict[str, tuple[str, str]] = {
    # kind: (permission, audit action)
    "disable": ("users.manage", "admin.user.disable"),
    "enable": ("users.manage", "admin.user.enable"),
    "password": ("users.manage", "admin.user.reset_password"),
    "unlock": ("security.manage", "admin.user.unlock"),
}
_DONE = {"disable": "账号已停用，其全部会话已结束。", "enable": "账号已启用。",
         "password": "密码已重置，其全部会话已结束。", "unlock": "账号已解锁。"}  # fmt: skip


def _account_action(request: Request, kind: str) -> Response:
    kernel = kernel_of(request)
    p = who(request)
    permission, action = _ACTIONS[kind]
    user_id: int = request.path_params["user_id"]
    password = ""
    with kernel.db.write() as s:
        target = _target(request, s, user_id, permission)
        kinds = {r.name: r.admin_kind for r in _roles(s)}
        problem = _account_problem(kernel, p, target, permission, declared(request), kinds)
        if not problem:
            user = target.user
            if kind == "disable":
                service.disable_user(s, user)
            elif kind == "enable":
                user.active = True
                s.add(user)
            elif kind == "password":
                password = temporary_password()
                user.password_hash = passwords.hash_password(password)
                user.must_change_password = True
                user.password_changed_at = utcnow()
                user.failed_logins, user.locked_until = 0, None
                s.add(user)
                service.end_sessions(s, user_id)
            else:
                user.failed_logins, user.locked_until = 0, None
                s.add(user)
            audit.record(s, action, actor=actor(request), object_type="user", object_id=user_id,
                         detail={"username": user.username})  # fmt: skip
    if problem:
        record_denied(request, action, "user", user_id, problem)
        return _detail(request, user_id, problems=[problem], status=403)
    if kind == "password":
        return _detail(request, user_id, message=_DONE[kind], password=password)
    return _detail(request, user_id, message=_DONE[kind])


@requires("users.manage")
def user_disable(request: Request) -> Response:
    return _account_action(request, "disable")


@requires("users.manage")
def user_enable(request: Request) -> Response:
    return _account_action(request, "enable")


@requires("users.manage")
def user_reset_password(request: Request) -> Response:
    return _account_action(request, "password")


@requires("security.manage")
def user_unlock(request: Request) -> Response:
    return _account_action(request, "unlock")


# --- login log -------------------------------------------------------------------------------------


@requires("security.manage")
def login_log(request: Request) -> Response:
    """Login attempts of the users of the viewer's scope (``security.manage``), newest first."""
    kernel = kernel_of(request)
    p = who(request)
    node = current_node(request)
    q = request.query_params.get("q", "").strip().lower()[:60]
    outcome = request.query_params.get("result", "")
    page = page_number(request)
    scope = kernel.authz.scope_filter(p.grants, "security.manage", N.c.path)
    in_scope = (
        select(U.c.username)
        .where(exists(select(A.c.id).join(N, N.c.id == A.c.node_id).where(A.c.user_id == U.c.id, scope)))
    )  # fmt: skip
    cond: list[Any] = [L.c.username.in_(in_scope)]
    if q:
        cond.append(L.c.username == q)
    if outcome in ("ok", "failed"):
        cond.append(L.c.success.is_(outcome == "ok"))
    with kernel.db.read() as s:
        conn = s.connection()
        total = conn.execute(select(func.count()).select_from(L).where(*cond)).scalar_one()
        rows = conn.execute(
            select(L.c.at, L.c.username, L.c.client_ip, L.c.channel, L.c.success)
            .where(*cond)
            .order_by(L.c.at.desc(), L.c.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
    return render(
        request,
        "admin/logins.html",
        {"rows": rows, "q": q, "result": outcome, "total": total, "page": page,
         "pages": max(1, -(-total // PAGE_SIZE))},
        node=node,
    )  # fmt: skip


__all__ = [
    "assignment_add", "assignment_remove", "login_log", "user_contact", "user_create", "user_detail", "user_disable",
    "user_enable", "user_list", "user_new", "user_reset_password", "user_unlock",
]  # fmt: skip
