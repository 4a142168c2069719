"""A deterministic Guangxi-shaped demo net: the real province, cities and counties (GB/T 2260),
synthetic townships, communities, grids and organisations below.

``small`` gives every county 2 townships × 3 communities × 2 grids (≈2,300 nodes, a second);
``full`` gives the provincial size (≈1,200 townships, ≈16,000 communities, ≈22,000 grids).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import Session, col

from yiwang.errors import ValidationError
from yiwang.grid.data import guangxi
from yiwang.grid.levels import Level
from yiwang.grid.models import Node, Organisation, utcnow
from yiwang.grid.service import add_nodes
from yiwang.grid.shapes import (
    Point,
    Ring,
    area_centroid,
    convex_hull,
    polygon_json,
    ring_contains,
    spread_points,
    voronoi,
)
from yiwang.grid.tree import NewNode

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

SCALES = ("small", "full")


@dataclass(frozen=True)
class Shape:
    """How many children each level gets: (low, high) drawn uniformly per parent."""

    townships: tuple[int, int]
    communities: tuple[int, int]
    grids: tuple[int, int]


SHAPES = {
    "small": Shape(townships=(2, 2), communities=(3, 3), grids=(2, 2)),
    # Means 11, 12.5, 1.5 → ≈1,220 townships, ≈15,300 communities, ≈22,900 grids
    # (targets ≈1,200, ≈16,000, ≈22,000; grids per community cannot average below 1.5 here).
    "full": Shape(townships=(7, 15), communities=(7, 18), grids=(1, 2)),
}

# Characters for synthetic place names; plain, common, and unlikely to collide with real ones.
_SYLLABLES = (
    "安 宝 北 长 城 大 东 丰 福 富 高 广 和 河 红 华 江 金 锦 景 康 乐 利 林 龙 民 明 南 宁 平 "
    "清 庆 仁 瑞 三 山 胜 石 水 顺 泰 桃 天 田 同 万 文 西 祥 新 兴 秀 阳 永 玉 园 源 云 长 中 "
    "竹 兰 梅 松 柳 桂 荔 榕 凤 鹤"
).split()

CENTRE = "centre"
STATION = "station"
DEPARTMENTS = (
    ("公安", "公安局"), ("司法", "司法局"), ("民政", "民政局"), ("信访", "信访局"),
    ("消防", "消防救援大队"), ("教育", "教育局"), ("卫健", "卫生健康局"), ("人社", "人力资源和社会保障局"),
)  # fmt: skip
MEDIATION = (
    "交通事故纠纷人民调解委员会",
    "医疗纠纷人民调解委员会",
    "物业纠纷人民调解委员会",
    "劳动人事争议仲裁委员会",
)


def _name(rng: random.Random, used: set[str], suffix: str) -> str:
    while True:
        name = rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES) + suffix
        if name not in used:
            used.add(name)
            return name


def _township_kinds(county_name: str) -> tuple[str, str]:
    """Urban districts have 街道 and 镇, counties 镇 and 乡, county-level cities 街道 and 镇."""
    if county_name.endswith("区"):
        return ("街道", "镇")
    if county_name.endswith("市"):
        return ("街道", "镇")
    return ("镇", "乡")


_TOWNSHIP_BASE = {"街道": 1, "镇": 100, "乡": 200}
_COMMUNITY_BASE = {"社区": 1, "村": 200}


def plan(scale: str, seed: int) -> list[NewNode]:
    """The demo net as rows, parents before children; the same for the same seed."""
    if scale not in SHAPES:
        raise ValidationError(f"未知的规模 {scale}（可选: {'、'.join(SCALES)}）")
    shape = SHAPES[scale]
    rng = random.Random(seed)
    code, name = guangxi.PROVINCE
    rows = [NewNode(code, name, Level.PROVINCE, None)]
    rows += [NewNode(c, n, Level.CITY, code) for c, n in guangxi.CITIES]
    rows += [NewNode(c, n, Level.COUNTY, c[:4]) for c, n in guangxi.COUNTIES]
    for county_code, county_name in guangxi.COUNTIES:
        first, second = _township_kinds(county_name)
        used: set[str] = set()
        n_town = rng.randint(*shape.townships)
        n_first = max(1, n_town // 2)
        counters = {first: 0, second: 0}
        for t in range(n_town):
            kind = first if t < n_first else second
            counters[kind] += 1
            t_code = f"{county_code}{_TOWNSHIP_BASE[kind] + counters[kind] - 1:03d}"
            rows.append(NewNode(t_code, _name(rng, used, kind), Level.TOWNSHIP, county_code, kind))
            c_kind = "社区" if kind == "街道" else "村"
            c_used: set[str] = set()
            for c in range(rng.randint(*shape.communities)):
                # A 镇's seat has a 社区 or two; the rest are 村.
                this_kind = "社区" if c_kind == "社区" or c < 1 else "村"
                seq = _COMMUNITY_BASE[this_kind] + c
                c_code = f"{t_code}{seq:03d}"
                rows.append(
                    NewNode(c_code, _name(rng, c_used, this_kind), Level.COMMUNITY, t_code, this_kind)
                )
                for g in range(rng.randint(*shape.grids)):
                    rows.append(NewNode(f"{c_code}{g + 1:02d}", f"第{g + 1}网格", Level.GRID, c_code))
    return rows


def outline(rows: list[NewNode], seed: int) -> list[NewNode]:
    """Synthetic boundaries (边界) for the planned net: the region's rough outline is split into
    Voronoi cells around the real city seats, each city's cell around its counties (urban
    districts close to the seat), and so on down to the grids — nested, disjoint, convex
    polygons. ``lat``/``lon`` is each node's centroid (a city's: its seat). A random stream of
    its own keeps names and codes what ``plan`` made them."""
    rng = random.Random(f"outline-{seed}")
    kids: dict[str | None, list[int]] = {}
    for i, row in enumerate(rows):
        kids.setdefault(row.parent_code, []).append(i)
    out = list(rows)

    def place(i: int, ring: Ring, at: Point | None = None) -> None:
        lon, lat = at or area_centroid(ring)
        out[i] = replace(rows[i], geometry=polygon_json(ring), lat=round(lat, 6), lon=round(lon, 6))

    region = convex_hull(guangxi.OUTLINE)
    queue: list[tuple[int, Ring]] = []
    for i in kids.get(None, []):
        place(i, region)
        queue.append((i, region))
    while queue:
        parent, ring = queue.pop()
        children = kids.get(rows[parent].code, [])
        if not children:
            continue
        seeds = _seeds(rows, parent, children, ring, rng)
        cells = voronoi(ring, seeds) if len(children) > 1 else [ring]
        if any(len(c) < 3 for c in cells):  # a seed outside the parent: spread evenly instead
            seeds = spread_points(ring, len(children), rng.random)
            cells = voronoi(ring, seeds)
        for i, cell, seed_point in zip(children, cells, seeds, strict=True):
            city_seat = rows[i].level == Level.CITY and rows[i].code in guangxi.CITY_SEATS
            place(i, cell, seed_point if city_seat else None)
            queue.append((i, cell))
    return out


def _seeds(rows: list[NewNode], parent: int, children: list[int], ring: Ring, rng: random.Random) -> list[Point]:
    """Where the children's cells are centred: real seats for cities, urban districts (区) near
    their city's seat, everything else spread over the parent."""
    level = rows[parent].level
    if level == Level.PROVINCE:
        seats = [guangxi.CITY_SEATS.get(rows[i].code) for i in children]
        if all(s is not None and ring_contains(ring, s[1], s[0]) for s in seats):
            return [(s[1], s[0]) for s in seats if s is not None]
    if level == Level.CITY and rows[parent].code in guangxi.CITY_SEATS:
        lat, lon = guangxi.CITY_SEATS[rows[parent].code]
        districts = [i for i in children if rows[i].name.endswith("区")]
        near: dict[int, Point] = {}
        # The first district at the seat, the others on a ring around it: compact wedges that
        # look like a city's districts (random points this close would cut slivers).
        turn = rng.uniform(0, 2 * math.pi)
        for k, i in enumerate(districts):
            angle = turn + 2 * math.pi * k / max(1, len(districts) - 1)
            r = 0.0 if k == 0 else rng.uniform(0.13, 0.19)
            p = (lon + r * math.cos(angle), lat + r * math.sin(angle) * 0.92)
            if ring_contains(ring, *p):
                near[i] = p
        rest = iter(spread_points(ring, len(children) - len(near), rng.random, fixed=list(near.values())))
        return [near[i] if i in near else next(rest) for i in children]
    return spread_points(ring, len(children), rng.random)


def _orgs(nodes: list[tuple[int, str, int]]) -> list[dict[str, object]]:
    now = utcnow()
    out: list[dict[str, object]] = []

    def add(node_id: int, kind: str, name: str, department: str = "") -> None:
        out.append(
            {"node_id": node_id, "kind": kind, "name": name, "department": department,
             "phone": "", "address": "", "active": True, "created_at": now}
        )  # fmt: skip

    for node_id, name, level in nodes:
        if level <= Level.TOWNSHIP:
            add(node_id, CENTRE, f"{name}综治中心")
        if level == Level.COMMUNITY:
            add(node_id, STATION, f"{name}网格工作站")
        if level in (Level.CITY, Level.COUNTY):
            for dept, title in DEPARTMENTS:
                add(node_id, "department", f"{name}{title}", dept)
        if level == Level.COUNTY:
            for title in MEDIATION:
                add(node_id, "mediation", f"{name}{title}")
    return out


def build_demo_net(kernel: Kernel, session: Session, *, scale: str, seed: int) -> int:
    """Create the demo net and its organisations; refuses when the net is not empty."""
    if session.execute(select(Node.id).limit(1)).first() is not None:  # type: ignore[call-overload]
        raise ValidationError("数据库中已有区划数据；演示数据只能写入空库（可用 --reset 重建）")
    rows = outline(plan(scale, seed), seed)
    add_nodes(kernel, session, rows)
    nodes = session.execute(
        select(col(Node.id), col(Node.name), col(Node.level)).where(col(Node.level) <= Level.COMMUNITY)
    ).all()
    orgs = _orgs([tuple(r) for r in nodes])
    table = Organisation.__table__  # type: ignore[attr-defined]
    for start in range(0, len(orgs), 2000):
        session.connection().execute(table.insert(), orgs[start : start + 2000])
    return len(rows)
