"""Demo accounts: one per kind of user, at real places of the demo net."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import Session, col

from yiwang.auth import service
from yiwang.grid.levels import Level
from yiwang.grid.models import Node
from yiwang.rbac.models import Assignment

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

#: The password of every demo account (printed by ``./dev up``; demo data only).
DEMO_PASSWORD = "Gx#Grid-2026!"

#: (username, display name, role, where: a code, or a level meaning "the first node of that
#: level inside 西乡塘区 450107").
DEMO_ACCOUNTS: tuple[tuple[str, str, str, str | Level], ...] = (
    ("admin", "系统管理员", "system_admin", "45"),
    ("security", "安全管理员", "security_admin", "45"),
    ("auditor", "审计管理员", "audit_admin", "45"),
    ("gx", "自治区综治中心", "province_staff", "45"),
    ("nanning", "南宁市综治中心", "city_staff", "4501"),
    ("leader", "南宁市领导", "leader", "4501"),
    ("xixiangtang", "西乡塘区综治中心", "county_staff", "450107"),
    ("dispatcher", "西乡塘区调度员", "dispatcher", "450107"),
    ("township", "街道综治中心", "township_staff", Level.TOWNSHIP),
    ("community", "社区网格工作站", "community_staff", Level.COMMUNITY),
    ("gridworker", "网格员", "grid_worker", Level.GRID),
)


def create_demo_accounts(kernel: Kernel, session: Session) -> list[tuple[str, str, str]]:
    """Create the demo accounts; returns (username, role title, place) for printing."""
    county = session.scalars(select(Node).where(Node.code == "450107")).first()  # type: ignore[arg-type]
    made = []
    for username, display, role, where in DEMO_ACCOUNTS:
        if isinstance(where, Level):
            if county is None:
                continue
            node = session.scalars(
                select(Node)
                .where(col(Node.level) == int(where), col(Node.path).startswith(county.path))
                .order_by(Node.code)
            ).first()
        else:
            node = session.scalars(select(Node).where(Node.code == where)).first()  # type: ignore[arg-type]
        if node is None:
            continue
        user = service.create_user(
            session, kernel.settings.auth, username=username, password=DEMO_PASSWORD,
            display_name=display, must_change_password=False,
        )  # fmt: skip
        session.add(Assignment(user_id=user.id or 0, role=role, node_id=node.id or 0))
        made.append((username, display, node.name))
    return made
