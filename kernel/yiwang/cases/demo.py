"""Demo cases (演示事件): a living system on first start.

Cases are made by the engine itself — reported, accepted, escalated, dispatched, handled,
verified, closed, rated — at times spread over the last weeks, so every state appears with its
real timeline, and the clock then raises the yellow/red cards and overdue flags those times
imply. Two in five happen in the demo accounts' own community (西乡塘区), acted on by those
accounts, so each demo user finds work in their inbox; the rest spread over the province.
Everything is generated from the seed; no real person appears.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import Session

from yiwang.audit import Actor
from yiwang.auth.service import grants_of
from yiwang.cases import clock, engine
from yiwang.cases.engine import ActionInput, Doer, NewCase
from yiwang.cases.models import Case
from yiwang.cases.routing import holder_at, parent_holder
from yiwang.errors import YiwangError
from yiwang.grid.levels import Level
from yiwang.grid.models import Node
from yiwang.grid.shapes import Ring, point_from_unit, rings_of

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

NODE = Node.__table__  # type: ignore[attr-defined]
_GRID_COLUMNS = (NODE.c.id, NODE.c.path, NODE.c.lat, NODE.c.lon, NODE.c.geometry)

TITLES = {
    "public_facility": ["路灯不亮", "井盖缺失", "人行道地砖破损", "公交站牌损坏", "护栏倒伏"],
    "environment": ["垃圾未及时清运", "污水外溢", "占道经营", "乱堆乱放", "绿化带被毁"],
    "safety_hazard": ["电动车楼道充电", "消防通道堵塞", "广告牌松动", "危房外墙脱落", "燃气管道老化"],
    "dispute": ["邻里噪音纠纷", "物业费纠纷", "宅基地边界纠纷", "劳资纠纷", "装修漏水纠纷"],
    "petition": ["反映小区停车难", "申请加装电梯", "咨询低保政策", "反映道路积水", "要求增设路灯"],
    "general": ["流浪犬伤人隐患", "群众求助", "其他情况反映"],
}
STREETS = ["民主路", "友爱路", "大学路", "秀灵路", "明秀路", "北大路", "衡阳路", "新阳路"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高梁韦覃蒙"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英"]
#: Where demo cases end up (weights): every state of the standard workflow appears.
FINAL = {
    "reported": 14, "accepted": 8, "dispatched": 14, "handling": 10, "verifying": 9,
    "verified": 5, "suspended": 3, "closed": 30, "rejected": 4, "rework": 3,
}  # fmt: skip
COUNT = {"small": 240, "full": 20_000}


@dataclass
class _Walk:
    """One case's path: who acts (real demo accounts in their community, else named staff)."""

    kernel: Kernel
    session: Session
    rng: random.Random
    case: Case
    at: datetime
    now: datetime
    local: dict[str, Doer] | None

    def doer(self, role: str) -> Doer:
        if self.local and role in self.local:
            return self.local[role]
        title = {"station": "社区网格工作站", "centre": "街道综治中心", "worker": "网格员"}[role]
        name = self.rng.choice(SURNAMES) + self.rng.choice(GIVEN)
        return Doer(Actor(None, "demo", role="demo"), None, f"{title}·{name}")

    def step(self, role: str, action: str, **given: Any) -> None:
        self.at = min(self.at + timedelta(hours=self.rng.uniform(0.5, 30)), self.now)
        with self.session.begin_nested():
            engine.act(self.kernel, self.session, self.doer(role), int(self.case.id or 0), action,
                       ActionInput(**given), version=None, now=self.at)  # fmt: skip
        self.session.refresh(self.case)


def build_demo_cases(kernel: Kernel, session: Session, *, scale: str, seed: int, now: datetime | None = None) -> int:
    """Create the demo cases; returns how many."""
    rng = random.Random(seed)
    now = now or engine.utcnow()
    grids = session.execute(
        select(*_GRID_COLUMNS).where(NODE.c.level == Level.GRID).order_by(NODE.c.id)
    ).all()  # fmt: skip
    if not grids:
        return 0
    local_doers, local_grids = _demo_accounts(session)
    types = [t for t in kernel.cases.types if t in TITLES] or list(kernel.cases.types)
    rings: dict[int, list[Ring]] = {}
    made = 0
    for i in range(COUNT.get(scale, COUNT["small"])):
        local = bool(local_grids) and i % 5 < 2
        grid = rng.choice(local_grids if local else grids)
        case_type = rng.choice(types)
        created = now - timedelta(days=min(rng.expovariate(1 / 6), 40) + 0.05)
        lat, lon = _location(grid, rng.random(), rng.random(), rings)
        channel = rng.choices(["phone", "web", "hotline", "wechat", "public"], [60, 10, 15, 10, 5])[0]
        citizen = channel in ("hotline", "wechat", "public")
        reporter = local_doers["worker"] if local and channel == "phone" else Doer(Actor(None, "demo"), None, "演示")
        new = NewCase(
            case_type=case_type, title=rng.choice(TITLES.get(case_type, ["其他情况反映"])),
            node_id=grid.id, channel=channel,
            description=f"{rng.choice(STREETS)}{rng.randint(1, 300)}号附近，{rng.choice(['群众反映', '巡查发现', '来电反映'])}。",
            lat=lat, lon=lon, address=f"{rng.choice(STREETS)}{rng.randint(1, 300)}号",
            urgency=rng.choices(["normal", "urgent", "critical"], [80, 17, 3])[0],
            scale=rng.choices(["small", "large", "major"], [85, 12, 3])[0],
            reporter_name=(rng.choice(SURNAMES) + rng.choice(GIVEN)) if citizen else "",
            reporter_phone=f"1{rng.choice('3578')}{rng.randint(0, 999999999):09d}" if citizen else None,
        )  # fmt: skip
        with session.begin_nested():
            case, _ = engine.report(kernel, session, reporter, new, now=created)
        walk = _Walk(kernel, session, rng, case, created, now, local_doers if local else None)
        final = rng.choices(list(FINAL), list(FINAL.values()))[0]
        try:
            _walk_to(walk, final)
        except YiwangError:
            pass  # a path this grid's organisations cannot take (e.g. no unit above): keep it there
        made += 1
    clock.apply_due(kernel, session, now)
    return made


def _location(grid: Any, u: float, v: float, rings: dict[int, list[Ring]]) -> tuple[float, float]:
    """(lat, lon) of a case in ``grid``: inside its outline when it has one (``u``, ``v`` pick
    the spot), else near its centre (or 南宁 when the net has no coordinates at all)."""
    if grid.id not in rings:
        rings[grid.id] = rings_of(grid.geometry)
    if rings[grid.id]:
        lon, lat = point_from_unit(rings[grid.id][0], u, v)
        return lat, lon
    lat = grid.lat if grid.lat is not None else 22.82
    lon = grid.lon if grid.lon is not None else 108.32
    return lat + (u - 0.5) * 0.02, lon + (v - 0.5) * 0.02


def _walk_to(w: _Walk, final: str) -> None:
    """Drive the case along the standard loop until it reaches ``final``."""
    if final == "reported":
        return
    if final == "rejected":
        w.step("station", "reject", opinion="经核实不属于受理范围")
        return
    if final == "verifying" and w.case.channel == "phone" and w.rng.random() < 0.5:
        w.step("worker", "self_handle", opinion="已现场处置完毕")
        return
    w.step("station", "accept")
    if final == "accepted":
        return
    if final == "suspended":
        w.step("station", "suspend", opinion="等待相关部门出具意见")
        return
    holder = holder_at(w.session, w.case.org_path, Level.COMMUNITY)
    above = parent_holder(w.session, holder) if holder else None
    worker = w.local["worker"].user_id if w.local else None
    if worker is not None and (above is None or w.rng.random() < 0.7):
        w.step("station", "dispatch", assignee=worker)
    elif above is not None and holder is not None:
        w.step("station", "escalate", opinion="需街道协调处置")
        w.step("centre", "accept")
        w.step("centre", "dispatch", target_org=holder.id)
    else:
        return  # no unit above and no grid worker: it waits to be dispatched
    if final == "dispatched":
        return
    handler = "worker" if w.case.assignee_id else "station"
    w.step(handler, "take")
    if final == "handling":
        return
    w.step(handler, "feedback", opinion="已处置完毕，现场照片已上传")
    if final == "rework":
        w.step(_verifier(w), "verify_fail", opinion="处置不到位，请返工")
        return
    if final == "verifying":
        return
    w.step(_verifier(w), "verify_pass", opinion="现场核查属实")
    if final == "verified":
        return
    w.step(_verifier(w), "close")
    if w.rng.random() < 0.6:
        w.step(_verifier(w), "rate", fields={"rating": w.rng.choice("54443")})


def _verifier(w: _Walk) -> str:
    """The unit holding the case after feedback verifies it: the centre that dispatched it down,
    or the station that assigned it to its own grid worker."""
    holder = holder_at(w.session, w.case.node_path, Level.COMMUNITY)
    return "station" if holder is not None and w.case.org_id == holder.id else "centre"


def _demo_accounts(session: Session) -> tuple[dict[str, Doer], list[Any]]:
    """Doers for the demo accounts of 西乡塘区, and the demo grid worker's own grids."""
    from yiwang.auth.models import User

    users = {u.username: u for u in session.execute(select(User)).scalars() if u.username in
             ("gridworker", "community", "township")}  # fmt: skip
    if "gridworker" not in users or "community" not in users:
        return {}, []
    doers = {}
    for key, name in (("worker", "gridworker"), ("station", "community"), ("centre", "township")):
        if name in users:
            u = users[name]
            doers[key] = Doer(Actor(u.id, u.username), grants_of(session, int(u.id or 0)), u.display_name)
    own = [g.node_id for g in doers["worker"].grants or () if g.node_level == Level.GRID]
    grids = session.execute(
        select(*_GRID_COLUMNS).where(NODE.c.id.in_(own))
    ).all()  # fmt: skip
    return doers, list(grids)
