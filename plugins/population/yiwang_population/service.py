"""Persons, claims, buildings, houses and residences. Every write is audited and keeps the
``population.persons`` rollups in the same unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from yiwang.api import (
    Actor,
    InvalidIdNumber,
    Level,
    Node,
    ValidationError,
    audit,
    blind_equals,
    stats,
    subtree_filter,
    validate_id,
)

from yiwang_population.models import (
    INDICATOR,
    KINDS,
    RELATIONS,
    USES,
    Building,
    Claim,
    House,
    KindChange,
    Person,
    Residence,
    Transfer,
)


def _system(actor: Actor | None) -> Actor:
    return actor or Actor.system("population")


@dataclass
class Registration:
    """The outcome of ``register``: a new person, or a claim when the ID is held elsewhere."""

    person: Person | None = None
    claim: Claim | None = None
    warnings: list[str] = field(default_factory=list)


def _grid(node: Node, problems: list[str]) -> None:
    if node.level != Level.GRID:
        problems.append(f"{node.name} 不是网格，人员须登记到网格")


def _text(value: str | None, title: str, limit: int, problems: list[str]) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        problems.append(f"{title}过长（最多 {limit} 字）")
    return value


def _apply(session: Session, row: Any, values: dict[str, Any], action: str, actor: Actor | None) -> list[str]:
    """Set the fields of ``row`` that differ from ``values`` and audit which changed (names only:
    values may be personal); returns the changed field names."""
    changed = [k for k, v in values.items() if getattr(row, k) != v]
    if changed:
        for k in changed:
            setattr(row, k, values[k])
        session.add(row)
        session.flush()
        audit(session, action, actor=_system(actor), object_type=row.__tablename__,
              object_id=str(row.id), detail={"fields": changed})  # fmt: skip
    return changed


def register(session: Session, grid: Node, *, name: str, id_number: str, kind: str = "registered",
             ethnicity: str = "", phone: str | None = None, address: str | None = None,
             hukou_address: str | None = None, occupation: str = "", tags: str = "",
             actor: Actor | None = None) -> Registration:  # fmt: skip
    """Register a person in ``grid``. The ID is validated (GB 11643; an unknown area code is only
    a warning); a duplicate in the same grid is refused, one held by another grid becomes a claim."""
    problems: list[str] = []
    _grid(grid, problems)
    name = _text(name, "姓名", 60, problems)
    if not name:
        problems.append("姓名不能为空")
    if kind not in KINDS:
        problems.append(f"人员类别应为 {'、'.join(KINDS.values())} 之一")
    info = None
    try:
        info = validate_id(id_number)
    except InvalidIdNumber as err:
        problems.append(f"公民身份号码：{err}")
    phone = check_phone(phone, problems)
    texts = {k: _text(v, t, n, problems) for k, v, t, n in (
        ("ethnicity", ethnicity, "民族", 20), ("occupation", occupation, "职业", 60), ("tags", tags, "标签", 200),
        ("address", address, "现住址", 200), ("hukou_address", hukou_address, "户籍地址", 200))}  # fmt: skip
    if problems or info is None:
        raise ValidationError("人员未登记", problems)
    out = Registration(warnings=list(info.warnings))
    held = holder_of(session, info.number)
    person: Person | None = None
    if held is None:
        person = Person(node_id=grid.id or 0, node_path=grid.path, name=name, id_number=info.number, sex=info.sex,
                        birth_date=info.birth_date, kind=kind, phone=phone,
                        ethnicity=texts["ethnicity"], occupation=texts["occupation"], tags=texts["tags"],
                        address=texts["address"] or None, hukou_address=texts["hukou_address"] or None)  # fmt: skip
        try:
            with session.begin_nested():  # the unique blind index decides between racing writers
                session.add(person)
                session.flush()
        except IntegrityError:
            held = holder_of(
                session, info.number
            )  # registered meanwhile, by another grid or this one
            if held is None:
                raise
            person = None
    if held is not None and held.node_id == grid.id:
        raise ValidationError("人员未登记", ["该公民身份号码已在本网格登记"])
    if held is not None:
        claim = Claim(node_id=grid.id or 0, node_path=grid.path, person_id=held.id or 0, holder_path=held.node_path,
                      name=name, id_number=info.number, kind=kind)  # fmt: skip
        session.add(claim)
        session.flush()
        audit(session, "population.claim.create", actor=_system(actor), object_type="population_claim",
              object_id=str(claim.id), detail={"grid": grid.code, "person": held.id})  # fmt: skip
        out.claim = claim
        return out
    assert person is not None
    stats.add(session, INDICATOR, grid.path, key=kind)
    audit(session, "population.person.create", actor=_system(actor), object_type="population_person",
          object_id=str(person.id), detail={"grid": grid.code, "kind": kind})  # fmt: skip
    out.person = person
    return out


def holder_of(session: Session, id_number: str) -> Person | None:
    """The person registered under ``id_number`` (the first one, should legacy duplicates exist)."""
    stmt = select(Person).where(blind_equals(Person.id_number, id_number))
    return session.scalars(stmt.order_by(col(Person.legacy_dup))).first()


def change_kind(session: Session, person: Person, new_kind: str, reason: str = "",
                *, actor: Actor | None = None) -> KindChange:  # fmt: skip
    """Change a person's kind, keeping the old one in ``population_kind_change``."""
    problems: list[str] = []
    reason = _text(reason, "变更原因", 200, problems)
    if new_kind not in KINDS:
        problems.append(f"人员类别应为 {'、'.join(KINDS.values())} 之一")
    elif new_kind == person.kind:
        problems.append("人员类别未改变")
    if problems:
        raise ValidationError("人员类别未变更", problems)
    change = KindChange(
        person_id=person.id or 0, old_kind=person.kind, new_kind=new_kind, reason=reason
    )
    stats.move(
        session, INDICATOR, person.kind, person.node_path, person.node_path, new_key=new_kind
    )
    person.kind = new_kind
    session.add_all([change, person])
    session.flush()
    audit(session, "population.person.kind", actor=_system(actor), object_type="population_person",
          object_id=str(person.id), detail={"from": change.old_kind, "to": new_kind})  # fmt: skip
    return change


#: Fields ``update_person`` may change (the ID, and so birth date and sex, never changes).
UPDATABLE = {"name": ("姓名", 60), "ethnicity": ("民族", 20), "phone": ("联系电话", 20),
             "address": ("现住址", 200), "hukou_address": ("户籍地址", 200),
             "occupation": ("职业", 60), "tags": ("标签", 200)}  # fmt: skip


_PHONE_MARKS = str.maketrans("", "", "0123456789+-() ")


def check_phone(phone: str | None, problems: list[str]) -> str | None:
    """The phone stripped (None when empty); a problem when it has not 7–15 digits."""
    phone = _text(phone, "联系电话", 20, problems) or None
    if phone:
        others = phone.translate(_PHONE_MARKS)  # what is left besides digits and + - ( ) space
        digits = sum(map(str.isdigit, phone))
        if not 7 <= digits <= 15 or not (others == "" or others.isdigit()):
            problems.append("联系电话格式不正确")
    return phone


def update_person(session: Session, person: Person, changes: dict[str, str | None],
                  *, actor: Actor | None = None) -> list[str]:  # fmt: skip
    """Set the given fields of ``person`` (keys of ``UPDATABLE``); returns the names of the fields
    that changed. The audit record names the fields, never their values."""
    problems: list[str] = []
    clean: dict[str, str | None] = {}
    for key, value in changes.items():
        if key not in UPDATABLE:
            raise ValueError(f"update_person cannot change {key}")
        title, limit = UPDATABLE[key]
        if key == "phone":
            clean[key] = check_phone(value, problems)
        else:
            clean[key] = _text(value, title, limit, problems)
    if "name" in clean and not clean["name"]:
        problems.append("姓名不能为空")
    if problems:
        raise ValidationError("人员信息未更新", problems)
    changed = []
    for key, value in clean.items():
        if key in ("phone", "address", "hukou_address"):
            value = value or None
        if getattr(person, key) != value:
            setattr(person, key, value)
            changed.append(key)
    if changed:
        session.add(person)
        session.flush()
        audit(session, "population.person.update", actor=_system(actor), object_type="population_person",
              object_id=str(person.id), detail={"fields": changed})  # fmt: skip
    return changed


def move_person(session: Session, person: Person, grid: Node, *, reason: str = "", claim: Claim | None = None,
                actor: Actor | None = None) -> Person:  # fmt: skip
    """Move ``person`` to another grid (迁移), kept in ``population_transfer``; the rollups
    follow. The person no longer lives in the old grid: current residences and household
    memberships there end today (a household whose head left has no head until one is set)."""
    problems: list[str] = []
    _grid(grid, problems)
    if grid.id == person.node_id:
        problems.append("人员已在该网格")
    elif session.scalars(select(Person).where(blind_equals(Person.id_number, person.id_number),
                                              col(Person.node_id) == grid.id)).first():  # fmt: skip
        problems.append("该公民身份号码已在目标网格登记")
    reason = _text(reason, "迁移原因", 200, problems)
    if problems:
        raise ValidationError("人员未迁移", problems)
    old = person.node_path
    today = date.today()
    for r in session.scalars(select(Residence).where(col(Residence.person_id) == person.id,
                                                     col(Residence.moved_out).is_(None))):  # fmt: skip
        r.moved_out = max(today, r.moved_in)
        session.add(r)
    from yiwang_population import households

    households.leave_all(session, person, today)
    session.add(Transfer(person_id=person.id or 0, from_node_id=person.node_id, to_node_id=grid.id or 0,
                         node_path=grid.path, claim_id=claim.id if claim else None, reason=reason))  # fmt: skip
    stats.move(session, INDICATOR, person.kind, old, grid.path)
    person.node_id, person.node_path = grid.id or 0, grid.path
    session.add(person)
    session.flush()
    audit(session, "population.person.move", actor=_system(actor), object_type="population_person",
          object_id=str(person.id), detail={"to": grid.code, "claim": claim.id if claim else None})  # fmt: skip
    return person


# --- claims (认领) --------------------------------------------------------------------------------

#: Decisions on a claim.
DECISIONS = {"transfer": "同意转入申报网格", "reject": "驳回（人员留在原网格）"}


def decide_claim(session: Session, claim: Claim, decision: str, note: str = "", *, grid: Node,
                 actor: Actor | None = None) -> Claim:  # fmt: skip
    """Resolve an open claim: ``transfer`` moves the held person to the claiming ``grid`` (the
    claim's node; kind changes to the one declared there, as history), ``reject`` leaves it.
    Who may decide is the caller's check. Closing is a compare-and-set on ``status``, so two
    deciders racing cannot both act."""
    problems: list[str] = []
    note = _text(note, "处理说明", 200, problems)
    if decision not in DECISIONS:
        problems.append("请选择处理结果")
    if grid.id != claim.node_id:
        raise ValueError("grid must be the claim's node")
    if problems:
        raise ValidationError("认领未处理", problems)
    who = _system(actor)
    status = "transferred" if decision == "transfer" else "rejected"
    won = session.execute(
        update(Claim).where(col(Claim.id) == claim.id, col(Claim.status) == "open")
        .values(status=status, decided_at=datetime.now(UTC), decided_by=(who.username or "")[:100], note=note)
        .execution_options(synchronize_session=False)
    ).rowcount  # fmt: skip
    if not won:
        raise ValidationError("认领未处理", ["该认领已被处理，请刷新页面"])
    session.refresh(claim)
    person = session.get_one(Person, claim.person_id)
    if decision == "transfer" and person.node_id != grid.id:
        move_person(session, person, grid, reason=f"认领 #{claim.id}" + (f"：{note}" if note else ""),
                    claim=claim, actor=actor)  # fmt: skip
        if claim.kind in KINDS and claim.kind != person.kind:
            change_kind(
                session, person, claim.kind, f"认领 #{claim.id} 转入时登记的类别", actor=actor
            )
        # other open claims on this person now face its new grid; one raised there is settled
        for other in session.scalars(select(Claim).where(col(Claim.person_id) == person.id,
                                                         col(Claim.status) == "open")):  # fmt: skip
            if other.node_id == person.node_id:
                other.status, other.decided_at, other.note = (
                    "transferred",
                    datetime.now(UTC),
                    f"已由认领 #{claim.id} 转入",
                )
            other.holder_path = person.node_path
            session.add(other)
        session.flush()
    audit(session, f"population.claim.{decision}", actor=who, object_type="population_claim",
          object_id=str(claim.id), detail={"person": person.id, "grid": grid.code})  # fmt: skip
    return claim


def _building_problems(grid: Node, address: str, floors: int, units: int, lat: float | None,
                       lon: float | None, problems: list[str]) -> None:  # fmt: skip
    _grid(grid, problems)
    if not address:
        problems.append("地址不能为空")
    if not 1 <= floors <= 200 or not 1 <= units <= 50:
        problems.append("层数应为 1–200，单元数应为 1–50")
    if (lat is None) != (lon is None) or (
        lat is not None and not (-90 <= lat <= 90 and -180 <= (lon or 0) <= 180)
    ):
        problems.append("坐标不正确（纬度 −90～90，经度 −180～180，须同时填写）")


def add_building(session: Session, grid: Node, address: str, *, name: str = "", floors: int = 1, units: int = 1,
                 lat: float | None = None, lon: float | None = None, actor: Actor | None = None) -> Building:  # fmt: skip
    """Add a building (楼栋) to ``grid``; ``lat``/``lon`` are WGS-84."""
    problems: list[str] = []
    address = _text(address, "地址", 200, problems)
    name = _text(name, "楼栋名称", 100, problems)
    _building_problems(grid, address, floors, units, lat, lon, problems)
    if problems:
        raise ValidationError("楼栋未添加", problems)
    b = Building(node_id=grid.id or 0, node_path=grid.path, name=name, address=address, floors=floors,
                 units=units, lat=lat, lon=lon)  # fmt: skip
    session.add(b)
    session.flush()
    audit(session, "population.building.create", actor=_system(actor), object_type="population_building",
          object_id=str(b.id), detail={"grid": grid.code})  # fmt: skip
    return b


def update_building(session: Session, building: Building, *, address: str, name: str = "", floors: int = 1,
                    units: int = 1, lat: float | None = None, lon: float | None = None,
                    actor: Actor | None = None) -> list[str]:  # fmt: skip
    """Change a building; floors and units may not drop below its houses'. Returns the changed
    fields (audited by name)."""
    problems: list[str] = []
    address = _text(address, "地址", 200, problems)
    name = _text(name, "楼栋名称", 100, problems)
    grid = session.get_one(Node, building.node_id)
    _building_problems(grid, address, floors, units, lat, lon, problems)
    top, wide = session.execute(select(func.max(House.floor), func.max(House.unit))
                                .where(col(House.building_id) == building.id)).one()  # fmt: skip
    if top and floors < top:
        problems.append(f"已有房屋在 {top} 层，层数不能少于 {top}")
    if wide and units < wide:
        problems.append(f"已有房屋在 {wide} 单元，单元数不能少于 {wide}")
    if problems:
        raise ValidationError("楼栋未修改", problems)
    values = {
        "address": address,
        "name": name,
        "floors": floors,
        "units": units,
        "lat": lat,
        "lon": lon,
    }
    return _apply(session, building, values, "population.building.update", actor)


def _house_problems(session: Session, building: Building, number: str, unit: int, floor: int, use: str,
                    problems: list[str], *, house_id: int | None = None) -> None:  # fmt: skip
    if not number:
        problems.append("门牌号不能为空")
    if not 1 <= unit <= building.units or not 1 <= floor <= building.floors:
        problems.append(f"单元或楼层超出楼栋范围（{building.units} 个单元，{building.floors} 层）")
    if use not in USES:
        problems.append(f"房屋用途应为 {'、'.join(USES.values())} 之一")
    if number and session.scalars(select(House.id).where(
            col(House.building_id) == building.id, col(House.unit) == unit, col(House.number) == number,
            col(House.id) != (house_id or 0))).first():  # fmt: skip
        problems.append(f"{unit} 单元已有门牌号 {number}")


def add_house(session: Session, building: Building, number: str, *, unit: int = 1, floor: int = 1,
              use: str = "own", owner: str | None = None, actor: Actor | None = None) -> House:  # fmt: skip
    """Add a house/room (房屋) to ``building`` (户入楼)."""
    problems: list[str] = []
    number = _text(number, "门牌号", 20, problems)
    owner = _text(owner, "业主", 60, problems) or None
    _house_problems(session, building, number, unit, floor, use, problems)
    if problems:
        raise ValidationError("房屋未添加", problems)
    h = House(building_id=building.id or 0, node_path=building.node_path, unit=unit, floor=floor, number=number,
              use=use, owner=owner)  # fmt: skip
    session.add(h)
    session.flush()
    audit(session, "population.house.create", actor=_system(actor), object_type="population_house",
          object_id=str(h.id), detail={"building": building.id})  # fmt: skip
    return h


def update_house(session: Session, house: House, *, number: str, unit: int, floor: int, use: str,
                 owner: str | None = None, actor: Actor | None = None) -> list[str]:  # fmt: skip
    """Change a house's number, place, use (自住/出租/空置/经营) or owner."""
    problems: list[str] = []
    number = _text(number, "门牌号", 20, problems)
    owner = _text(owner, "业主", 60, problems) or None
    building = session.get_one(Building, house.building_id)
    _house_problems(session, building, number, unit, floor, use, problems, house_id=house.id)
    if problems:
        raise ValidationError("房屋未修改", problems)
    values: dict[str, Any] = {
        "number": number,
        "unit": unit,
        "floor": floor,
        "use": use,
        "owner": owner,
    }
    return _apply(session, house, values, "population.house.update", actor)


def move_in(session: Session, person: Person, house: House, *, relation: str = "owner",
            on: date | None = None, actor: Actor | None = None) -> Residence:  # fmt: skip
    """Link ``person`` to ``house`` (人到户) from ``on`` (today by default). A person lives in one
    place: a current residence elsewhere ends on ``on`` (kept as history)."""
    on = on or date.today()
    problems: list[str] = []
    if relation not in RELATIONS:
        problems.append(f"居住关系应为 {'、'.join(RELATIONS.values())} 之一")
    if house.node_path != person.node_path:
        problems.append("房屋不在该人员所属网格，请先迁移人员")
    if on > date.today():
        problems.append("入住日期不能晚于今天")
    current = list(session.scalars(select(Residence).where(col(Residence.person_id) == person.id,
                                                           col(Residence.moved_out).is_(None))))  # fmt: skip
    if any(r.house_id == house.id for r in current):
        problems.append("该人员已在此房屋居住")
    elif any(r.moved_in > on for r in current):
        problems.append("入住日期早于现居住记录的入住日期")
    if problems:
        raise ValidationError("未入住", problems)
    for old in current:
        old.moved_out = on
        session.add(old)
    r = Residence(person_id=person.id or 0, house_id=house.id or 0, node_path=house.node_path, relation=relation,
                  moved_in=on)  # fmt: skip
    session.add(r)
    session.flush()
    audit(session, "population.residence.in", actor=_system(actor), object_type="population_residence",
          object_id=str(r.id), detail={"person": person.id, "house": house.id,
                                       "ended": [o.id for o in current]})  # fmt: skip
    return r


def move_out(
    session: Session, residence: Residence, on: date | None = None, *, actor: Actor | None = None
) -> None:
    """End a residence (搬离), keeping it as history."""
    on = on or date.today()
    if residence.moved_out is not None:
        raise ValidationError("未搬离", ["该居住记录已结束"])
    if on < residence.moved_in or on > date.today():
        raise ValidationError("未搬离", ["搬离日期应在入住日期与今天之间"])
    residence.moved_out = on
    session.add(residence)
    session.flush()
    audit(session, "population.residence.out", actor=_system(actor), object_type="population_residence",
          object_id=str(residence.id), detail={"person": residence.person_id})  # fmt: skip


# --- reads ---------------------------------------------------------------------------------------


def persons_filter(path: str, scope: ColumnElement[bool], *, kind: str = "", name: str = "") -> Any:
    """The conditions of the person list (subtree, scope, kind, name) — also used by exports."""
    conds = [subtree_filter(Person.node_path, path), scope]
    if kind in KINDS:
        conds.append(col(Person.kind) == kind)
    if name.strip():
        conds.append(col(Person.name).contains(name.strip(), autoescape=True))
    return conds


def persons_within(session: Session, path: str, scope: ColumnElement[bool], *, kind: str = "", name: str = "",
                   limit: int = 200) -> Sequence[Person]:  # fmt: skip
    """Persons of the subtree at ``path`` that ``scope`` lets the user see, filtered."""
    stmt = select(Person).where(*persons_filter(path, scope, kind=kind, name=name))
    return list(session.scalars(stmt.order_by(col(Person.node_path), col(Person.id)).limit(limit)))


def buildings_within(
    session: Session, path: str, scope: ColumnElement[bool], limit: int = 100
) -> Sequence[Building]:
    """Buildings of the subtree at ``path`` in scope."""
    stmt = select(Building).where(subtree_filter(Building.node_path, path), scope)
    return list(
        session.scalars(stmt.order_by(col(Building.node_path), col(Building.id)).limit(limit))
    )


def claims_within(session: Session, path: str, scope_claimant: ColumnElement[bool],
                  scope_holder: ColumnElement[bool]) -> Sequence[Claim]:  # fmt: skip
    """Open claims seen from the subtree at ``path``: raised there or against a person held there."""
    mine = or_(
        subtree_filter(Claim.node_path, path) & scope_claimant,
        subtree_filter(Claim.holder_path, path) & scope_holder,
    )
    stmt = select(Claim).where(col(Claim.status) == "open", mine).order_by(col(Claim.id))
    return list(session.scalars(stmt))


def transfers(session: Session, person: Person) -> list[Transfer]:
    """A person's moves between grids, oldest first."""
    stmt = select(Transfer).where(col(Transfer.person_id) == person.id).order_by(col(Transfer.id))
    return list(session.scalars(stmt))


def history(
    session: Session, person: Person
) -> tuple[list[tuple[Residence, House, Building]], list[KindChange]]:
    """A person's residences (newest first, with house and building) and kind changes."""
    rows = session.execute(
        select(Residence, House, Building)
        .join(House, col(House.id) == Residence.house_id)
        .join(Building, col(Building.id) == House.building_id)
        .where(col(Residence.person_id) == person.id)
        .order_by(col(Residence.moved_in).desc(), col(Residence.id).desc())
    ).all()
    changes = session.scalars(select(KindChange).where(col(KindChange.person_id) == person.id)
                              .order_by(col(KindChange.id)))  # fmt: skip
    return [(r, h, b) for r, h, b in rows], list(changes)


def floor_plan(
    session: Session, building: Building
) -> list[tuple[int, list[tuple[House, list[Person]]]]]:
    """Floors (top first) × houses with their current occupants."""
    houses = list(session.scalars(select(House).where(col(House.building_id) == building.id)
                                  .order_by(col(House.floor), col(House.unit), col(House.number))))  # fmt: skip
    occupants: dict[int, list[Person]] = {}
    if houses:
        rows = session.execute(
            select(col(Residence.house_id), Person).join(Person, col(Person.id) == Residence.person_id)
            .where(col(Residence.house_id).in_([h.id for h in houses]), col(Residence.moved_out).is_(None))
            .order_by(col(Person.id))
        ).all()  # fmt: skip
        for house_id, p in rows:
            occupants.setdefault(house_id, []).append(p)
    floors: dict[int, list[tuple[House, list[Person]]]] = {}
    for h in houses:
        floors.setdefault(h.floor, []).append((h, occupants.get(h.id or 0, [])))
    return sorted(floors.items(), reverse=True)


def by_kind_source() -> Any:
    """The indicator's recount source: persons per grid path and kind."""
    from sqlalchemy import func

    t = Person.__table__  # type: ignore[attr-defined]
    return select(t.c.node_path, t.c.kind, func.count()).group_by(t.c.node_path, t.c.kind)
