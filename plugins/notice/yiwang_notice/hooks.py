"""The notice plugin's hook implementations — everything the kernel knows about it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import click
from markupsafe import Markup
from sqlalchemy import select
from sqlmodel import Session, SQLModel
from starlette.requests import Request
from starlette.routing import BaseRoute

from yiwang.api import (
    Kernel,
    Level,
    MenuItem,
    Node,
    Permission,
    hookimpl,
    move_paths,
    render_fragment,
)


@hookimpl
def yiwang_models() -> Sequence[type[SQLModel]]:
    from yiwang_notice.models import Notice

    return [Notice]


@hookimpl
def yiwang_routes() -> Sequence[BaseRoute]:
    from yiwang_notice.views import routes

    return routes


@hookimpl
def yiwang_menu_items() -> Sequence[MenuItem]:
    return [
        MenuItem(label="通知公告", href="/p/notice/", icon="bell", order=200, section="办公", permission="notice.view")
    ]


@hookimpl
def yiwang_permissions() -> Sequence[Permission]:
    return [Permission("notice.view", "查看通知公告"), Permission("notice.post", "发布通知公告")]


STAFF = ("province_staff", "city_staff", "county_staff", "township_staff", "community_staff")


@hookimpl
def yiwang_grants() -> dict[str, list[str]]:
    """Everyone at work reads notices; 综治中心 staff from the county up post them."""
    readers = {role: ["notice.view"] for role in (*STAFF, "dispatcher", "grid_worker", "dept_handler", "mediator", "leader")}
    for role in STAFF[:3]:
        readers[role] = ["notice.view", "notice.post"]
    return readers


@hookimpl
def yiwang_cli_commands() -> Sequence[click.Command]:
    from yiwang_notice.cli import commands

    return commands


@hookimpl
def yiwang_template_slot(slot: str, node: Node, request: Request) -> Markup | None:
    if slot != "node.detail":
        return None
    from yiwang.api import kernel, principal, read

    who = principal(request)
    if who is None or not kernel(request).authz.allowed(who.grants, "notice.view", node.path if node else None):
        return None

    from yiwang_notice import service

    with read(request) as s:
        notices = service.reaching(s, node, limit=3)
    if not notices:
        return None
    return render_fragment(request, "notice/_slot.html", {"notices": notices, "node": node})


@hookimpl
def yiwang_node_moved(session: Session, node: Node, old_path: str, moved: int) -> None:
    from yiwang_notice.models import Notice

    move_paths(session, Notice.__table__.c.node_path, old_path, node.path)  # type: ignore[attr-defined]


_DEMO = (
    ("关于开展矛盾纠纷大排查大化解专项行动的通知", "important"),
    ("关于做好节假日期间安全防范工作的通知", "urgent"),
    ("网格员入户走访工作规范（试行）", "normal"),
    ("关于开展防范电信网络诈骗宣传进社区活动的通知", "normal"),
    ("关于报送本月网格事件统计表的通知", "normal"),
)


@hookimpl
def yiwang_demo(kernel: Kernel, session: Session, scale: str, seed: int) -> None:
    from yiwang_notice import service

    rng = random.Random(seed)
    posters: list[Any] = list(
        session.scalars(select(Node).where(Node.level <= int(Level.COUNTY)).order_by(Node.code))  # type: ignore[arg-type,operator]
    )
    if not posters:
        return
    for node in posters if scale == "full" else posters[:40]:
        for title, urgency in rng.sample(_DEMO, k=2 if node.level == Level.PROVINCE else 1):
            body = f"{node.name}各单位：\n\n请按要求认真落实，并于月底前报送落实情况。\n\n{node.name}综治中心"
            service.post(session, node, title, body, urgency, author=f"{node.name}综治中心")
