"""The net as a tree: paths, ancestor columns, subtree filters, kept counts, moves, the web page."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text

from yiwang.errors import ValidationError
from yiwang.grid import tree
from yiwang.grid.levels import Level
from yiwang.grid.tree import LEVEL_COLUMN, NewNode, T
from yiwang.testing import level_of
from yiwang.testing.database import clean

#: A small net: two cities, three counties, townships, communities, grids and a unit.
NET = [
    "45", "4501", "450107", "450107001", "450107001001", "45010700100101", "45010700100102",
    "4501070010010101", "450107001002", "45010700100201", "450107101", "450107101201",
    "45010710120101", "450108", "450108001", "450108001001", "45010800100101", "4502",
    "450202", "450202001", "450202001001", "45020200100101", "450202001002",
]  # fmt: skip


def add(
    kernel: Any,
    codes: Iterable[str],
    names: dict[str, str] | None = None,
    roots: Iterable[str] = (),
) -> list[int]:
    """Create nodes (parents first) in one unit of work; returns their ids."""
    rows = []
    for code in codes:
        level = level_of(code)
        parent = None if level == Level.PROVINCE or code in roots else _parent_of(code, level)
        rows.append(NewNode(code, (names or {}).get(code, f"节点{code}"), level, parent))
    with kernel.db.write() as s:
        return tree.bulk_create(s, rows, kernel.settings.grid_codes)


def _parent_of(code: str, level: Level) -> str:
    if level == Level.UNIT:
        return code[:-2]
    return code[: {2: 2, 3: 4, 4: 6, 5: 9, 6: 12}[int(level)]]


def rows(kernel: Any) -> dict[str, dict[str, Any]]:
    """Every node's stored columns (timestamps left out), by code."""
    with kernel.db.read() as s:
        result = s.connection().execute(select(T).order_by(T.c.id))
        return {
            r.code: {k: v for k, v in r._mapping.items() if k not in ("created_at", "updated_at")}
            for r in result
        }


def chain(by_id: dict[int, dict[str, Any]], node: dict[str, Any]) -> list[dict[str, Any]]:
    """Reference: the node's ancestors and itself, walking parent_id (root first)."""
    out = [node]
    while out[-1]["parent_id"] is not None:
        out.append(by_id[out[-1]["parent_id"]])
    return out[::-1]


def assert_consistent(kernel: Any) -> None:
    """Paths, depths and ancestor columns agree with the parent chain; kept counts are true."""
    nodes = rows(kernel)
    by_id = {n["id"]: n for n in nodes.values()}
    for node in nodes.values():
        line = chain(by_id, node)
        assert node["path"] == "/" + "".join(f"{n['id']}/" for n in line), node["code"]
        assert node["depth"] == len(line), node["code"]
        for level, column in LEVEL_COLUMN.items():
            expected = next((n["id"] for n in line if n["level"] == level), None)
            assert node[column] == expected, (node["code"], column)
        if node["parent_id"] is not None:
            assert node["code"].startswith(by_id[node["parent_id"]]["code"])
    with kernel.db.read() as s:
        assert tree.verify_counts(s) == []


# --- paths and ancestor columns ----------------------------------------------------------------


def test_path_depth_and_ancestor_columns_follow_the_chain(kernel: Any) -> None:
    line = [
        "45", "4501", "450107", "450107001", "450107001001", "45010700100101", "4501070010010101",
    ]  # fmt: skip
    ids = add(kernel, line)
    nodes = rows(kernel)
    for i, code in enumerate(line):
        node = nodes[code]
        assert node["path"] == "/" + "".join(f"{n}/" for n in ids[: i + 1])
        assert node["depth"] == i + 1 == node["level"]
        assert tree.ancestor_ids(node["path"]) == ids[: i + 1]
        for level, column in LEVEL_COLUMN.items():
            assert node[column] == (ids[level - 1] if level <= i + 1 else None), (code, column)
    assert_consistent(kernel)


def test_a_county_root_starts_at_depth_one_without_higher_ancestors(kernel: Any) -> None:
    [county, township] = add(kernel, ["450107", "450107001"], roots=["450107"])
    node = rows(kernel)["450107001"]
    assert (node["path"], node["depth"]) == (f"/{county}/{township}/", 2)
    assert (node["province_id"], node["city_id"], node["county_id"]) == (None, None, county)


#: Two cities of twenty counties each: city 4501 gets id 2 and its sibling 4502 id 23, so a
#: path compared without its closing '/' ("/1/2" against "/1/23/") would go wrong.
WIDE = ["45", "4501", *[f"4501{c:02d}" for c in range(1, 21)], "4502"]
WIDE += [*[f"4502{c:02d}" for c in range(1, 21)], "450201001", "450201001001"]


def test_is_within_equals_a_walk_over_parents(kernel: Any) -> None:
    add(kernel, WIDE + [c for c in NET if c not in WIDE])
    nodes = rows(kernel)
    by_id = {n["id"]: n for n in nodes.values()}
    for node in nodes.values():
        above = {n["id"] for n in chain(by_id, node)}
        for other in nodes.values():
            assert tree.is_within(node["path"], other["path"]) == (other["id"] in above), (
                node["code"], other["code"],
            )  # fmt: skip


def test_within_selects_exactly_the_subtree(kernel: Any) -> None:
    add(kernel, WIDE + [c for c in NET if c not in WIDE])
    nodes = rows(kernel)
    children: dict[int | None, list[int]] = {}
    for n in nodes.values():
        children.setdefault(n["parent_id"], []).append(n["id"])

    def below(node_id: int) -> set[int]:
        return {node_id}.union(*(below(c) for c in children.get(node_id, [])))

    with kernel.db.read() as s:
        for node in nodes.values():
            stmt = select(T.c.id).where(tree.within(T.c.path, node["path"]))
            found = set(s.connection().execute(stmt).scalars())
            assert found == below(node["id"]), node["code"]
            assert tree.subtree_count(s, tree.by_code(s, node["code"])) == len(found)


def test_paths_compare_bytewise_on_postgresql(kernel: Any) -> None:
    """Subtree range scans need '/' < '0'; a locale collation would break them in production."""
    if kernel.db.backend != "postgresql":
        pytest.skip("PostgreSQL only: SQLite compares bytes")
    with kernel.db.read() as s:
        collation = s.execute(
            text(
                "SELECT collation_name FROM information_schema.columns "
                "WHERE table_name = 'grid_node' AND column_name = 'path'"
            )
        ).scalar_one()
    assert collation == "C"


# --- reads -------------------------------------------------------------------------------------


def test_children_are_ordered_by_code_with_their_counts(kernel: Any) -> None:
    add(kernel, ["45", "4502", "4501", "450108", "450107", "450107001", "450107002"])
    add(kernel, ["450107001001", "450107001002", "45010700100102", "45010700100101"])
    add(kernel, ["45010700100201", "450107002001"])
    with kernel.db.read() as s:
        county = tree.by_code(s, "450107")
        assert [c.code for c in tree.children(s, None)] == ["45"]
        cities = tree.children(s, tree.by_code(s, "45").id)
        assert [(c.code, c.child_count, c.grid_count) for c in cities] == [
            ("4501", 2, 3), ("4502", 0, 0),
        ]  # fmt: skip
        towns = tree.children(s, county.id)
        assert [(c.code, c.child_count, c.grid_count, c.kind) for c in towns] == [
            ("450107001", 2, 3, "街道"), ("450107002", 1, 0, "街道"),
        ]  # fmt: skip
        community = tree.by_code(s, "450107001001")
        grids = tree.children(s, community.id)
        assert [c.code for c in grids] == ["45010700100101", "45010700100102"]
        trail = tree.ancestors(s, community)
        assert [a.code for a in trail] == ["45", "4501", "450107", "450107001"]


def test_search_finds_by_code_prefix_and_by_name(kernel: Any) -> None:
    names = {"450107": "西乡塘区", "450202": "城中区"}
    add(kernel, ["45", "4501", "450107", "4502", "450202"], names)
    with kernel.db.read() as s:
        assert [r.code for r in tree.search(s, "4501")] == ["4501", "450107"]
        assert [r.code for r in tree.search(s, "西乡")] == ["450107"]
        under = tree.by_code(s, "4502").path
        assert [r.code for r in tree.search(s, "区", under=under)] == ["450202"]
        assert tree.search(s, "%") == [] and tree.search(s, "_") == []


# --- creating ----------------------------------------------------------------------------------


def test_bulk_create_lists_every_problem_and_writes_nothing(kernel: Any) -> None:
    add(kernel, ["45", "4501", "450107"])
    before = rows(kernel)
    batch = [
        NewNode("450108", "良庆区", Level.COUNTY, "4501"),  # fine on its own
        NewNode("450107", "重复", Level.COUNTY, "4501"),  # exists
        NewNode("450109001", "无上级", Level.TOWNSHIP, "450109"),  # parent missing
        NewNode("450108500", "越界", Level.TOWNSHIP, "450108"),  # 500 out of range
        NewNode("450108002", "   ", Level.TOWNSHIP, "450108"),  # empty name
        NewNode("450108001", "良庆街道", Level.TOWNSHIP, "450108"),  # fine on its own
        NewNode("450108001", "又一个", Level.TOWNSHIP, "450108"),  # twice in the batch
    ]
    labels = [f"第 {i} 行" for i in range(2, 9)]
    with pytest.raises(ValidationError) as info, kernel.db.write() as s:
        tree.bulk_create(s, batch, kernel.settings.grid_codes, labels)
    assert str(info.value).startswith("5 个节点有错误，未写入任何数据")
    assert info.value.problems == [
        "第 3 行: 编码已存在",
        "第 4 行: 上级编码 450109 不存在",
        "第 5 行: 乡镇(街道)编码末三位 500 不在允许范围内（001–099 街道、100–199 镇、200–399 乡）",
        "第 6 行: 名称为空",
        "第 8 行: 编码已存在",
    ]
    assert rows(kernel) == before


def test_create_reports_a_single_problem_without_batch_framing(kernel: Any) -> None:
    add(kernel, ["45", "4501"])
    with kernel.db.write() as s, pytest.raises(ValidationError) as info:
        tree.create(
            s, code="4601", name="外省", level=Level.CITY, parent=tree.by_code(s, "45"),
            rules=kernel.settings.grid_codes,
        )  # fmt: skip
    assert str(info.value) == "编码 4601 应以上级编码 45 开头"


# --- moving ------------------------------------------------------------------------------------


def move(kernel: Any, code: str, new_parent: str, new_code: str | None = None) -> int:
    with kernel.db.write() as s:
        node, parent = tree.by_code(s, code), tree.by_code(s, new_parent)
        return tree.move(s, node, parent, kernel.settings.grid_codes, new_code)


def test_moving_a_township_reprefixes_codes_and_fixes_columns_and_counts(kernel: Any) -> None:
    add(kernel, NET)
    before = rows(kernel)
    assert move(kernel, "450107001", "450108", new_code="450108005") == 7
    after = rows(kernel)
    assert "450107001" not in after
    renamed = {
        "450108005": "450107001", "450108005001": "450107001001",
        "45010800500101": "45010700100101", "45010800500102": "45010700100102",
        "4501080050010101": "4501070010010101", "450108005002": "450107001002",
        "45010800500201": "45010700100201",
    }  # fmt: skip
    county = after["450108"]
    for new, old in renamed.items():
        node, was = after[new], before[old]
        assert node["id"] == was["id"] and node["depth"] == was["depth"]
        assert node["path"] == county["path"] + was["path"][len(before["450107"]["path"]) :]
        assert node["county_id"] == county["id"] and node["city_id"] == county["city_id"]
        assert node["township_id"] == was["township_id"]
    assert after["450108005"]["parent_id"] == county["id"]
    assert (after["450107"]["child_count"], after["450107"]["grid_count"]) == (1, 1)
    assert (after["450108"]["child_count"], after["450108"]["grid_count"]) == (2, 4)
    assert after["4501"]["grid_count"] == before["4501"]["grid_count"] == 5
    assert_consistent(kernel)


def test_moving_a_county_to_another_city_rewrites_city_id_below(kernel: Any) -> None:
    add(kernel, NET)
    move(kernel, "450107", "4502", new_code="450207")
    after = rows(kernel)
    city = after["4502"]
    moved = [n for c, n in after.items() if c.startswith("450207")]
    assert len(moved) == 11
    assert all(n["city_id"] == city["id"] for n in moved)
    assert all(n["path"].startswith(city["path"]) for n in moved)
    assert (after["4501"]["child_count"], after["4501"]["grid_count"]) == (1, 1)
    assert (after["4502"]["child_count"], after["4502"]["grid_count"]) == (2, 5)
    assert after["45"]["grid_count"] == 6
    assert_consistent(kernel)


def test_a_node_whose_code_fits_the_new_parent_moves_without_a_new_code(kernel: Any) -> None:
    add(kernel, ["45", "4501", "450107", "450107001", "450107001001", "45010700100101", "4502"])
    add(kernel, ["450107001002"])
    # A second root county with the same prefix as the first, deployed alone.
    add(kernel, ["450108", "450108001"], roots=["450108"])
    move(kernel, "450108", "4501")
    after = rows(kernel)
    assert after["450108"]["parent_id"] == after["4501"]["id"]
    assert after["450108001"]["depth"] == 4
    assert after["450108001"]["province_id"] == after["45"]["id"]
    assert after["4501"]["child_count"] == 2
    assert_consistent(kernel)


def test_a_new_code_under_the_same_parent_renumbers_the_subtree(kernel: Any) -> None:
    add(kernel, NET)
    before = rows(kernel)
    assert move(kernel, "450107001", "450107", new_code="450107003") == 7
    after = rows(kernel)
    assert after["4501070030010101"]["id"] == before["4501070010010101"]["id"]
    assert after["4501070030010101"]["path"] == before["4501070010010101"]["path"]
    assert after["450107"]["child_count"] == before["450107"]["child_count"] == 2
    assert_consistent(kernel)


def test_moving_a_grid_carries_its_units_and_grid_counts(kernel: Any) -> None:
    add(kernel, NET)
    move(kernel, "45010700100101", "450202001002", new_code="45020200100205")
    after = rows(kernel)
    assert after["4502020010020501"]["grid_id"] == after["45020200100205"]["id"]
    assert after["4502020010020501"]["community_id"] == after["450202001002"]["id"]
    assert (after["4501"]["grid_count"], after["4502"]["grid_count"]) == (4, 2)
    assert_consistent(kernel)


@pytest.mark.parametrize(
    ("code", "new_parent", "new_code", "message"),
    [
        ("450107", "450107", None, "不能把节点移动到它自己或它的下级之下"),
        ("450107", "450107001001", "45010700100199", "不能把节点移动到它自己或它的下级之下"),
        ("450107001", "450107", None, "节点已在该上级之下"),
        ("450107001", "450108", None, "无法移动: 编码 450107001 应以上级编码 450108 开头"),
        ("450107001", "450108", "450107005", "无法移动: 编码 450107005 应以上级编码 450108 开头"),
        ("450107001", "450108", "450108001", "无法移动: 新编码 450108001 已被其他节点使用"),
        ("450107001", "450108", "450108400", "无法移动: 乡镇(街道)编码末三位 400"),
        ("450107001", "4502", "4502001", "无法移动: 乡镇(街道)的上级应为县(市、区)，实际为市"),
        ("450107", "450202", "450202", "无法移动: 县(市、区)的上级应为市，实际为县(市、区)"),
    ],
)
def test_a_refused_move_changes_nothing(
    kernel: Any, code: str, new_parent: str, new_code: str | None, message: str
) -> None:
    add(kernel, NET)
    before = rows(kernel)
    with pytest.raises(ValidationError) as info:
        move(kernel, code, new_parent, new_code)
    assert str(info.value).startswith(message)
    assert rows(kernel) == before


def test_a_move_is_undone_with_the_rest_of_its_unit_of_work(kernel: Any) -> None:
    add(kernel, NET)
    before = rows(kernel)
    with pytest.raises(RuntimeError), kernel.db.write() as s:
        node, parent = tree.by_code(s, "450107"), tree.by_code(s, "4502")
        assert tree.move(s, node, parent, kernel.settings.grid_codes, "450207") == 11
        assert tree.find_code(s, "450207001001") is not None
        raise RuntimeError("a later step of the same change fails")
    assert rows(kernel) == before


def test_moving_a_root_county_under_a_city(kernel: Any) -> None:
    """A county that started alone joins its city's net later."""
    add(kernel, ["450107", "450107001", "450107001001", "45010700100101"], roots=["450107"])
    add(kernel, ["45", "4501"])
    assert move(kernel, "450107", "4501") == 4
    after = rows(kernel)
    assert after["45"]["grid_count"] == after["4501"]["grid_count"] == 1
    assert after["45010700100101"]["depth"] == 6
    assert [c for c, n in after.items() if n["parent_id"] is None] == ["45"]
    assert_consistent(kernel)


def test_a_move_through_the_factory_is_seen_by_later_sessions(grid: Any, kernel: Any) -> None:
    grid.node("45010700100101")
    grid.node("450108")
    moved = grid.move("450107001", "450108", new_code="450108001")
    assert moved.code == "450108001" and moved.county_id == grid.get("450108").id
    assert grid.get("45010800100101").county_id == grid.get("450108").id
    assert_consistent(kernel)


# --- random creations and moves ----------------------------------------------------------------

#: How a child's code extends its parent's: (low, high, width) per level.
_CHILD_PART = {
    Level.CITY: (1, 12, 2), Level.COUNTY: (1, 12, 2), Level.TOWNSHIP: (1, 399, 3),
    Level.COMMUNITY: (1, 399, 3), Level.GRID: (1, 30, 2), Level.UNIT: (1, 30, 2),
}  # fmt: skip


#: Where each random run starts: a little of every level, and a root county beside the province.
START = [
    "45", "4501", "4502", "450101", "450102", "450201", "450101001", "450102001", "450201001",
    "450101001001", "450201001001", "45010100100101", "4501010010010101", "450199", "450199001",
]  # fmt: skip


def test_random_creations_and_moves_keep_paths_and_counts_true(kernel: Any) -> None:
    rules = kernel.settings.grid_codes

    class Net(RuleBasedStateMachine):
        """The model is ``code → parent code``; the database must agree after every step."""

        def __init__(self) -> None:
            super().__init__()
            clean(kernel.db)
            self.parent: dict[str, str | None] = {}

        @initialize()
        def start(self) -> None:
            add(kernel, START, roots=["450199"])  # a province and a county deployed alone
            self.parent = {
                c: (None if c in ("45", "450199") else _parent_of(c, level_of(c))) for c in START
            }

        @rule(data=st.data())
        def create(self, data: st.DataObject) -> None:
            parents = sorted(c for c in self.parent if level_of(c) < Level.UNIT)
            parent = data.draw(st.sampled_from(parents), label="parent")
            low, high, width = _CHILD_PART[Level(level_of(parent) + 1)]
            code = parent + f"{data.draw(st.integers(low, high), label='seq'):0{width}d}"
            if code in self.parent:
                return
            with kernel.db.write() as s:
                tree.bulk_create(s, [NewNode(code, "随机", level_of(code), parent)], rules)
            self.parent[code] = parent

        @rule(data=st.data())
        def move(self, data: st.DataObject) -> None:
            movable = sorted(c for c in self.parent if level_of(c) > Level.PROVINCE)
            code = data.draw(st.sampled_from(movable), label="node")
            level = level_of(code)
            targets = sorted(
                c for c in self.parent
                if level_of(c) == level - 1 and c != self.parent[code] and not c.startswith(code)
            )  # fmt: skip
            if not targets:
                return
            target = data.draw(st.sampled_from(targets), label="target")
            old_parent = self.parent[code]
            suffix = code[len(old_parent) :] if old_parent else code[len(code) - 2 :]
            new_code = target + suffix
            subtree = [c for c in self.parent if c.startswith(code)]
            renamed = {c: new_code + c[len(code) :] for c in subtree}
            clash = set(renamed.values()) & (set(self.parent) - set(subtree))
            with kernel.db.write() as s:
                node, parent = tree.by_code(s, code), tree.by_code(s, target)
                if clash:
                    with pytest.raises(ValidationError, match="已被其他节点使用"):
                        tree.move(s, node, parent, rules, new_code)
                    return
                assert tree.move(s, node, parent, rules, new_code) == len(subtree)
            for old, new in renamed.items():
                up = self.parent.pop(old)
                self.parent[new] = target if old == code else renamed[up]  # type: ignore[index]

        @invariant()
        def database_agrees(self) -> None:
            stored = rows(kernel)
            by_id = {n["id"]: n["code"] for n in stored.values()}
            assert {c: by_id.get(n["parent_id"]) for c, n in stored.items()} == self.parent
            assert_consistent(kernel)

    run_state_machine_as_test(
        Net, settings=hsettings(max_examples=20, stateful_step_count=15, deadline=None)
    )


# --- the web page ------------------------------------------------------------------------------


def test_node_page_shows_breadcrumbs_children_and_organisations(client: Any, grid: Any, login: Any) -> None:
    grid.node("45", "广西壮族自治区")
    grid.node("4501", "南宁市")
    grid.node("450107", "西乡塘区")
    town = grid.node("450107001", "衡阳街道")
    grid.node("450107001002", "北湖社区")
    grid.node("450107001001", "秀灵社区")
    grid.org(town, "衡阳街道综治中心")
    grid.org(town, "衡阳街道派出所", kind="department", department="公安")
    login()
    page = client.get("/grid/450107001")
    assert page.status_code == 200
    crumbs = page.text.split('<nav class="crumbs"', 1)[1].split("</nav>", 1)[0]
    positions = [crumbs.index(n) for n in ("广西壮族自治区", "南宁市", "西乡塘区", "衡阳街道")]
    assert positions == sorted(positions)
    assert 'aria-current="page">衡阳街道<' in crumbs
    assert page.text.index("秀灵社区") < page.text.index("北湖社区")  # ordered by code
    assert "下级（2）" in page.text
    assert "综治中心</span> 衡阳街道综治中心" in page.text
    assert "成员单位</span> 衡阳街道派出所" in page.text


def test_node_names_are_escaped_on_the_page(client: Any, grid: Any, login: Any) -> None:
    login()
    grid.node("4501", "<script>alert(1)</script>南宁")
    grid.node("450107", "<b>西乡塘</b>")
    for url in ("/grid/4501", "/grid/450107", "/grid/search?q=4501"):
        page = client.get(url)
        assert "<script>alert(1)" not in page.text and "<b>西乡塘" not in page.text, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;南宁" in page.text, url


def test_search_page_finds_nodes_by_code_prefix_and_by_name(client: Any, grid: Any, login: Any) -> None:
    login()
    grid.node("450107", "西乡塘区")
    grid.node("450202", "城中区")
    by_code = client.get("/grid/search", params={"q": "4501"}).text
    assert "西乡塘区" in by_code and "城中区" not in by_code
    by_name = client.get("/grid/search", params={"q": "城中"}).text
    assert "450202" in by_name and "西乡塘区" not in by_name
    assert "没有找到“不存在的地方”" in client.get("/grid/search", params={"q": "不存在的地方"}).text


def test_recount_finds_and_repairs_tampered_counts(kernel: Any, grid: Any) -> None:
    from sqlalchemy import update as sql_update

    grid.node("45010700100101")
    grid.node("45010700100102")
    with kernel.db.write() as s:
        s.execute(sql_update(tree.T).where(tree.T.c.code == "450107").values(grid_count=99, child_count=7))
    with kernel.db.write() as s:
        found = tree.recount(s, repair=False)
        assert ("450107", "grid_count", 99, 2) in found and ("450107", "child_count", 7, 1) in found
        assert tree.verify_counts(s) == found  # checking changed nothing
        assert tree.recount(s) == found
    with kernel.db.read() as s:
        assert tree.verify_counts(s) == []
