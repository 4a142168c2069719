"""A small net with organisations and staff for case tests (``case_net`` fixture).

::

    兴宁区 (county: 综治中心, 公安分局 department "police")
      └ 民生街道 (township: 综治中心)
          └ 人民社区 (community: 网格工作站)
              ├ 第01网格 — grid worker "worker"
              └ 第02网格 — grid worker "worker2"

Actors: ``worker``, ``worker2``, ``station`` (community staff), ``township``, ``county``,
``officer`` (department handler at the county), ``leader``. ``net.report(...)`` and
``net.act(actor, case, action, ...)`` drive the engine as those users.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from yiwang.auth.service import grants_of
from yiwang.cases import engine
from yiwang.cases.engine import STEP, ActionInput, Doer, NewCase
from yiwang.cases.models import Case, CaseStep

GRID = "45010700100101"
GRID2 = "45010700100102"
COMMUNITY = "450107001001"
TOWNSHIP = "450107001"
COUNTY = "450107"
# A Tuesday in an ordinary working week (Asia/Shanghai 10:00).
T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


@dataclass
class Net:
    kernel: Any
    nodes: dict[str, Any]
    orgs: dict[str, Any]
    users: dict[str, Any]

    def doer(self, who: str) -> Doer:
        from yiwang.audit import Actor

        user = self.users[who]
        with self.kernel.db.read() as s:
            grants = grants_of(s, user.id)
        return Doer(Actor(user.id, user.username), grants, user.username)

    def report(self, who: str = "worker", *, now: datetime = T0, **kw: Any) -> Case:
        values: dict[str, Any] = {
            "case_type": "public_facility", "title": "井盖缺失",
            "node_id": kw["node_id"] if "node_id" in kw else self.nodes[GRID].id,
            "channel": "phone", "description": "人民路口井盖缺失，有安全隐患",
        } | kw  # fmt: skip
        with self.kernel.db.write() as s:
            case, _ = engine.report(self.kernel, s, self.doer(who), NewCase(**values), now=now)
            return case

    def act(self, who: str, case: Case | int, action: str, *, now: datetime = T0, version: int | None = None,
            **kw: Any) -> Case:  # fmt: skip
        case_id = case if isinstance(case, int) else int(case.id or 0)
        with self.kernel.db.write() as s:
            current = s.get(Case, case_id)
            assert current is not None
            engine.act(self.kernel, s, self.doer(who), case_id, action, ActionInput(**kw),
                       version=current.version if version is None else version, now=now)  # fmt: skip
        return self.case(case_id)

    def case(self, case_id: int) -> Case:
        with self.kernel.db.read() as s:
            found: Case | None = s.get(Case, case_id)
            assert found is not None
            return found

    def steps(self, case_id: int) -> list[CaseStep]:
        with self.kernel.db.read() as s:
            return list(
                s.execute(
                    select(CaseStep).where(STEP.c.case_id == case_id).order_by(STEP.c.seq)
                ).scalars()
            )


def build_net(kernel: Any, grid: Any, users: Any) -> Net:
    """Create the net above (once per test)."""
    nodes = {code: grid.node(code) for code in (GRID, GRID2)}
    for code in (COMMUNITY, TOWNSHIP, COUNTY, "4501", "45"):
        nodes[code] = grid.get(code)
    orgs = {
        "county": grid.org(nodes[COUNTY], "兴宁区综治中心"),
        "police": grid.org(nodes[COUNTY], "兴宁区公安分局", kind="department", department="police"),
        "township": grid.org(nodes[TOWNSHIP], "民生街道综治中心"),
        "station": grid.org(nodes[COMMUNITY], "人民社区网格工作站", kind="station"),
    }
    people = {
        "worker": users.make("grid_worker", GRID),
        "worker2": users.make("grid_worker", GRID2),
        "station": users.make("community_staff", COMMUNITY),
        "township": users.make("township_staff", TOWNSHIP),
        "county": users.make("county_staff", COUNTY),
        "officer": users.make("dept_handler", COUNTY),
        "leader": users.make("leader", COUNTY),
    }
    return Net(kernel, nodes, orgs, people)
