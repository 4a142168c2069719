"""Where a case goes (分级流转): routing rules per node and the organisations cases move between.

"Small matters at the community, big ones to the street centre": a rule set at a node for its
subtree maps (case type, urgency, scale) to the level whose 综治中心 / 网格工作站 must handle the
case, plus member departments to copy. The most specific rule wins: the deepest node first, then
the rule naming the most of type, urgency and scale. Without a rule, the scale decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlmodel import Session

from yiwang.cases.models import RoutingRule
from yiwang.errors import NotFound, ValidationError
from yiwang.grid.levels import Level
from yiwang.grid.models import Node, Organisation
from yiwang.grid.tree import ancestor_ids, within

ORG = Organisation.__table__  # type: ignore[attr-defined]
NODE = Node.__table__  # type: ignore[attr-defined]
RULE = RoutingRule.__table__  # type: ignore[attr-defined]

#: Without a rule: the level by scale.
DEFAULT_LEVEL = {"small": Level.COMMUNITY, "large": Level.TOWNSHIP, "major": Level.COUNTY}
#: Organisation kinds that hold cases at a level (the first found wins).
HOLDER_KINDS = ("centre", "station")


@dataclass(frozen=True)
class OrgRow:
    """An organisation with its node's path and level (what the engine needs of it)."""

    id: int | None
    name: str
    kind: str
    department: str
    node_id: int
    path: str
    level: int

    @property
    def label(self) -> str:
        return self.name


_ORG_COLUMNS = (
    ORG.c.id, ORG.c.name, ORG.c.kind, ORG.c.department, ORG.c.node_id, NODE.c.path, NODE.c.level,
)  # fmt: skip
_ORG_SELECT = select(*_ORG_COLUMNS).select_from(ORG.join(NODE, NODE.c.id == ORG.c.node_id))


_ORG_BY_ID = _ORG_SELECT.where(ORG.c.id == bindparam("id"))
_ORGS_BY_ID = _ORG_SELECT.where(ORG.c.id.in_(bindparam("ids", expanding=True)))


def org(session: Session, org_id: int) -> OrgRow:
    row = session.execute(_ORG_BY_ID, {"id": org_id}).first()
    if row is None:
        raise NotFound(f"单位不存在: {org_id}")
    return OrgRow(*row)


def orgs(session: Session, ids: list[int]) -> dict[int, OrgRow]:
    if not ids:
        return {}
    rows = session.execute(_ORGS_BY_ID, {"ids": list(ids)}).all()
    return {r[0]: OrgRow(*r) for r in rows}


def prefixes(path: str) -> list[str]:
    """``/1/7/42/`` → ``["/1/", "/1/7/", "/1/7/42/"]``."""
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def node_at_level(path: str, level: int) -> int | None:
    """Id of the ancestor at ``level`` (levels are depths in a province-rooted tree)."""
    ids = ancestor_ids(path)
    return ids[level - 1] if 0 < level <= len(ids) else None


def holder_at(session: Session, path: str, level: int) -> OrgRow | None:
    """The centre or station of the ancestor at ``level``, else the nearest one above it."""
    ids = ancestor_ids(path)[: max(level, 1)]
    if not ids:
        return None
    rows = session.execute(
        _ORG_SELECT.where(ORG.c.node_id.in_(ids), ORG.c.kind.in_(HOLDER_KINDS), ORG.c.active)
    ).all()
    if not rows:
        return None
    best = max(rows, key=lambda r: (r.level, HOLDER_KINDS[::-1].index(r.kind), -r.id))
    return OrgRow(*best)


def parent_holder(session: Session, current: OrgRow) -> OrgRow | None:
    """The case-holding organisation strictly above ``current``'s node (上报上级)."""
    if current.level <= 1:
        return None
    return holder_at(session, current.path, current.level - 1)


@dataclass(frozen=True)
class Route:
    level: int
    copy_departments: tuple[str, ...]
    rule_id: int | None


def route(session: Session, grid_path: str, case_type: str, urgency: str, scale: str) -> Route:
    """The level that must handle a new case and the departments to copy."""
    rules = session.execute(
        select(RULE).where(
            RULE.c.node_path.in_(prefixes(grid_path)),
            RULE.c.case_type.in_(("", case_type)),
            RULE.c.urgency.in_(("", urgency)),
            RULE.c.scale.in_(("", scale)),
        )
    ).all()
    if rules:
        best = max(
            rules,
            key=lambda r: (
                len(r.node_path), bool(r.case_type), bool(r.urgency), bool(r.scale), r.id,
            ),
        )  # fmt: skip
        copies = tuple(d.strip() for d in best.copy_departments.split(",") if d.strip())
        return Route(int(best.level), copies, int(best.id))
    return Route(int(DEFAULT_LEVEL.get(scale, Level.COMMUNITY)), (), None)


def departments_near(session: Session, path: str, codes: tuple[str, ...]) -> list[OrgRow]:
    """For each department code, the member department at the nearest node above ``path``."""
    if not codes:
        return []
    ids = ancestor_ids(path)
    rows = session.execute(
        _ORG_SELECT.where(
            ORG.c.node_id.in_(ids),
            ORG.c.kind == "department",
            ORG.c.department.in_(codes),
            ORG.c.active,
        )
    ).all()
    best: dict[str, OrgRow] = {}
    for r in rows:
        o = OrgRow(*r)
        if o.department not in best or o.level > best[o.department].level:
            best[o.department] = o
    return [best[c] for c in codes if c in best]


def dispatch_targets(session: Session, current: OrgRow, *, limit: int = 400) -> list[OrgRow]:
    """Organisations a case held by ``current`` may be dispatched to: active ones on nodes in
    its subtree (its own member departments included), nearest levels first."""
    rows = session.execute(
        _ORG_SELECT.where(
            within(NODE.c.path, current.path),
            ORG.c.active,
            ORG.c.id != current.id,
            NODE.c.level <= current.level + 2,
        )
        .order_by(NODE.c.level, NODE.c.path, ORG.c.kind, ORG.c.name)
        .limit(limit)
    ).all()
    return [OrgRow(*r) for r in rows]


def check_target(current: OrgRow, target: OrgRow) -> None:
    """A dispatch target must lie in the current holder's subtree and differ from it."""
    if target.id == current.id or not target.path.startswith(current.path):
        raise ValidationError(f"不能派遣到 {target.name}：只能派往本单位辖区内的下级单位或成员单位")


def validate_rule(level: int, urgency: str, scale: str, node_level: int) -> None:
    from yiwang.cases.models import SCALE, URGENCY

    problems = []
    if level not in tuple(Level) or level < Level.PROVINCE or level > Level.COMMUNITY:
        problems.append("承办层级应为省、市、县、乡镇或社区")
    elif level < node_level:
        problems.append("承办层级不能高于设置规则的节点")
    if urgency and urgency not in URGENCY:
        problems.append(f"紧急程度无效: {urgency}")
    if scale and scale not in SCALE:
        problems.append(f"规模无效: {scale}")
    if problems:
        raise ValidationError("流转规则有误", problems)
