"""The population plugin's hook implementations — everything the kernel knows about it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import select
from sqlmodel import Session, SQLModel, col
from starlette.requests import Request
from starlette.routing import BaseRoute

from yiwang.api import (
    Indicator,
    Kernel,
    Level,
    MapLayer,
    Markup,
    MenuItem,
    Node,
    Permission,
    PersonalField,
    SearchHit,
    hookimpl,
    kernel,
    move_paths,
    personal_fields_of,
    principal,
    read,
    render_fragment,
    stats,
)


@hookimpl
def yiwang_models() -> Sequence[type[SQLModel]]:
    from yiwang_population.models import (
        Building,
        Claim,
        House,
        Household,
        ImportRun,
        KindChange,
        Member,
        Person,
        Residence,
        Transfer,
    )

    return [
        Person,
        KindChange,
        Claim,
        Building,
        House,
        Residence,
        ImportRun,
        Transfer,
        Household,
        Member,
    ]


@hookimpl
def yiwang_routes() -> Sequence[BaseRoute]:
    from yiwang_population import manage, views
    from yiwang_population.geo import routes as geo_routes

    return [*views.routes, *manage.routes, *geo_routes]


@hookimpl
def yiwang_menu_items() -> Sequence[MenuItem]:
    return [MenuItem(label="实有人口", href="/p/population/", icon="users", order=250, section="基础",
                     permission="population.view")]  # fmt: skip


@hookimpl
def yiwang_map_layers(node: Node) -> Sequence[MapLayer]:
    from yiwang_population.geo import LAYER

    return [LAYER]


@hookimpl
def yiwang_permissions() -> Sequence[Permission]:
    return [
        Permission("population.view", "查看实有人口、楼栋与房屋", personal=True),
        Permission("population.manage", "登记与变更实有人口、楼栋与房屋", personal=True),
    ]


STAFF = ("province_staff", "city_staff", "county_staff", "township_staff", "community_staff")


@hookimpl
def yiwang_grants() -> dict[str, list[str]]:
    """综治中心 staff and grid workers see and keep the registers; leaders and dispatchers see them."""
    grants = {role: ["population.view", "population.manage"] for role in (*STAFF, "grid_worker")}
    grants.update({"leader": ["population.view"], "dispatcher": ["population.view"]})
    return grants


@hookimpl
def yiwang_personal_fields() -> Sequence[PersonalField]:
    from yiwang_population.models import Claim, House, Household, Person

    return personal_fields_of(Person, Claim, House, Household)


@hookimpl
def yiwang_indicators() -> Sequence[Indicator]:
    from yiwang_population.models import INDICATOR, KINDS
    from yiwang_population.service import by_kind_source

    return [Indicator(INDICATOR, "实有人口", keys=tuple(KINDS), source=by_kind_source())]


@hookimpl
def yiwang_search(request: Request, q: str, limit: int) -> Sequence[SearchHit]:
    from yiwang_population.search import people

    return people(request, q, limit)


@hookimpl
def yiwang_template_slot(slot: str, node: Node | None, request: Request) -> Markup | None:
    """On the node page of the net (``node.detail``) and on the dashboard (``dashboard.cards``):
    the population by kind here, from the kernel's rollups (one primary-key read, whatever the
    size of the subtree)."""
    if slot not in ("node.detail", "dashboard.cards") or node is None:
        return None
    from yiwang_population.models import INDICATOR, KINDS

    who = principal(request)
    if who is None or not kernel(request).authz.allowed(who.grants, "population.view", node.path):
        return None
    with read(request) as s:
        counts = stats.by_key(s, INDICATOR, node.id or 0, keys=tuple(KINDS))
    name = "population/_dashboard.html" if slot == "dashboard.cards" else "population/_slot.html"
    return render_fragment(request, name, {"counts": counts, "kinds": KINDS, "node": node})


@hookimpl
def yiwang_node_moved(session: Session, node: Node, old_path: str, moved: int) -> None:
    from yiwang_population.models import (
        Building,
        Claim,
        House,
        Household,
        Member,
        Person,
        Residence,
        Transfer,
    )

    for model in (Person, Claim, Building, House, Residence, Transfer, Household, Member):
        move_paths(session, model.__table__.c.node_path, old_path, node.path)  # type: ignore[union-attr]
    move_paths(session, Claim.__table__.c.holder_path, old_path, node.path)  # type: ignore[attr-defined]


# --- demo ----------------------------------------------------------------------------------------

_SURNAMES = "李王张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗梁宋郑谢韦覃蒙莫农陆"
_GIVEN = "建国秀英丽华志强海燕桂芳明辉春梅永红文军晓东玉兰德福凤霞国庆小平卫东丽娟少华思远雨涵"
_ETHNICITIES = ("汉族", "汉族", "汉族", "壮族", "壮族", "瑶族", "苗族")
_JOBS = ("务农", "个体经营", "企业职工", "教师", "学生", "退休", "自由职业", "")
_WEIGHTS = {"registered": 70, "floating": 22, "foreign": 2, "unregistered": 6}


def checksum(first17: str) -> str:
    """The GB 11643 check character of 17 digits."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


def fake_id(rng: random.Random, area: str) -> str:
    """A generated, valid 18-digit number for ``area`` (six digits)."""
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 70))
    body = f"{area}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return body + checksum(body)


def fake_name(rng: random.Random) -> str:
    """A generated Chinese name (not a real person)."""
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


@hookimpl
def yiwang_demo(kernel: Kernel, session: Session, scale: str, seed: int) -> None:
    """A building with houses and a few residents per demo grid (a few hundred persons)."""
    from yiwang_population import service

    rng = random.Random(seed)
    grids = list(session.scalars(select(Node).where(col(Node.level) == int(Level.GRID))
                                 .order_by(col(Node.code)).limit(60)))  # fmt: skip
    kinds = list(_WEIGHTS)
    for g in grids:
        area = g.code[:6] if len(g.code) >= 6 and g.code[:6].isdigit() else "450102"
        b = service.add_building(session, g, f"{g.name}{rng.randrange(1, 60)}号楼", name=f"{rng.randrange(1, 30)}栋",
                                 floors=rng.choice((3, 5, 6)), units=1)  # fmt: skip
        houses = [service.add_house(session, b, f"{f}0{n}", floor=f, use=rng.choice(("own", "own", "rent", "vacant")))
                  for f in range(1, b.floors + 1) for n in (1, 2)]  # fmt: skip
        for _ in range(rng.randrange(3, 9)):
            kind = rng.choices(kinds, weights=list(_WEIGHTS.values()))[0]
            reg = service.register(session, g, name=fake_name(rng), id_number=fake_id(rng, area), kind=kind,
                                   ethnicity=rng.choice(_ETHNICITIES), occupation=rng.choice(_JOBS),
                                   phone=rng.choice(("139", "138", "177")) + f"{rng.randrange(10**8):08d}",
                                   address=b.address)  # fmt: skip
            if reg.person is not None:
                house = rng.choice([h for h in houses if h.use != "vacant"] or houses)
                service.move_in(session, reg.person, house, relation=rng.choice(("owner", "family", "tenant")),
                                on=date(2020, 1, 1) + timedelta(days=rng.randrange(1500)))  # fmt: skip
    from yiwang_population.geo import place_demo_buildings

    place_demo_buildings(session, seed)  # on the map, inside their grids
