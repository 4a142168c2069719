"""The population plugin's hook implementations — everything the kernel knows about it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, SQLModel
from starlette.requests import Request
from starlette.routing import BaseRoute

from yiwang.api import (
    Indicator,
    Kernel,
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


def checksum(first17: str) -> str:
    """The GB 11643 check character of 17 digits."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


@hookimpl
def yiwang_demo(kernel: Kernel, session: Session, scale: str, seed: int) -> None:
    """Buildings, houses and residents in 60 grids (``small``); before them, for ``full``,
    10 million persons over every grid (``demo.py``: Faker zh_CN, streamed in batches)."""
    from yiwang_population import demo

    demo.fill(session, scale, seed)
    from yiwang_population.geo import place_demo_buildings

    place_demo_buildings(session, seed)  # on the map, inside their grids
