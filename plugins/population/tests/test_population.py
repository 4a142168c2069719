"""Persons: GB 11643 validation, duplicates and claims, scope isolation, masking, reveal with a
purpose, rollups against a recount, and the demo."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from sqlalchemy import delete, select

from yiwang.api import Node, ValidationError, blind_equals, stats, validate_id

from yiwang_population import hooks, service
from yiwang_population.models import KINDS, Building, Claim, House, KindChange, Person, Residence

pytestmark = pytest.mark.with_plugins("population")

OWN_GRID = "45010700100101"
OWN_GRID2 = "45010700200101"
OTHER_GRID = "45010800100101"
PHONE = "13912345678"


def _id(area: str = "450107", born: str = "19850101", seq: str = "123") -> str:
    body = area + born + seq
    return body + hooks.checksum(body)


def _register(
    kernel: Any, grid: Any, code: str, id_number: str, name: str = "张三", **kw: Any
) -> Any:
    g = grid.node(code)
    with kernel.db.write() as s:
        return service.register(s, s.get(Node, g.id), name=name, id_number=id_number, **kw)


# --- GB 11643 through the service ---------------------------------------------------------------


def test_ids_are_validated_and_birth_date_and_sex_derived(kernel: Any, grid: Any) -> None:
    good = _id()
    bad_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    with pytest.raises(ValidationError, match="校验位"):
        _register(kernel, grid, OWN_GRID, bad_check)
    bad_date = _id(born="19850230")
    with pytest.raises(ValidationError, match="公民身份号码"):
        _register(kernel, grid, OWN_GRID, bad_date)
    with pytest.raises(ValidationError) as err:
        _register(kernel, grid, OWN_GRID, "", name="", kind="alien")
    assert "姓名不能为空" in str(err.value) and "人员类别" in str(err.value)
    assert bad_date not in str(err.value)
    legacy = _register(kernel, grid, OWN_GRID, "450107850101123")  # 15 digits: upgraded
    assert legacy.person is not None and legacy.warnings
    assert legacy.person.id_number == _id() and str(legacy.person.birth_date) == "1985-01-01"
    assert legacy.person.sex == "男"
    unknown = _register(kernel, grid, OWN_GRID, _id(area="100107", seq="124"), name="李四")
    assert unknown.person is not None and unknown.warnings  # unknown area: a warning only
    assert unknown.person.sex == "女"
    with pytest.raises(ValidationError, match="不是网格"), kernel.db.write() as s:
        service.register(
            s, s.get(Node, grid.get("450107").id), name="王五", id_number=_id(seq="125")
        )


def test_duplicate_in_grid_refused_other_grid_goes_to_claims(
    client: Any, kernel: Any, grid: Any, login: Any
) -> None:
    first = _register(kernel, grid, OWN_GRID, _id())
    with pytest.raises(ValidationError, match="已在本网格登记"):
        _register(kernel, grid, OWN_GRID, "450107850101123", name="张三")  # same ID, 15-digit form
    second = _register(kernel, grid, OWN_GRID2, _id(), name="张叁")
    assert second.person is None and second.claim is not None
    assert second.claim.person_id == first.person.id
    with kernel.db.read() as s:
        assert len(list(s.scalars(select(Person)))) == 1
        assert s.scalars(select(Claim)).one().holder_path == first.person.node_path
    # both grids' staff see the claim
    login("community_staff", OWN_GRID2[:12])
    assert "重复登记认领" in client.get(f"/p/population/?node={OWN_GRID2[:12]}").text
    client.cookies.clear()
    login("community_staff", OWN_GRID[:12])
    page = client.get(f"/p/population/?node={OWN_GRID[:12]}").text
    assert "重复登记认领" in page and _id() not in page


# --- scope and masking ----------------------------------------------------------------------------


def test_pages_are_scoped_and_masked(client: Any, kernel: Any, grid: Any, login: Any) -> None:
    own = _register(kernel, grid, OWN_GRID, _id(), name="本县居民", phone=PHONE).person
    other = _register(kernel, grid, OTHER_GRID, _id(area="450108"), name="外县居民").person
    with kernel.db.write() as s:
        b = service.add_building(
            s, s.get(Node, grid.get(OWN_GRID).id), "新竹路1号", name="1栋", floors=3
        )
        h = service.add_house(s, b, "201", floor=2, use="rent")
        service.move_in(s, s.get(Person, own.id), h, relation="tenant")
        ob = service.add_building(s, s.get(Node, grid.get(OTHER_GRID).id), "外县路1号", name="9栋")
    login("county_staff", "450107")
    page = client.get("/p/population/")
    assert page.status_code == 200
    assert "本*居民" in page.text or "本**" in page.text
    assert "外县" not in page.text.replace("外县路", "")  # no foreign person
    assert _id() not in page.text and PHONE not in page.text
    assert "450***********" in page.text and "139****5678" in page.text
    assert "西乡塘" in page.text or "450107001" in page.text  # the children counts table
    detail = client.get(f"/p/population/persons/{own.id}")
    assert detail.status_code == 200 and _id() not in detail.text and "139****5678" in detail.text
    assert "新竹路1号" in detail.text and "租住" in detail.text
    building = client.get(f"/p/population/buildings/{b.id}")
    assert building.status_code == 200 and "2 层" in building.text and "出租" in building.text
    assert client.get(f"/p/population/persons/{other.id}").status_code == 403
    assert client.get(f"/p/population/persons/{other.id}?node=450108").status_code == 403
    assert client.get(f"/p/population/buildings/{ob.id}").status_code == 403
    assert client.get("/p/population/?node=450108").status_code == 403
    assert "外县居民" not in client.get("/p/population/?q=外县").text
    assert client.get("/p/population/persons/999999").status_code == 404


def test_children_counts_come_from_the_rollups(
    client: Any, kernel: Any, grid: Any, login: Any
) -> None:
    _register(kernel, grid, OWN_GRID, _id(), kind="floating")
    _register(kernel, grid, OWN_GRID2, _id(seq="125"), kind="registered")
    login("county_staff", "450107")
    page = client.get("/p/population/?node=450107")
    rows = re.findall(
        r"<tr>\s*<td><a[^>]*>([^<]+)</a></td>\s*((?:<td>\d+</td>\s*)+)</tr>", page.text
    )
    counts = {name: [int(x) for x in re.findall(r"\d+", cells)] for name, cells in rows}
    assert sorted(counts.values()) == [[0, 1, 0, 0, 1], [1, 0, 0, 0, 1]]
    filtered = client.get("/p/population/?node=450107&kind=floating")
    assert len(re.findall(r"/p/population/persons/\d", filtered.text)) == 1


# --- reveal ---------------------------------------------------------------------------------------


def test_reveal_needs_a_purpose_and_is_audited(
    client: Any, kernel: Any, grid: Any, login: Any
) -> None:
    from yiwang.testing import audit_entries

    person = _register(kernel, grid, OWN_GRID, _id(), phone=PHONE).person
    login("community_staff", OWN_GRID[:12])
    detail = client.get(f"/p/population/persons/{person.id}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', detail.text)
    assert token, "详情页应有查看原文表单"
    url = f"/p/population/persons/{person.id}/reveal"
    none = client.post(
        url, data={"field": "id_number", "purpose": " ", "csrf_token": token.group(1)}
    )
    assert none.status_code == 422 and "用途" in none.text and _id() not in none.text
    assert audit_entries(kernel, action="privacy.reveal") == []
    ok = client.post(
        url, data={"field": "id_number", "purpose": "核实入户信息", "csrf_token": token.group(1)}
    )
    assert ok.status_code == 200 and _id() in ok.text
    [entry] = audit_entries(kernel, action="privacy.reveal")
    assert entry.object_id == str(person.id) and entry.purpose == "核实入户信息"
    assert _id() not in str(entry.detail)


def test_reveal_refused_without_the_privacy_grant(
    client: Any, kernel: Any, grid: Any, login: Any
) -> None:
    person = _register(kernel, grid, OWN_GRID, _id()).person
    login("county_staff", "450107")  # sees the register, holds no privacy.reveal
    detail = client.get(f"/p/population/persons/{person.id}")
    assert detail.status_code == 200 and "查看原文" not in detail.text
    from yiwang.testing import Users

    token = Users(kernel).csrf(client, f"/p/population/persons/{person.id}")
    r = client.post(f"/p/population/persons/{person.id}/reveal", data={"field": "id_number", "purpose": "核实入户信息"},
                    headers={"X-CSRF-Token": token})  # fmt: skip
    assert r.status_code == 403 and _id() not in r.text


# --- rollups --------------------------------------------------------------------------------------


def test_rollups_equal_a_recount_after_registrations_kind_changes_and_moves(
    kernel: Any, grid: Any
) -> None:
    rng = random.Random(3)
    codes = [OWN_GRID, OWN_GRID2, OTHER_GRID, "45020300100101"]
    ids: list[int] = []
    for i in range(30):
        reg = _register(
            kernel, grid, rng.choice(codes), _id(seq=f"{i:03d}"), kind=rng.choice(list(KINDS))
        )
        ids.append(reg.person.id)
    for _ in range(25):
        with kernel.db.write() as s:
            p = s.get(Person, rng.choice(ids))
            if rng.random() < 0.5:
                service.change_kind(s, p, rng.choice([k for k in KINDS if k != p.kind]), "核实")
            else:
                target = rng.choice([c for c in codes if grid.get(c).id != p.node_id])
                try:
                    service.move_person(s, p, s.get(Node, grid.get(target).id))
                except ValidationError:
                    pass
    with kernel.db.write() as s:
        assert stats.recount(kernel, s, check=True) == []
        total = sum(stats.by_key(s, "population.persons", grid.get("45").id).values())
        assert total == 30
        assert len(list(s.scalars(select(KindChange)))) > 0
    with pytest.raises(ValidationError, match="未改变"), kernel.db.write() as s:
        p = s.get(Person, ids[0])
        service.change_kind(s, p, p.kind)
    with kernel.db.write() as s:
        assert stats.recount(kernel, s, check=True) == []


def test_moving_a_subtree_moves_the_registers(kernel: Any, grid: Any) -> None:
    p = _register(kernel, grid, OWN_GRID, _id()).person
    grid.node("4502")
    grid.move("450107", "4502", new_code="450207")
    with kernel.db.write() as s:
        assert s.get(Person, p.id).node_path == grid.get("45020700100101").path
        assert stats.recount(kernel, s, check=True) == []


# --- demo -----------------------------------------------------------------------------------------


def _demo_rows(kernel: Any) -> list[tuple[str, str, str]]:
    with kernel.db.write() as s:
        hooks.yiwang_demo(kernel, s, "small", 11)
    with kernel.db.read() as s:
        return [
            (p.name, p.id_number, p.kind) for p in s.scalars(select(Person).order_by(Person.id))
        ]


def test_demo_is_deterministic_with_valid_generated_ids(kernel: Any, grid: Any) -> None:
    for code in (OWN_GRID, OWN_GRID2, OTHER_GRID):
        grid.node(code)
    first = _demo_rows(kernel)
    assert 9 <= len(first) <= 24
    assert all(validate_id(n).number == n for _, n, _ in first)
    with kernel.db.write() as s:
        assert stats.recount(kernel, s, check=True) == []
        for model in (Residence, House, Building, Claim, KindChange, Person):
            s.execute(delete(model))
    assert _demo_rows(kernel) == first


def test_full_demo_streams_valid_encrypted_persons_counted_in_the_rollups(kernel: Any, grid: Any) -> None:
    from yiwang_population import demo

    codes = [OWN_GRID, OWN_GRID2, OTHER_GRID]
    for code in codes:
        grid.node(code)
    with kernel.db.write() as s:
        assert demo.fill(s, "full", 7, persons=2 * demo.BATCH + 17) == 2 * demo.BATCH + 17
    with kernel.db.read() as s:
        persons = list(s.scalars(select(Person)))  # decrypts every ciphertext
        assert len(persons) >= 2 * demo.BATCH + 17
        numbers = [p.id_number for p in persons]
        assert len(set(numbers)) == len(numbers)
        sample = random.Random(1).sample(persons, 200)
        for p in sample:
            info = validate_id(p.id_number)
            assert (info.sex, info.birth_date) == (p.sex, p.birth_date)
            assert re.fullmatch(r"1[3578]\d{9}", p.phone or "")
        found = s.scalars(select(Person).where(blind_equals(Person.id_number, sample[0].id_number))).all()
        assert [f.id for f in found] == [sample[0].id]
        assert s.scalars(select(Person).where(blind_equals(Person.phone, sample[1].phone or ""))).first()
        total = stats.by_key(s, "population.persons", grid.get("45").id, keys=tuple(KINDS))
        assert sum(total.values()) == len(persons)
        assert total["registered"] > total["floating"] > total["foreign"] > 0
    with kernel.db.write() as s:
        assert stats.recount(kernel, s, check=True) == []
    # the bulk load into an empty table dropped and rebuilt the blind-index indexes
    from sqlalchemy import inspect

    with kernel.db.engine.connect() as c:
        names = {ix["name"] for ix in inspect(c).get_indexes("population_person")}
    assert {"ix_population_person_id_number_bidx", "ix_population_person_phone_bidx"} <= names


def test_node_page_shows_population_by_kind(
    client: Any, kernel: Any, grid: Any, login: Any
) -> None:
    grid.node("45010700100101")
    _register(kernel, grid, "45010700100101", _id(seq="125"), kind="floating")
    _register(kernel, grid, "45010700100101", _id(seq="127"))
    login("county_staff", "450107")
    page = client.get("/grid/450107")
    assert "实有人口（2）" in page.text and "流动人口" in page.text
    login("audit_admin", "45")  # no population.view: the slot stays empty
    assert "实有人口（" not in client.get("/grid/450107").text


def test_the_global_search_finds_people_by_id_number_and_name_in_scope(client: Any, kernel: Any, grid: Any, login: Any) -> None:
    """yiwang_search: a full ID number finds its person through the blind index, a name by
    substring; the hit is masked; a user of another community finds nothing."""
    from yiwang_population import service

    mine = grid.node("45010700100101")
    grid.node("45010700100201")
    number = "450107198001010017"
    with kernel.db.write() as s:
        service.register(s, mine, name="黄小明", id_number=number, kind="registered")
    login(role="community_staff", node="450107001001")

    def search(q: str) -> str:
        token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/search").text).group(1)  # type: ignore[union-attr]
        return str(client.post("/search", data={"q": q, "csrf_token": token}).text)

    by_number = search(number)
    # The number shows only where the user typed it (the box); the hit is masked.
    assert "人员（1）" in by_number and "黄*" in by_number and by_number.count(number) == 1
    assert "/p/population/persons/" in search("小明")
    login(role="community_staff", node="450107001002")
    assert "/p/population/persons/" not in search(number)


def test_dashboard_shows_population_by_kind_as_a_card(
    client: Any, kernel: Any, grid: Any, login: Any
) -> None:
    grid.node("45010700100101")
    _register(kernel, grid, "45010700100101", _id(seq="125"), kind="floating")
    _register(kernel, grid, "45010700100101", _id(seq="127"))
    login("county_staff", "450107")
    page = client.get("/dashboard").text
    card = re.search(r'<div class="dash-card" id="dash-population">.*?</dl>', page, re.S)
    assert card, page[:3000]
    assert ">2</a>）" in card.group(0)
    assert re.search(r'kind=floating" aria-label="流动人口 1 人">1</a>', card.group(0))
    listed = client.get("/p/population/?node=450107&kind=floating")
    assert listed.status_code == 200
