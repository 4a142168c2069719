"""Staff, workers, grid assignments, devices and patrols; used by pages, the phone API and the
demo. Every write is recorded in the audit trail."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlmodel import Session, col

from yiwang.api import (
    Actor,
    Level,
    Node,
    Organisation,
    ValidationError,
    audit,
    gcj02_to_wgs84,
    subtree_filter,
)

from yiwang_org.models import (
    PATROLS_PER_DAY,
    WORKERS_PER_GRID,
    Device,
    GridAssignment,
    Patrol,
    PatrolPoint,
    Staff,
    Worker,
)

#: Patrol days are counted in China Standard Time.
CST = timezone(timedelta(hours=8), "CST")
MAX_POINTS = 500


def _system(actor: Actor | None) -> Actor:
    return actor or Actor.system("org")


def _name(value: str, problems: list[str]) -> str:
    value = value.strip()
    if not value:
        problems.append("姓名不能为空")
    elif len(value) > 60:
        problems.append("姓名过长（最多 60 字）")
    return value


def _phone(value: str | None, problems: list[str]) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    digits = "".join(c for c in value if c.isdigit())
    if not 7 <= len(digits) <= 15:
        problems.append("联系电话格式不正确")
    return value


def add_staff(session: Session, org: Organisation, name: str, phone: str | None = None, post: str = "",
              *, actor: Actor | None = None) -> Staff:  # fmt: skip
    """Add a staff member to ``org``."""
    problems: list[str] = []
    name, phone = _name(name, problems), _phone(phone, problems)
    if len(post) > 60:
        problems.append("职务过长（最多 60 字）")
    node = session.get(Node, org.node_id)
    if node is None:
        problems.append("机构所在节点不存在")
    if problems or node is None:
        raise ValidationError("人员未添加", problems)
    staff = Staff(org_id=org.id or 0, node_id=node.id or 0, node_path=node.path, name=name, phone=phone,
                  post=post.strip())  # fmt: skip
    session.add(staff)
    session.flush()
    audit(session, "org.staff.create", actor=_system(actor), object_type="org_staff", object_id=str(staff.id),
          detail={"node": node.code, "org": org.id})  # fmt: skip
    return staff


def update_staff(session: Session, staff: Staff, *, name: str, phone: str | None, post: str, active: bool,
                 actor: Actor | None = None) -> list[str]:  # fmt: skip
    """Change a staff member's name, phone (None keeps it), post and whether still in post
    (在岗/离岗: a roster keeps those who left); returns the changed fields (audited by name,
    never values)."""
    problems: list[str] = []
    name = _name(name, problems)
    phone = _phone(phone, problems) if phone is not None else staff.phone
    post = post.strip()
    if len(post) > 60:
        problems.append("职务过长（最多 60 字）")
    if problems:
        raise ValidationError("人员未修改", problems)
    changed = [k for k, v in (("name", name), ("phone", phone), ("post", post), ("active", active))
               if getattr(staff, k) != v]  # fmt: skip
    staff.name, staff.phone, staff.post, staff.active = name, phone, post, active
    session.add(staff)
    session.flush()
    if changed:
        audit(session, "org.staff.update", actor=_system(actor), object_type="org_staff", object_id=str(staff.id),
              detail={"fields": changed})  # fmt: skip
    return changed


def add_worker(session: Session, node: Node, name: str, phone: str | None = None, grids: Iterable[Node] = (),
               user_id: int | None = None, *, actor: Actor | None = None) -> Worker:  # fmt: skip
    """Register a grid worker at ``node`` serving ``grids`` (grids inside ``node``'s subtree)."""
    problems: list[str] = []
    name, phone = _name(name, problems), _phone(phone, problems)
    grids = list(grids)
    _grid_problems(node, grids, problems)
    if problems:
        raise ValidationError("网格员未添加", problems)
    worker = Worker(
        node_id=node.id or 0, node_path=node.path, name=name, phone=phone, user_id=user_id
    )
    session.add(worker)
    session.flush()
    for g in grids:
        session.add(GridAssignment(worker_id=worker.id or 0, grid_id=g.id or 0, node_path=g.path))
    session.flush()
    audit(session, "org.worker.create", actor=_system(actor), object_type="org_worker", object_id=str(worker.id),
          detail={"node": node.code, "grids": [g.code for g in grids]})  # fmt: skip
    return worker


def _grid_problems(node: Node, grids: list[Node], problems: list[str]) -> None:
    for g in grids:
        if g.level != Level.GRID:
            problems.append(f"{g.name} 不是网格")
        elif not g.path.startswith(node.path):
            problems.append(f"{g.name} 不在 {node.name} 辖区内")


def update_worker(session: Session, worker: Worker, *, name: str, phone: str | None, grids: Iterable[Node],
                  active: bool, actor: Actor | None = None) -> list[str]:  # fmt: skip
    """Change a worker's name, phone (None keeps it), grids and whether on duty (在岗/停用);
    returns the changed fields (audited by name, never values)."""
    problems: list[str] = []
    name = _name(name, problems)
    phone = _phone(phone, problems) if phone is not None else worker.phone
    grids = list(grids)
    node = session.get_one(Node, worker.node_id)
    _grid_problems(node, grids, problems)
    if problems:
        raise ValidationError("网格员未修改", problems)
    changed = [
        k
        for k, v in (("name", name), ("phone", phone), ("active", active))
        if getattr(worker, k) != v
    ]
    worker.name, worker.phone, worker.active = name, phone, active
    current = {a.grid_id: a for a in session.scalars(select(GridAssignment).where(GridAssignment.worker_id == worker.id))}  # type: ignore[arg-type]  # fmt: skip
    wanted = {g.id or 0: g for g in grids}
    for gid, a in current.items():
        if gid not in wanted:
            session.delete(a)
    for gid, g in wanted.items():
        if gid not in current:
            session.add(GridAssignment(worker_id=worker.id or 0, grid_id=gid, node_path=g.path))
    if set(current) != set(wanted):
        changed.append("grids")
    session.add(worker)
    session.flush()
    if changed:
        audit(session, "org.worker.update", actor=_system(actor), object_type="org_worker", object_id=str(worker.id),
              detail={"fields": changed, "grids": sorted(g.code for g in grids)})  # fmt: skip
    return changed


def add_device(session: Session, worker: Worker, imei: str, phone_number: str | None = None,
               *, actor: Actor | None = None) -> Device:  # fmt: skip
    """Register a 综治专用手机 held by ``worker``."""
    imei = imei.strip()
    problems: list[str] = []
    if not imei or len(imei) > 40:
        problems.append("设备串号（IMEI）应为 1–40 个字符")
    elif session.scalars(select(Device).where(Device.imei == imei)).first() is not None:  # type: ignore[arg-type]
        problems.append("该设备串号已登记")
    phone_number = _phone(phone_number, problems)
    if problems:
        raise ValidationError("设备未登记", problems)
    device = Device(node_id=worker.node_id, node_path=worker.node_path, imei=imei, phone_number=phone_number,
                    worker_id=worker.id)  # fmt: skip
    session.add(device)
    session.flush()
    audit(session, "org.device.create", actor=_system(actor), object_type="org_device", object_id=str(device.id),
          detail={"worker": worker.id})  # fmt: skip
    return device


# --- patrols -----------------------------------------------------------------------------------


def start_patrol(session: Session, worker: Worker, grid: Node, at: datetime | None = None,
                 *, actor: Actor | None = None) -> Patrol:  # fmt: skip
    """Start a patrol of ``worker`` in ``grid`` (one of the worker's grids)."""
    assigned = session.scalars(
        select(col(GridAssignment.id)).where(
            col(GridAssignment.worker_id) == worker.id, col(GridAssignment.grid_id) == grid.id
        )
    ).first()
    if not worker.active:
        raise ValidationError("巡查未开始", ["该网格员已停用"])
    if assigned is None:
        raise ValidationError("巡查未开始", [f"{grid.name} 不是该网格员负责的网格"])
    patrol = Patrol(worker_id=worker.id or 0, grid_id=grid.id or 0, node_path=grid.path,
                    started_at=at or datetime.now(UTC))  # fmt: skip
    session.add(patrol)
    session.flush()
    audit(session, "org.patrol.start", actor=_system(actor), object_type="org_patrol", object_id=str(patrol.id),
          detail={"grid": grid.code, "worker": worker.id})  # fmt: skip
    return patrol


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float
    at: datetime


def parse_points(raw: Any, coord: str = "wgs84") -> list[Point]:
    """Validate check-ins from the phone (``[{lat, lon, at}]``, ``at`` ISO 8601, UTC when naive);
    GCJ-02 input (``coord="gcj02"``) is converted to WGS-84."""
    if coord not in ("wgs84", "gcj02"):
        raise ValidationError("轨迹点未保存", ["coord 应为 wgs84 或 gcj02"])
    if not isinstance(raw, list) or not raw:
        raise ValidationError("轨迹点未保存", ["points 应为非空列表"])
    if len(raw) > MAX_POINTS:
        raise ValidationError("轨迹点未保存", [f"一次最多上传 {MAX_POINTS} 个点"])
    out: list[Point] = []
    problems: list[str] = []
    for i, item in enumerate(raw, 1):
        try:
            lat, lon = float(item["lat"]), float(item["lon"])
            at_raw = item.get("at")
            at = datetime.fromisoformat(str(at_raw)) if at_raw else datetime.now(UTC)
        except (KeyError, TypeError, ValueError, AttributeError):
            problems.append(f"第 {i} 个点格式不正确（需要 lat、lon、at）")
            continue
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            problems.append(f"第 {i} 个点坐标超出范围")
            continue
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if coord == "gcj02":
            lat, lon = gcj02_to_wgs84(lat, lon)
        out.append(Point(lat, lon, at.astimezone(UTC)))
    if problems:
        raise ValidationError("轨迹点未保存", problems)
    return out


def add_points(session: Session, patrol: Patrol, points: Sequence[Point], source: str = "wgs84",
               *, actor: Actor | None = None) -> int:  # fmt: skip
    """Append check-ins to an open patrol; returns the patrol's point count."""
    if patrol.ended_at is not None:
        raise ValidationError("轨迹点未保存", ["巡查已结束"])
    for p in points:
        session.add(
            PatrolPoint(patrol_id=patrol.id or 0, lat=p.lat, lon=p.lon, at=p.at, source=source)
        )
    patrol.point_count += len(points)
    session.add(patrol)
    session.flush()
    audit(session, "org.patrol.points", actor=_system(actor), object_type="org_patrol", object_id=str(patrol.id),
          detail={"count": len(points)})  # fmt: skip
    return patrol.point_count


def finish_patrol(
    session: Session, patrol: Patrol, at: datetime | None = None, *, actor: Actor | None = None
) -> Patrol:
    """End an open patrol."""
    if patrol.ended_at is not None:
        raise ValidationError("巡查未结束", ["巡查已结束"])
    patrol.ended_at = at or datetime.now(UTC)
    session.add(patrol)
    session.flush()
    audit(session, "org.patrol.finish", actor=_system(actor), object_type="org_patrol", object_id=str(patrol.id),
          detail={"points": patrol.point_count})  # fmt: skip
    return patrol


# --- lists and coverage ----------------------------------------------------------------------


def day_bounds(day: datetime | None = None) -> tuple[datetime, datetime]:
    """The UTC bounds of the CST calendar day containing ``day`` (now by default)."""
    local = (day or datetime.now(UTC)).astimezone(CST)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


@dataclass(frozen=True)
class GridCoverage:
    id: int
    code: str
    name: str
    patrols: int
    workers: int

    @property
    def under(self) -> bool:
        return self.patrols < PATROLS_PER_DAY

    @property
    def staffing_off(self) -> bool:
        return not WORKERS_PER_GRID[0] <= self.workers <= WORKERS_PER_GRID[1]


def coverage(session: Session, root_path: str, scope: ColumnElement[bool], scope_patrol: ColumnElement[bool],
             day: datetime | None = None, limit: int = 500) -> list[GridCoverage]:  # fmt: skip
    """Grids inside ``root_path`` (and ``scope`` on Node.path) with the day's patrol count
    (``scope_patrol`` on Patrol.node_path) and their number of active workers."""
    start, end = day_bounds(day)
    patrols = (
        select(col(Patrol.grid_id), func.count().label("n"))
        .where(subtree_filter(Patrol.node_path, root_path), scope_patrol,
               col(Patrol.started_at) >= start, col(Patrol.started_at) < end)
        .group_by(col(Patrol.grid_id)).subquery()
    )  # fmt: skip
    workers = (
        select(col(GridAssignment.grid_id), func.count().label("n"))
        .join(Worker, col(Worker.id) == col(GridAssignment.worker_id))
        .where(subtree_filter(GridAssignment.node_path, root_path), col(Worker.active))
        .group_by(col(GridAssignment.grid_id))
        .subquery()
    )
    rows = session.execute(
        select(col(Node.id), col(Node.code), col(Node.name), func.coalesce(patrols.c.n, 0),
               func.coalesce(workers.c.n, 0))
        .outerjoin(patrols, patrols.c.grid_id == col(Node.id))
        .outerjoin(workers, workers.c.grid_id == col(Node.id))
        .where(col(Node.level) == int(Level.GRID), subtree_filter(Node.path, root_path), scope)
        .order_by(col(Node.code)).limit(limit)
    ).all()  # fmt: skip
    return [GridCoverage(*r) for r in rows]


def workers_within(
    session: Session, root_path: str, scope: ColumnElement[bool], limit: int = 200
) -> list[Worker]:
    stmt = (select(Worker).where(subtree_filter(Worker.node_path, root_path), scope)
            .order_by(Worker.node_path, Worker.id).limit(limit))  # type: ignore[arg-type]  # fmt: skip
    return list(session.scalars(stmt))


def staff_within(
    session: Session, root_path: str, scope: ColumnElement[bool], limit: int = 200
) -> list[Staff]:
    stmt = (select(Staff).where(subtree_filter(Staff.node_path, root_path), scope)
            .order_by(Staff.node_path, Staff.id).limit(limit))  # type: ignore[arg-type]  # fmt: skip
    return list(session.scalars(stmt))


def grids_of(session: Session, worker_ids: Sequence[int]) -> dict[int, list[Node]]:
    """worker id → the grids it serves."""
    out: dict[int, list[Node]] = {i: [] for i in worker_ids}
    if worker_ids:
        rows = session.execute(
            select(GridAssignment.worker_id, Node)  # type: ignore[call-overload]
            .join(Node, Node.id == GridAssignment.grid_id)
            .where(GridAssignment.worker_id.in_(worker_ids)).order_by(Node.code)  # type: ignore[attr-defined]
        ).all()  # fmt: skip
        for wid, node in rows:
            out[wid].append(node)
    return out


def recent_patrols(session: Session, worker_id: int, limit: int = 20) -> list[Patrol]:
    stmt = (select(Patrol).where(Patrol.worker_id == worker_id)  # type: ignore[arg-type]
            .order_by(Patrol.started_at.desc(), Patrol.id.desc()).limit(limit))  # type: ignore[attr-defined,union-attr]  # fmt: skip
    return list(session.scalars(stmt))


def worker_of_user(session: Session, user_id: int) -> Worker | None:
    return session.scalars(
        select(Worker).where(Worker.user_id == user_id, Worker.active).order_by(Worker.id)  # type: ignore[arg-type]
    ).first()
