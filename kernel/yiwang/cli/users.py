"""``yiwang user …``: accounts and role assignments, for the server operator."""

from __future__ import annotations

import json
import secrets
import string
import sys
from typing import Any

import click
from sqlalchemy import select
from sqlmodel import col

from yiwang.errors import NotFound, ValidationError


def _kernel() -> Any:
    from yiwang.cli.main import Context, _ready

    kernel = click.get_current_context().ensure_object(Context).kernel
    _ready(kernel)
    kernel.sync_declarations()
    return kernel


def _trail(session: Any, action: str, username: str, **detail: Any) -> None:
    """Every account change made from the server is recorded like one made on the pages."""
    from yiwang.audit import record
    from yiwang.audit.cli import cli_actor

    record(session, action, actor=cli_actor(), object_type="user", object_id=username,
           detail=detail or None)  # fmt: skip


def _user(session: Any, username: str) -> Any:
    from yiwang.auth.models import User
    from yiwang.auth.service import normalise_username

    user = session.scalars(select(User).where(col(User.username) == normalise_username(username))).first()
    if user is None:
        raise NotFound(f"用户 {username} 不存在")
    return user


def temporary_password() -> str:
    """A random password that satisfies the policy; the user must change it at first login."""
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(14))
    return f"{core[:7]}#{secrets.choice(string.digits)}{core[7:]}A"


@click.group("user")
def user_group() -> None:
    """用户与授权（服务器运维使用；日常管理请用管理页面）。"""


@user_group.command("create")
@click.argument("username")
@click.option("--role", required=True, help="角色名，如 county_staff。")
@click.option("--node", "node_code", required=True, help="辖区节点编码。")
@click.option("--name", "display_name", default="", help="显示名称。")
@click.option("--password-stdin", is_flag=True, help="从标准输入读取密码（否则生成临时密码）。")
def create(username: str, role: str, node_code: str, display_name: str, password_stdin: bool) -> None:
    """创建用户并授予 ROLE@NODE；首次登录须修改密码。"""
    from yiwang.auth import service
    from yiwang.grid import tree
    from yiwang.rbac.assignments import assign

    kernel = _kernel()
    password = sys.stdin.readline().rstrip("\n") if password_stdin else temporary_password()
    with kernel.db.write() as s:
        node = tree.by_code(s, node_code)
        user = service.create_user(
            s, kernel.settings.auth, username=username, password=password, display_name=display_name
        )
        assign(s, kernel.authz, user_id=user.id or 0, role=role, node=node)
        _trail(s, "user.create", user.username, role=role, node=node.code)
    click.echo(f"已创建用户 {user.username}（{role} @ {node.name}）")
    if not password_stdin:
        click.echo(f"临时密码: {password}（首次登录须修改）")


@user_group.command("assign")
@click.argument("username")
@click.argument("role")
@click.argument("node_code")
def assign_cmd(username: str, role: str, node_code: str) -> None:
    """授予 USERNAME 在 NODE_CODE 及其下级的 ROLE。"""
    from yiwang.grid import tree
    from yiwang.rbac.assignments import assign

    kernel = _kernel()
    with kernel.db.write() as s:
        user = _user(s, username)
        assign(s, kernel.authz, user_id=user.id, role=role, node=tree.by_code(s, node_code))
        _trail(s, "user.assign", user.username, role=role, node=node_code)
    click.echo(f"已授予 {username}: {role} @ {node_code}")


@user_group.command("unassign")
@click.argument("username")
@click.argument("role")
@click.argument("node_code")
def unassign_cmd(username: str, role: str, node_code: str) -> None:
    """收回授权（下一次请求即生效）。"""
    from yiwang.grid import tree
    from yiwang.rbac.assignments import unassign

    kernel = _kernel()
    with kernel.db.write() as s:
        user = _user(s, username)
        if not unassign(s, user_id=user.id, role=role, node=tree.by_code(s, node_code)):
            raise ValidationError(f"{username} 在 {node_code} 没有角色 {role}")
        _trail(s, "user.unassign", user.username, role=role, node=node_code)
    click.echo(f"已收回 {username}: {role} @ {node_code}")


@user_group.command("disable")
@click.argument("username")
def disable(username: str) -> None:
    """停用账号并立即结束其全部会话与令牌。"""
    from yiwang.auth import service

    kernel = _kernel()
    with kernel.db.write() as s:
        service.disable_user(s, _user(s, username))
        _trail(s, "user.disable", username)
    click.echo(f"已停用 {username}")


@user_group.command("enable")
@click.argument("username")
def enable(username: str) -> None:
    """重新启用账号。"""
    kernel = _kernel()
    with kernel.db.write() as s:
        user = _user(s, username)
        user.active = True
        s.add(user)
        _trail(s, "user.enable", username)
    click.echo(f"已启用 {username}")


@user_group.command("unlock")
@click.argument("username")
def unlock(username: str) -> None:
    """解除因连续输错密码造成的锁定。"""
    kernel = _kernel()
    with kernel.db.write() as s:
        user = _user(s, username)
        user.locked_until = None
        user.failed_logins = 0
        s.add(user)
        _trail(s, "user.unlock", username)
    click.echo(f"已解锁 {username}")


@user_group.command("reset-password")
@click.argument("username")
def reset_password(username: str) -> None:
    """重置为临时密码（须在下次登录时修改），并结束其会话。"""
    from yiwang.auth import passwords, service

    kernel = _kernel()
    password = temporary_password()
    with kernel.db.write() as s:
        user = _user(s, username)
        user.password_hash = passwords.hash_password(password)
        user.must_change_password = True
        s.add(user)
        service.end_sessions(s, user.id)
        _trail(s, "user.reset_password", username)
    click.echo(f"{username} 的临时密码: {password}（下次登录须修改）")


@user_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_users(as_json: bool) -> None:
    """列出用户及其授权。"""
    from yiwang.auth.models import User
    from yiwang.auth.service import grants_of

    kernel = _kernel()
    with kernel.db.read() as s:
        users = list(s.scalars(select(User).order_by(User.username)))
        data = [
            {"username": u.username, "name": u.display_name, "active": u.active,
             "grants": [{"role": g.role, "node": g.node_code, "name": g.node_name} for g in grants_of(s, u.id or 0)]}
            for u in users
        ]  # fmt: skip
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for d in data:
        grants = "，".join(f"{g['role']}@{g['name']}" for g in d["grants"]) or "无授权"
        click.echo(f"{d['username']}  {d['name']}  {'启用' if d['active'] else '停用'}  {grants}")
