"""Households (户): a household number in a grid, living in a house (户入楼), with members and
their relation to the head (人到户); joining and leaving are kept as history. Every write is
audited (numbers and ids only, never names)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from yiwang.api import Actor, Level, Node, ValidationError, audit, subtree_filter

from yiwang_population.models import MEMBER_RELATIONS, Building, House, Household, Member, Person


def _system(actor: Actor | None) -> Actor:
    return actor or Actor.system("population")


def current_member(session: Session, person: Person) -> Member | None:
    """The person's current membership (a person belongs to one household at a time)."""
    stmt = select(Member).where(col(Member.person_id) == person.id, col(Member.left).is_(None))
    return session.scalars(stmt).first()


def _member_problems(session: Session, household: Household, person: Person, relation: str,
                     on: date, problems: list[str]) -> None:  # fmt: skip
    if relation not in MEMBER_RELATIONS:
        problems.append(f"与户主关系应为 {'、'.join(MEMBER_RELATIONS.values())} 之一")
    if person.node_id != household.node_id:
        problems.append("该人员不在本户所属网格，请先迁移人员")
    if current_member(session, person) is not None:
        problems.append("该人员已是其他户（或本户）的成员，请先办理迁出")
    if relation == "head" and household.head_id is not None:
        problems.append("本户已有户主")
    if on > date.today():
        problems.append("迁入日期不能晚于今天")


def create_household(session: Session, grid: Node, number: str, *, head: Person, house: House | None = None,
                     address: str | None = None, on: date | None = None,
                     actor: Actor | None = None) -> Household:  # fmt: skip
    """Open household ``number`` (户号, unique in the grid) in ``grid`` with ``head`` as 户主."""
    on = on or date.today()
    problems: list[str] = []
    if grid.level != Level.GRID:
        problems.append(f"{grid.name} 不是网格，户须登记到网格")
    number = (number or "").strip()
    if not number:
        problems.append("户号不能为空")
    elif len(number) > 30:
        problems.append("户号过长（最多 30 字）")
    address = (address or "").strip() or None
    if address and len(address) > 200:
        problems.append("住址过长（最多 200 字）")
    if house is not None and house.node_path != grid.path:
        problems.append("房屋不在该网格")
    if number and session.scalars(select(Household.id).where(col(Household.node_id) == grid.id,
                                                             col(Household.number) == number)).first():  # fmt: skip
        problems.append(f"户号 {number} 在本网格已存在")
    household = Household(node_id=grid.id or 0, node_path=grid.path, number=number,
                          house_id=house.id if house else None, address=address)  # fmt: skip
    _member_problems(session, household, head, "head", on, problems)
    if problems:
        raise ValidationError("户未登记", problems)
    try:
        with session.begin_nested():
            session.add(household)
            session.flush()
    except IntegrityError:
        raise ValidationError("户未登记", [f"户号 {number} 在本网格已存在"]) from None
    _join(session, household, head, "head", on)
    audit(session, "population.household.create", actor=_system(actor), object_type="population_household",
          object_id=str(household.id), detail={"grid": grid.code, "house": household.house_id})  # fmt: skip
    return household


def _join(
    session: Session, household: Household, person: Person, relation: str, on: date
) -> Member:
    m = Member(household_id=household.id or 0, person_id=person.id or 0, node_path=household.node_path,
               relation=relation, joined=on)  # fmt: skip
    if relation == "head":
        household.head_id = person.id
        session.add(household)
    session.add(m)
    session.flush()
    return m


def add_member(session: Session, household: Household, person: Person, relation: str, *,
               on: date | None = None, actor: Actor | None = None) -> Member:  # fmt: skip
    """``person`` joins ``household`` (迁入) as ``relation`` to the head."""
    on = on or date.today()
    problems: list[str] = []
    _member_problems(session, household, person, relation, on, problems)
    if problems:
        raise ValidationError("未迁入", problems)
    m = _join(session, household, person, relation, on)
    audit(session, "population.household.join", actor=_system(actor), object_type="population_household",
          object_id=str(household.id), detail={"person": person.id, "relation": relation})  # fmt: skip
    return m


def remove_member(session: Session, member: Member, *, on: date | None = None,
                  actor: Actor | None = None) -> None:  # fmt: skip
    """A member leaves (迁出), kept as history. The head leaves last, or after a new head is set."""
    on = on or date.today()
    household = session.get_one(Household, member.household_id)
    problems: list[str] = []
    if member.left is not None:
        problems.append("该成员已迁出")
    elif on < member.joined or on > date.today():
        problems.append("迁出日期应在迁入日期与今天之间")
    elif member.relation == "head" and _count(session, household) > 1:
        problems.append("户主须在其他成员之后迁出，或先变更户主")
    if problems:
        raise ValidationError("未迁出", problems)
    _leave(session, household, member, on)
    audit(session, "population.household.leave", actor=_system(actor), object_type="population_household",
          object_id=str(household.id), detail={"person": member.person_id})  # fmt: skip


def _count(session: Session, household: Household) -> int:
    stmt = select(func.count()).where(
        col(Member.household_id) == household.id, col(Member.left).is_(None)
    )
    return int(session.scalar(stmt) or 0)


def _leave(session: Session, household: Household, member: Member, on: date) -> None:
    member.left = max(on, member.joined)
    if household.head_id == member.person_id:
        household.head_id = None
        session.add(household)
    session.add(member)
    session.flush()


def set_head(session: Session, household: Household, member: Member, *, former: str = "other",
             actor: Actor | None = None) -> None:  # fmt: skip
    """Make ``member`` the head (变更户主); the former head stays as ``former`` (e.g. 配偶)."""
    problems: list[str] = []
    if member.household_id != household.id or member.left is not None:
        problems.append("只能将本户现有成员设为户主")
    elif member.relation == "head":
        problems.append("该成员已是户主")
    if former not in MEMBER_RELATIONS or former == "head":
        problems.append("请选择原户主与新户主的关系")
    if problems:
        raise ValidationError("户主未变更", problems)
    old = session.scalars(select(Member).where(col(Member.household_id) == household.id,
                                               col(Member.relation) == "head", col(Member.left).is_(None))).first()  # fmt: skip
    if old is not None:
        old.relation = former
        session.add(old)
        session.flush()
    member.relation = "head"
    household.head_id = member.person_id
    session.add_all([member, household])
    session.flush()
    audit(session, "population.household.head", actor=_system(actor), object_type="population_household",
          object_id=str(household.id), detail={"person": member.person_id})  # fmt: skip


def leave_all(session: Session, person: Person, on: date) -> None:
    """End the person's current membership (the person moved to another grid)."""
    m = current_member(session, person)
    if m is not None:
        _leave(session, session.get_one(Household, m.household_id), m, on)


# --- reads ---------------------------------------------------------------------------------------


def households_within(session: Session, path: str, scope: ColumnElement[bool],
                      limit: int = 100) -> Sequence[Household]:  # fmt: skip
    """Households of the subtree at ``path`` in scope."""
    stmt = select(Household).where(subtree_filter(Household.node_path, path), scope)
    return list(
        session.scalars(stmt.order_by(col(Household.node_path), col(Household.number)).limit(limit))
    )


def members(session: Session, household: Household) -> list[tuple[Member, Person]]:
    """Members, current first (head first), then those who left, with their persons."""
    rows = session.execute(
        select(Member, Person).join(Person, col(Person.id) == Member.person_id)
        .where(col(Member.household_id) == household.id)
        .order_by(col(Member.left).is_not(None), col(Member.relation) != "head", col(Member.joined), col(Member.id))
    ).all()  # fmt: skip
    return [(m, p) for m, p in rows]


def place(session: Session, household: Household) -> tuple[House, Building] | None:
    """The household's house and building (户入楼), if it has one."""
    if household.house_id is None:
        return None
    row = session.execute(select(House, Building).join(Building, col(Building.id) == House.building_id)
                          .where(col(House.id) == household.house_id)).first()  # fmt: skip
    return (row[0], row[1]) if row else None


def of_person(session: Session, person: Person) -> list[tuple[Member, Household]]:
    """The person's memberships, newest first."""
    rows = session.execute(
        select(Member, Household).join(Household, col(Household.id) == Member.household_id)
        .where(col(Member.person_id) == person.id).order_by(col(Member.joined).desc(), col(Member.id).desc())
    ).all()  # fmt: skip
    return [(m, h) for m, h in rows]


def of_house(session: Session, house: House) -> list[Household]:
    return list(session.scalars(select(Household).where(col(Household.house_id) == house.id)
                                .order_by(col(Household.number))))  # fmt: skip
