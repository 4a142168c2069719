"""Management pages (登记与变更, ``population.manage`` at the object's node): register and edit
persons, change kind, move in / out, buildings and houses, households and members, claim
decisions (认领), and the buildings' GeoJSON for maps. Every write goes through the service
functions in one unit of work; a bad input re-renders the form with Chinese errors (422) and
writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlmodel import col
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from yiwang.api import (
    Forbidden,
    IdInfo,
    InvalidIdNumber,
    Level,
    Node,
    NotFound,
    ValidationError,
    actor,
    blind_equals,
    current_node,
    gcj02_to_wgs84,
    read,
    render,
    require,
    requires,
    subtree_filter,
    validate_id,
    write,
)

from yiwang_population import households, service
from yiwang_population.models import (
    CLAIM_STATUSES,
    KINDS,
    MEMBER_RELATIONS,
    RELATIONS,
    USES,
    Building,
    Claim,
    House,
    Household,
    Member,
    Person,
    Residence,
)
from yiwang_population.views import REVEALABLE, _allowed, _names, _scope

MANAGE = "population.manage"
VIEW = "population.view"


# --- helpers -------------------------------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    async with request.form(max_files=0) as form:
        return {k: str(v) for k, v in form.items()}


def _go(request: Request, url: str) -> Response:
    """After a change: 303 to ``url``, or for htmx a full navigation there."""
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=200, headers={"HX-Redirect": url, "Vary": "HX-Request"})
    return RedirectResponse(url, status_code=303)


def _int(value: str | None, title: str, problems: list[str], default: int | None = None) -> int:
    value = (value or "").strip()
    if not value and default is not None:
        return default
    try:
        return int(value)
    except ValueError:
        problems.append(f"{title}应为整数")
        return default or 0


def _float(value: str | None, title: str, problems: list[str]) -> float | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        problems.append(f"{title}应为数字")
        return None


def _date(value: str | None, title: str, problems: list[str]) -> date:
    value = (value or "").strip()
    if not value:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{title}格式应为 年-月-日，例如 2024-03-01")
        return date.today()


def _check(title: str, problems: list[str]) -> None:
    if problems:
        raise ValidationError(title, problems)


def _with(problems: list[str], write_: Callable[[], Any]) -> Any:
    """Run a service write, then fail with the form's own problems as well as the service's
    (all shown at once; raising inside the unit of work writes nothing)."""
    try:
        out = write_()
    except ValidationError as err:
        raise ValidationError(err.args[0], [*problems, *err.problems]) from None
    _check(str(getattr(write_, "title", "未保存")), problems)
    return out


def _grids(request: Request, s: Any) -> list[Node]:
    """Grids of the current node's subtree where the user may register (for form selects)."""
    node = current_node(request)
    if node is None:
        return []
    stmt = select(Node).where(col(Node.level) == int(Level.GRID), subtree_filter(Node.path, node.path),
                              _scope(request, MANAGE, Node.path))  # fmt: skip
    return list(s.scalars(stmt.order_by(col(Node.code)).limit(500)))


def _grid(request: Request, s: Any, code: str) -> Node:
    """The grid named by ``code`` in a form, where the user holds population.manage."""
    code = code.strip()
    node = s.scalars(select(Node).where(col(Node.code) == code)).first() if code else None
    if node is None:
        raise ValidationError("未保存", ["请选择所属网格"])
    require(request, MANAGE, node.path)
    return node  # type: ignore[no-any-return]


def _get(request: Request, s: Any, model: Any, key: str, permission: str, missing: str) -> Any:
    obj = s.get(model, request.path_params[key])
    if obj is None:
        raise NotFound(missing)
    require(request, permission, obj.node_path)
    return obj


def _houses(request: Request, s: Any, path: str) -> list[tuple[House, Building]]:
    """Houses of the grid at ``path`` (for selects), with their buildings."""
    rows = s.execute(
        select(House, Building).join(Building, col(Building.id) == House.building_id)
        .where(col(House.node_path) == path, _scope(request, MANAGE, House.node_path))
        .order_by(col(Building.id), col(House.unit), col(House.floor), col(House.number)).limit(500)
    ).all()  # fmt: skip
    return [(h, b) for h, b in rows]


def _person_by_id_number(
    request: Request, s: Any, number: str, problems: list[str]
) -> Person | None:
    """The person with this ID where the user holds population.manage (a clear error otherwise)."""
    info: IdInfo | None = None
    try:
        info = validate_id(number)
    except InvalidIdNumber as err:
        problems.append(f"公民身份号码：{err}")
        return None
    person = s.scalars(select(Person).where(blind_equals(Person.id_number, info.number),
                                            _scope(request, MANAGE, Person.node_path))).first()  # fmt: skip
    if person is None:
        problems.append("本辖区未登记该公民身份号码，请先登记人员")
    return person  # type: ignore[no-any-return]


def _action(handler: Callable[[Request, dict[str, str]], Response]) -> Callable[[Request], Any]:
    """An endpoint reading a form, then working in the thread pool."""

    async def endpoint(request: Request) -> Response:
        values = await _form(request) if request.method == "POST" else {}
        return await run_in_threadpool(handler, request, values)

    endpoint.__doc__ = handler.__doc__
    endpoint.__name__ = handler.__name__
    return endpoint


# --- persons -------------------------------------------------------------------------------------

PERSON_FIELDS = (
    "name",
    "id_number",
    "kind",
    "ethnicity",
    "phone",
    "address",
    "hukou_address",
    "occupation",
    "tags",
)


def _person_form(request: Request, values: dict[str, str], error: Any = None, person: Person | None = None,
                 status_code: int = 200) -> Response:  # fmt: skip
    with read(request) as s:
        grids = _grids(request, s) if person is None else []
    return render(request, "population/person_form.html", {
        "values": values, "error": error, "person": person, "grids": grids, "kinds": KINDS},
        status_code=status_code)  # fmt: skip


def person_new(request: Request, values: dict[str, str]) -> Response:
    """``GET``: the registration form; ``POST``: register (a claim when the ID is held in
    another grid)."""
    if request.method == "GET":
        return _person_form(request, {"kind": "registered"})
    try:
        with write(request) as s:
            grid = _grid(request, s, values.get("grid", ""))
            out = service.register(
                s, grid, **{k: values.get(k, "") for k in PERSON_FIELDS}, actor=actor(request)
            )
            if out.claim is not None:
                url = str(request.url_for("population:claim", claim_id=out.claim.id))
            else:
                url = str(
                    request.url_for(
                        "population:person", person_id=out.person.id if out.person else 0
                    )
                )
    except ValidationError as err:
        return _person_form(request, values, err, status_code=422)
    return _go(request, url)


def person_edit(request: Request, values: dict[str, str]) -> Response:
    """Edit a person's fields (empty fields keep their values; the ID never changes)."""
    if request.method == "GET":
        with read(request) as s:
            return _person_form(
                request, {}, person=_get(request, s, Person, "person_id", MANAGE, "人员不存在")
            )
    changes = {k: values[k] for k in service.UPDATABLE if values.get(k, "").strip()}
    try:
        with write(request) as s:
            person = _get(request, s, Person, "person_id", MANAGE, "人员不存在")
            service.update_person(s, person, changes, actor=actor(request))
    except ValidationError as err:
        with read(request) as s:
            person = _get(request, s, Person, "person_id", MANAGE, "人员不存在")
            return _person_form(request, values, err, person=person, status_code=422)
    return _go(
        request,
        str(request.url_for("population:person", person_id=request.path_params["person_id"])),
    )


def person_context(request: Request, s: Any, person: Person) -> dict[str, Any]:
    """What the person page shows (also re-rendered with an action's errors)."""
    residences, changes = service.history(s, person)
    memberships = households.of_person(s, person)
    transfers = service.transfers(s, person)
    may_manage = _allowed(request, MANAGE, person.node_path)
    names = _names(
        s,
        {person.node_id} | {t.from_node_id for t in transfers} | {t.to_node_id for t in transfers},
    )
    return {
        "person": person, "residences": residences, "changes": changes, "names": names, "kinds": KINDS,
        "relations": RELATIONS, "member_relations": MEMBER_RELATIONS, "revealable": REVEALABLE,
        "memberships": memberships, "transfers": transfers, "may_manage": may_manage,
        "houses": _houses(request, s, person.node_path) if may_manage else [],
        "may_reveal": _allowed(request, "privacy.reveal", person.node_path), "errors": {}, "today": date.today(),
        "id_area_unknown": _area_unknown(person.id_number),
    }  # fmt: skip


def _area_unknown(number: str | None) -> bool:
    """Does the stored number's area code draw the GB 11643 warning? Said on the page without
    the digits: the number is shown masked."""
    try:
        return bool(number) and validate_id(number).area_unknown
    except InvalidIdNumber:  # stored before a stricter check: not this note's business
        return False


def _person_error(request: Request, form: str, err: ValidationError) -> Response:
    with read(request) as s:
        person = _get(request, s, Person, "person_id", VIEW, "人员不存在")
        ctx = person_context(request, s, person)
    ctx["errors"] = {form: err}
    return render(request, "population/person.html", ctx, status_code=422)


def person_kind(request: Request, values: dict[str, str]) -> Response:
    """``POST`` (kind, reason): change the person's kind (e.g. 流动→户籍), kept as history."""
    try:
        with write(request) as s:
            person = _get(request, s, Person, "person_id", MANAGE, "人员不存在")
            service.change_kind(
                s, person, values.get("kind", ""), values.get("reason", ""), actor=actor(request)
            )
    except ValidationError as err:
        return _person_error(request, "kind", err)
    return _go(
        request,
        str(request.url_for("population:person", person_id=request.path_params["person_id"])),
    )


def person_move_in(request: Request, values: dict[str, str]) -> Response:
    """``POST`` (house, relation, on): the person moves into a house of their grid."""
    try:
        with write(request) as s:
            person = _get(request, s, Person, "person_id", MANAGE, "人员不存在")
            problems: list[str] = []
            house_id = _int(values.get("house"), "房屋", problems)
            on = _date(values.get("on"), "入住日期", problems)
            _check("未入住", problems)
            house = s.get(House, house_id)
            if house is None:
                raise ValidationError("未入住", ["请选择房屋"])
            require(request, MANAGE, house.node_path)
            service.move_in(
                s, person, house, relation=values.get("relation", ""), on=on, actor=actor(request)
            )
    except ValidationError as err:
        return _person_error(request, "move_in", err)
    return _go(
        request,
        str(request.url_for("population:person", person_id=request.path_params["person_id"])),
    )


def residence_move_out(request: Request, values: dict[str, str]) -> Response:
    """``POST`` (on): end a residence (搬离)."""
    with read(request) as s:
        residence = _get(request, s, Residence, "residence_id", MANAGE, "居住记录不存在")
    request.path_params["person_id"] = residence.person_id
    try:
        with write(request) as s:
            residence = _get(request, s, Residence, "residence_id", MANAGE, "居住记录不存在")
            problems: list[str] = []
            on = _date(values.get("on"), "搬离日期", problems)
            _check("未搬离", problems)
            service.move_out(s, residence, on, actor=actor(request))
    except ValidationError as err:
        return _person_error(request, "move_out", err)
    return _go(request, str(request.url_for("population:person", person_id=residence.person_id)))


# --- buildings and houses ------------------------------------------------------------------------


def _building_values(values: dict[str, str], problems: list[str]) -> dict[str, Any]:
    lat = _float(values.get("lat"), "纬度", problems)
    lon = _float(values.get("lon"), "经度", problems)
    if values.get("crs") == "gcj02" and lat is not None and lon is not None:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            problems.append("坐标不正确（纬度 −90～90，经度 −180～180）")
        else:
            lat, lon = gcj02_to_wgs84(lat, lon)  # stored as WGS-84
    return {"address": values.get("address", ""), "name": values.get("name", ""),
            "floors": _int(values.get("floors"), "层数", problems, 1),
            "units": _int(values.get("units"), "单元数", problems, 1), "lat": lat, "lon": lon}  # fmt: skip


def _building_form(request: Request, values: dict[str, str], error: Any = None, building: Building | None = None,
                   status_code: int = 200) -> Response:  # fmt: skip
    with read(request) as s:
        grids = _grids(request, s) if building is None else []
    return render(request, "population/building_form.html",
                  {"values": values, "error": error, "building": building, "grids": grids},
                  status_code=status_code)  # fmt: skip


def building_new(request: Request, values: dict[str, str]) -> Response:
    """Add a building (address, grid, floors, units, a WGS-84 or GCJ-02 point)."""
    if request.method == "GET":
        return _building_form(request, {"floors": "6", "units": "1", "crs": "wgs84"})
    try:
        with write(request) as s:
            grid = _grid(request, s, values.get("grid", ""))
            problems: list[str] = []
            fields = _building_values(values, problems)
            address = fields.pop("address")
            b = _with(
                problems,
                lambda: service.add_building(s, grid, address, **fields, actor=actor(request)),
            )
            url = str(request.url_for("population:building", building_id=b.id))
    except ValidationError as err:
        return _building_form(request, values, err, status_code=422)
    return _go(request, url)


def building_edit(request: Request, values: dict[str, str]) -> Response:
    """Edit a building."""
    with read(request) as s:
        building = _get(request, s, Building, "building_id", MANAGE, "楼栋不存在")
    if request.method == "GET":
        shown = {"address": building.address, "name": building.name, "floors": str(building.floors),
                 "units": str(building.units), "crs": "wgs84",
                 "lat": "" if building.lat is None else f"{building.lat:.6f}",
                 "lon": "" if building.lon is None else f"{building.lon:.6f}"}  # fmt: skip
        return _building_form(request, shown, building=building)
    try:
        with write(request) as s:
            building = _get(request, s, Building, "building_id", MANAGE, "楼栋不存在")
            problems: list[str] = []
            fields = _building_values(values, problems)
            _with(
                problems,
                lambda: service.update_building(s, building, **fields, actor=actor(request)),
            )
    except ValidationError as err:
        with read(request) as s:
            building = _get(request, s, Building, "building_id", MANAGE, "楼栋不存在")
            return _building_form(request, values, err, building=building, status_code=422)
    return _go(
        request,
        str(request.url_for("population:building", building_id=request.path_params["building_id"])),
    )


def building_context(request: Request, s: Any, building: Building) -> dict[str, Any]:
    plan = service.floor_plan(s, building)
    return {"building": building, "plan": plan, "uses": USES, "names": _names(s, {building.node_id}),
            "kinds": KINDS, "may_manage": _allowed(request, MANAGE, building.node_path), "error": None,
            "values": {}, "units": range(1, building.units + 1)}  # fmt: skip


def house_new(request: Request, values: dict[str, str]) -> Response:
    """``POST`` (unit, floor, number, use, owner): add a house/room to the building."""
    try:
        with write(request) as s:
            building = _get(request, s, Building, "building_id", MANAGE, "楼栋不存在")
            problems: list[str] = []
            unit = _int(values.get("unit"), "单元", problems, 1)
            floor = _int(values.get("floor"), "楼层", problems, 1)
            _check("房屋未添加", problems)
            service.add_house(s, building, values.get("number", ""), unit=unit, floor=floor,
                              use=values.get("use", ""), owner=values.get("owner"), actor=actor(request))  # fmt: skip
    except ValidationError as err:
        with read(request) as s:
            building = _get(request, s, Building, "building_id", VIEW, "楼栋不存在")
            ctx = building_context(request, s, building)
        ctx.update(error=err, values=values)
        return render(request, "population/building.html", ctx, status_code=422)
    return _go(
        request,
        str(request.url_for("population:building", building_id=request.path_params["building_id"])),
    )


def _house_context(request: Request, s: Any, house: House) -> dict[str, Any]:
    building = s.get_one(Building, house.building_id)
    rows = s.execute(select(Residence, Person).join(Person, col(Person.id) == Residence.person_id)
                     .where(col(Residence.house_id) == house.id)
                     .order_by(col(Residence.moved_out).is_not(None), col(Residence.moved_in).desc())).all()  # fmt: skip
    return {"house": house, "building": building, "residences": [(r, p) for r, p in rows], "uses": USES,
            "relations": RELATIONS, "kinds": KINDS, "households": households.of_house(s, house),
            "may_manage": _allowed(request, MANAGE, house.node_path), "error": None, "values": {},
            "names": _names(s, {building.node_id})}  # fmt: skip


def house_page(request: Request, values: dict[str, str]) -> Response:
    """``GET``: a house with its residents (current and past) and households; ``POST``: edit
    it (unit, floor, number, use, owner — an empty owner keeps the stored one)."""
    if request.method == "GET":
        with read(request) as s:
            house = _get(request, s, House, "house_id", VIEW, "房屋不存在")
            return render(request, "population/house.html", _house_context(request, s, house))
    try:
        with write(request) as s:
            house = _get(request, s, House, "house_id", MANAGE, "房屋不存在")
            problems: list[str] = []
            unit = _int(values.get("unit"), "单元", problems, house.unit)
            floor = _int(values.get("floor"), "楼层", problems, house.floor)
            _check("房屋未修改", problems)
            owner = values.get("owner", "").strip() or house.owner
            service.update_house(s, house, number=values.get("number", ""), unit=unit, floor=floor,
                                 use=values.get("use", ""), owner=owner, actor=actor(request))  # fmt: skip
    except ValidationError as err:
        with read(request) as s:
            house = _get(request, s, House, "house_id", VIEW, "房屋不存在")
            ctx = _house_context(request, s, house)
        ctx.update(error=err, values=values)
        return render(request, "population/house.html", ctx, status_code=422)
    return _go(
        request, str(request.url_for("population:house", house_id=request.path_params["house_id"]))
    )


# --- households ----------------------------------------------------------------------------------


def _household_form(request: Request, values: dict[str, str], error: Any = None,
                    status_code: int = 200) -> Response:  # fmt: skip
    node = current_node(request)
    with read(request) as s:
        grids = _grids(request, s)
        houses = []
        if node is not None:
            rows = s.execute(
                select(House, Building).join(Building, col(Building.id) == House.building_id)
                .where(subtree_filter(House.node_path, node.path), _scope(request, MANAGE, House.node_path))
                .order_by(col(Building.node_path), col(Building.id), col(House.unit), col(House.number)).limit(500)
            ).all()  # fmt: skip
            houses = [(h, b) for h, b in rows]
    return render(request, "population/household_form.html", {"values": values, "error": error, "grids": grids,
                  "houses": houses}, status_code=status_code)  # fmt: skip


def household_new(request: Request, values: dict[str, str]) -> Response:
    """Open a household (户号, grid, head by ID number, optional house and address)."""
    if request.method == "GET":
        return _household_form(request, {})
    try:
        with write(request) as s:
            grid = _grid(request, s, values.get("grid", ""))
            problems: list[str] = []
            head = _person_by_id_number(request, s, values.get("head_id_number", ""), problems)
            on = _date(values.get("on"), "立户日期", problems)
            house = None
            if values.get("house", "").strip():
                house = s.get(House, _int(values.get("house"), "房屋", problems))
                if house is None:
                    problems.append("房屋不存在")
                else:
                    require(request, MANAGE, house.node_path)
            _check("户未登记", problems)
            assert head is not None
            hh = households.create_household(s, grid, values.get("number", ""), head=head, house=house,
                                             address=values.get("address"), on=on, actor=actor(request))  # fmt: skip
            url = str(request.url_for("population:household", household_id=hh.id))
    except ValidationError as err:
        return _household_form(request, values, err, status_code=422)
    return _go(request, url)


def _household_context(request: Request, s: Any, hh: Household) -> dict[str, Any]:
    return {"household": hh, "members": households.members(s, hh), "place": households.place(s, hh),
            "member_relations": MEMBER_RELATIONS, "kinds": KINDS, "names": _names(s, {hh.node_id}),
            "may_manage": _allowed(request, MANAGE, hh.node_path), "errors": {}, "values": {},
            "today": date.today()}  # fmt: skip


def household_page(request: Request, values: dict[str, str]) -> Response:
    """A household: its house and building (户入楼) and members with their relation to the
    head, current and past (names masked)."""
    with read(request) as s:
        hh = _get(request, s, Household, "household_id", VIEW, "户不存在")
        return render(request, "population/household.html", _household_context(request, s, hh))


def _household_error(request: Request, household_id: int, form: str, err: ValidationError,
                     values: dict[str, str]) -> Response:  # fmt: skip
    with read(request) as s:
        hh = s.get_one(Household, household_id)
        ctx = _household_context(request, s, hh)
    ctx.update(errors={form: err}, values=values)
    return render(request, "population/household.html", ctx, status_code=422)


def member_add(request: Request, values: dict[str, str]) -> Response:
    """``POST`` (id_number, relation, on): a registered person joins the household (迁入)."""
    try:
        with write(request) as s:
            hh = _get(request, s, Household, "household_id", MANAGE, "户不存在")
            problems: list[str] = []
            person = _person_by_id_number(request, s, values.get("id_number", ""), problems)
            on = _date(values.get("on"), "迁入日期", problems)
            _check("未迁入", problems)
            assert person is not None
            households.add_member(
                s, hh, person, values.get("relation", ""), on=on, actor=actor(request)
            )
    except ValidationError as err:
        values.pop("id_number", None)  # never echo an ID number back
        return _household_error(request, request.path_params["household_id"], "add", err, values)
    return _go(
        request,
        str(
            request.url_for(
                "population:household", household_id=request.path_params["household_id"]
            )
        ),
    )


def member_change(request: Request, values: dict[str, str]) -> Response:
    """``POST`` (action=leave with on, or action=head with former): a member leaves (迁出) or
    becomes the head (变更户主)."""
    with read(request) as s:
        member = _get(request, s, Member, "member_id", MANAGE, "成员不存在")
        member_id, household_id = member.id, member.household_id
    try:
        with write(request) as s:
            member = _get(request, s, Member, "member_id", MANAGE, "成员不存在")
            if values.get("action") == "head":
                hh = s.get_one(Household, member.household_id)
                households.set_head(
                    s, hh, member, former=values.get("former", ""), actor=actor(request)
                )
            else:
                problems: list[str] = []
                on = _date(values.get("on"), "迁出日期", problems)
                _check("未迁出", problems)
                households.remove_member(s, member, on=on, actor=actor(request))
    except ValidationError as err:
        return _household_error(request, household_id, f"member{member_id}", err, {})
    return _go(request, str(request.url_for("population:household", household_id=household_id)))


# --- claims (认领) --------------------------------------------------------------------------------


def _common(a: str, b: str) -> str:
    """The path of the nearest common ancestor of two node paths ("" if none)."""
    shared = []
    for x, y in zip(a.strip("/").split("/"), b.strip("/").split("/"), strict=False):
        if x != y:
            break
        shared.append(x)
    return "/" + "/".join(shared) + "/" if shared else ""


def claim_rights(request: Request, claim: Claim) -> tuple[bool, bool]:
    """(may see, may decide). Both grids' staff see the claim. The person is given to the
    claiming grid only by the holding grid's staff or staff of a common ancestor (the
    claimant alone cannot take a person's record out of another grid); the claimant may also
    reject (withdraw) its own claim."""
    common = _common(claim.node_path, claim.holder_path)
    may_see = _allowed(request, VIEW, claim.node_path) or _allowed(request, VIEW, claim.holder_path)
    holder_or_above = _allowed(request, MANAGE, claim.holder_path) or bool(
        common and _allowed(request, MANAGE, common)
    )
    return may_see, holder_or_above


def _claim_context(request: Request, s: Any, claim: Claim) -> dict[str, Any]:
    may_see, may_decide = claim_rights(request, claim)
    if not may_see:
        raise Forbidden("该认领不在您的辖区内")
    person = s.get_one(Person, claim.person_id)
    return {"claim": claim, "person": person, "kinds": KINDS, "statuses": CLAIM_STATUSES,
            "decisions": service.DECISIONS, "may_decide": may_decide,
            "may_withdraw": _allowed(request, MANAGE, claim.node_path),
            "may_see_person": _allowed(request, VIEW, person.node_path),
            "names": _names(s, {claim.node_id, person.node_id}), "error": None}  # fmt: skip


@requires(VIEW)
def claim_page(request: Request) -> Response:
    """A claim: who registered the ID where, who holds it, and the decision form."""
    with read(request) as s:
        claim = s.get(Claim, request.path_params["claim_id"])
        if claim is None:
            raise NotFound("认领不存在")
        return render(request, "population/claim.html", _claim_context(request, s, claim))


def claim_decide(request: Request, values: dict[str, str]) -> Response:
    """``POST`` (decision=transfer|reject, note): resolve the claim."""
    claim_id = request.path_params["claim_id"]
    try:
        with write(request) as s:
            claim = s.get(Claim, claim_id)
            if claim is None:
                raise NotFound("认领不存在")
            may_see, may_decide = claim_rights(request, claim)
            decision = values.get("decision", "")
            if not may_see or not (
                may_decide or (decision == "reject" and _allowed(request, MANAGE, claim.node_path))
            ):
                raise Forbidden("只有原登记网格或共同上级的工作人员可以同意转入")
            grid = s.get_one(Node, claim.node_id)
            service.decide_claim(
                s, claim, decision, values.get("note", ""), grid=grid, actor=actor(request)
            )
    except ValidationError as err:
        with read(request) as s:
            ctx = _claim_context(request, s, s.get_one(Claim, claim_id))
        ctx["error"] = err
        return render(request, "population/claim.html", ctx, status_code=422)
    return _go(request, str(request.url_for("population:claim", claim_id=claim_id)))


# --- GeoJSON for maps ----------------------------------------------------------------------------




routes = [
    Route(
        "/persons/new",
        requires(MANAGE)(_action(person_new)),
        methods=["GET", "POST"],
        name="person_new",
    ),
    Route(
        "/persons/{person_id:int}/edit",
        requires(MANAGE)(_action(person_edit)),
        methods=["GET", "POST"],
        name="person_edit",
    ),
    Route(
        "/persons/{person_id:int}/kind",
        requires(MANAGE)(_action(person_kind)),
        methods=["POST"],
        name="person_kind",
    ),
    Route(
        "/persons/{person_id:int}/move-in",
        requires(MANAGE)(_action(person_move_in)),
        methods=["POST"],
        name="move_in",
    ),
    Route(
        "/residences/{residence_id:int}/move-out",
        requires(MANAGE)(_action(residence_move_out)),
        methods=["POST"],
        name="move_out",
    ),
    Route(
        "/buildings/new",
        requires(MANAGE)(_action(building_new)),
        methods=["GET", "POST"],
        name="building_new",
    ),
    Route(
        "/buildings/{building_id:int}/edit",
        requires(MANAGE)(_action(building_edit)),
        methods=["GET", "POST"],
        name="building_edit",
    ),
    Route(
        "/buildings/{building_id:int}/houses",
        requires(MANAGE)(_action(house_new)),
        methods=["POST"],
        name="house_new",
    ),
    Route(
        "/houses/{house_id:int}",
        requires(VIEW)(_action(house_page)),
        methods=["GET", "POST"],
        name="house",
    ),
    Route(
        "/households/new",
        requires(MANAGE)(_action(household_new)),
        methods=["GET", "POST"],
        name="household_new",
    ),
    Route(
        "/households/{household_id:int}", requires(VIEW)(_action(household_page)), name="household"
    ),
    Route(
        "/households/{household_id:int}/members",
        requires(MANAGE)(_action(member_add)),
        methods=["POST"],
        name="member_add",
    ),
    Route(
        "/members/{member_id:int}",
        requires(MANAGE)(_action(member_change)),
        methods=["POST"],
        name="member",
    ),
    Route("/claims/{claim_id:int}", claim_page, name="claim"),
    Route(
        "/claims/{claim_id:int}/decide",
        requires(MANAGE)(_action(claim_decide)),
        methods=["POST"],
        name="claim_decide",
    ),
]
