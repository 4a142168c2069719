"""The org plugin's hook implementations — everything the kernel knows about it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, SQLModel, col
from starlette.routing import BaseRoute

from yiwang.api import (
    Kernel,
    Level,
    MenuItem,
    Node,
    Organisation,
    Permission,
    PersonalField,
    hookimpl,
    move_paths,
    personal_fields_of,
)


@hookimpl
def yiwang_models() -> Sequence[type[SQLModel]]:
    from yiwang_org.models import Device, GridAssignment, Patrol, PatrolPoint, Staff, Worker

    return [Staff, Worker, GridAssignment, Device, Patrol, PatrolPoint]


@hookimpl
def yiwang_routes() -> Sequence[BaseRoute]:
    from yiwang_org import manage, views

    return [*views.routes, *manage.routes]


@hookimpl
def yiwang_menu_items() -> Sequence[MenuItem]:
    return [
        MenuItem(
            label="机构队伍",
            href="/p/org/",
            icon="users",
            order=300,
            section="基础",
            permission="org.view",
        ),
        MenuItem(
            label="巡查覆盖",
            href="/p/org/coverage",
            icon="map",
            order=310,
            section="基础",
            permission="org.view",
        ),
    ]


@hookimpl
def yiwang_permissions() -> Sequence[Permission]:
    return [
        Permission("org.view", "查看机构队伍与巡查", personal=True),
        Permission("org.manage", "管理机构人员、网格员与设备", personal=True),
        Permission("org.patrol", "网格员巡查打卡"),
    ]


STAFF = ("province_staff", "city_staff", "county_staff", "township_staff", "community_staff")


@hookimpl
def yiwang_grants() -> dict[str, list[str]]:
    """综治中心 staff see and manage rosters; leaders and dispatchers see them; grid workers patrol."""
    grants = {role: ["org.view", "org.manage"] for role in STAFF}
    grants.update(
        {
            "leader": ["org.view"],
            "dispatcher": ["org.view"],
            "grid_worker": ["org.view", "org.patrol"],
        }
    )
    return grants


@hookimpl
def yiwang_personal_fields() -> Sequence[PersonalField]:
    from yiwang_org.models import Device, Staff, Worker

    return personal_fields_of(Staff, Worker, Device)


@hookimpl
def yiwang_node_moved(session: Session, node: Node, old_path: str, moved: int) -> None:
    from yiwang_org.models import Device, GridAssignment, Patrol, Staff, Worker

    for model in (Staff, Worker, GridAssignment, Device, Patrol):
        move_paths(session, model.__table__.c.node_path, old_path, node.path)  # type: ignore[union-attr]


_SURNAMES = "李王张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗梁宋郑谢韦覃蒙莫农"
_GIVEN = "建国秀英丽华志强海燕桂芳明辉春梅永红文军晓东玉兰德福凤霞国庆小平卫东丽娟少华"


def _fake_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def _fake_phone(rng: random.Random) -> str:
    return rng.choice(("139", "138", "177", "183")) + f"{rng.randrange(10**8):08d}"


@hookimpl
def yiwang_demo(kernel: Kernel, session: Session, scale: str, seed: int) -> None:
    """2–3 generated workers per demo grid (a bounded subset at full scale), a device each,
    staff for the first organisations and a few patrols today."""
    from yiwang_org import service

    rng = random.Random(seed)
    limit = 400 if scale == "full" else 200
    grids = list(
        session.scalars(
            select(Node)
            .where(col(Node.level) == int(Level.GRID))
            .order_by(col(Node.code))
            .limit(limit)
        )
    )
    now = datetime.now(UTC)
    for i, g in enumerate(grids):
        parent = session.get(Node, g.parent_id) if g.parent_id else None
        home = parent or g
        workers = [
            service.add_worker(session, home, _fake_name(rng), _fake_phone(rng), [g])
            for _ in range(rng.choice((2, 2, 3)))
        ]
        for w in workers:
            service.add_device(session, w, f"86{rng.randrange(10**13):013d}", _fake_phone(rng))
        if i < 20:
            for k in range(rng.choice((0, 1, 2))):
                w = rng.choice(workers)
                start = now - timedelta(minutes=30 + 90 * k)
                patrol = service.start_patrol(session, w, g, at=start)
                lat, lon = 22.82 + rng.random() / 50, 108.32 + rng.random() / 50
                pts = [
                    service.Point(lat + j * 1e-4, lon + j * 1e-4, start + timedelta(minutes=j))
                    for j in range(5)
                ]
                service.add_points(session, patrol, pts)
                service.finish_patrol(session, patrol, at=start + timedelta(minutes=20))
    for org in session.scalars(
        select(Organisation).order_by(col(Organisation.id)).limit(limit // 4)
    ):
        for post in ("主任", "专职工作人员"):
            service.add_staff(session, org, _fake_name(rng), _fake_phone(rng), post)
