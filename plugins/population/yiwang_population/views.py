"""Pages: persons of the subtree (with counts by kind per child from the rollups), a person,
revealing a sensitive field with a purpose, and a building's floors × rooms."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yiwang.api import (
    Node,
    NotFound,
    ValidationError,
    actor,
    current_node,
    kernel,
    principal,
    read,
    render,
    require,
    requires,
    reveal,
    stats,
    write,
)

from yiwang_population import service
from yiwang_population.models import INDICATOR, KINDS, RELATIONS, USES, Building, Person

#: Fields a user may ask to see in plain text.
REVEALABLE = {"id_number": "公民身份号码", "phone": "联系电话"}


def _scope(request: Request, permission: str, column: Any) -> Any:
    """SQL condition: ``column`` lies where the user holds ``permission``."""
    who = principal(request)
    return kernel(request).authz.scope_filter(who.grants if who else (), permission, column)


def _allowed(request: Request, permission: str, path: str) -> bool:
    who = principal(request)
    return who is not None and kernel(request).authz.allowed(who.grants, permission, path)


def _names(s: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        i: n
        for i, n in s.execute(
            select(col(Node.id), col(Node.name)).where(col(Node.id).in_(ids))
        ).all()
    }


@requires("population.view")
def person_list(request: Request) -> Response:
    """Persons of the current node's subtree (filters: kind, name) and counts per child."""
    node = current_node(request)
    if node is None:
        raise NotFound("尚无网格数据")
    kind = request.query_params.get("kind", "")
    q = request.query_params.get("q", "")
    with read(request) as s:
        persons = service.persons_within(s, node.path, _scope(request, "population.view", Person.node_path),
                                         kind=kind, name=q)  # fmt: skip
        buildings = service.buildings_within(
            s, node.path, _scope(request, "population.view", Building.node_path)
        )
        from yiwang_population.models import Claim

        claims = service.claims_within(s, node.path, _scope(request, "population.view", Claim.node_path),
                                       _scope(request, "population.view", Claim.holder_path))  # fmt: skip
        children = stats.children(s, INDICATOR, node.id or 0, keys=tuple(KINDS))
        here = stats.by_key(s, INDICATOR, node.id or 0)
        names = _names(
            s,
            {p.node_id for p in persons}
            | {b.node_id for b in buildings}
            | {c.node_id for c in claims},
        )
    return render(request, "population/list.html", {
        "persons": persons, "buildings": buildings, "claims": claims, "children": children, "here": here,
        "names": names, "kinds": KINDS, "kind": kind, "q": q})  # fmt: skip


def _person(request: Request, s: Any) -> Person:
    person = s.get(Person, request.path_params["person_id"])
    if person is None:
        raise NotFound("人员不存在")
    require(request, "population.view", person.node_path)
    return person  # type: ignore[no-any-return]


@requires("population.view")
def person_detail(request: Request) -> Response:
    """One person: masked fields, residence history, kind history, the reveal form."""
    with read(request) as s:
        person = _person(request, s)
        residences, changes = service.history(s, person)
        names = _names(s, {person.node_id})
    return render(request, "population/person.html", {
        "person": person, "residences": residences, "changes": changes, "names": names, "kinds": KINDS,
        "relations": RELATIONS, "revealable": REVEALABLE,
        "may_reveal": _allowed(request, "privacy.reveal", person.node_path)})  # fmt: skip


@requires("population.view")
async def person_reveal(request: Request) -> Response:
    """``POST …/persons/{id}/reveal`` (field, purpose): the plain value, audited."""
    form = await request.form()
    field = str(form.get("field", ""))
    purpose = str(form.get("purpose", ""))
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_reveal, request, field, purpose)


def _reveal(request: Request, field: str, purpose: str) -> Response:
    try:
        with write(request) as s:
            person = _person(request, s)
            if field not in REVEALABLE:
                raise ValidationError("无法查看", ["只能查看公民身份号码或联系电话"])
            allowed = _allowed(request, "privacy.reveal", person.node_path)
            plain = reveal(s, actor(request), person, field, purpose, allowed=allowed)
    except ValidationError as err:
        return render(request, "population/_revealed.html", {"error": err}, status_code=422)
    return render(
        request,
        "population/_revealed.html",
        {"value": plain, "title": REVEALABLE[field], "error": None},
    )


@requires("population.view")
def building_detail(request: Request) -> Response:
    """A building: floors × rooms with current occupants (names masked)."""
    with read(request) as s:
        building = s.get(Building, request.path_params["building_id"])
        if building is None:
            raise NotFound("楼栋不存在")
        require(request, "population.view", building.node_path)
        plan = service.floor_plan(s, building)
        names = _names(s, {building.node_id})
    return render(request, "population/building.html",
                  {"building": building, "plan": plan, "uses": USES, "names": names, "kinds": KINDS})  # fmt: skip


routes = [
    Route("/", person_list, name="list"),
    Route("/persons/{person_id:int}", person_detail, name="person"),
    Route("/persons/{person_id:int}/reveal", person_reveal, methods=["POST"], name="reveal"),
    Route("/buildings/{building_id:int}", building_detail, name="building"),
]
