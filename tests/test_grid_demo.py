"""The Guangxi demo net: provincial scale, determinism, real divisions, organisations, counts."""

from __future__ import annotations

from collections import Counter
from functools import cache
from typing import Any

import pytest
from sqlalchemy import func, select

from yiwang.errors import ValidationError
from yiwang.grid import tree
from yiwang.grid.codes import validate
from yiwang.grid.demo import build_demo_net, plan
from yiwang.grid.levels import Level
from yiwang.grid.models import Node, Organisation
from yiwang.grid.tree import NewNode
from yiwang.settings import load_settings

RULES = load_settings({"YIWANG_HOME": "/nonexistent/yiwang-test-home"}).grid_codes


@cache
def full(seed: int) -> tuple[NewNode, ...]:
    return tuple(plan("full", seed))


@pytest.mark.parametrize("seed", [1, 2024])
def test_full_plan_has_the_size_of_guangxi(seed: int) -> None:
    levels = Counter(row.level for row in full(seed))
    assert (levels[Level.PROVINCE], levels[Level.CITY], levels[Level.COUNTY]) == (1, 14, 111)
    for level, target in ((Level.TOWNSHIP, 1_200), (Level.COMMUNITY, 16_000), (Level.GRID, 22_000)):
        assert abs(levels[level] - target) <= target * 0.10, (level.name, levels[level])


def test_plan_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    assert plan("full", 1) == list(full(1))
    assert full(1) != full(2024)
    assert plan("small", 3) == plan("small", 3) != plan("small", 4)


def test_every_planned_node_has_a_valid_code_and_the_kind_its_code_says() -> None:
    level_of = {row.code: row.level for row in full(1)}
    for row in full(1):
        parent = (row.parent_code, level_of[row.parent_code]) if row.parent_code else None
        info = validate(row.code, row.level, parent, RULES)
        assert row.kind == info.kind, row
        if parent:
            assert level_of[parent[0]] == row.level - 1


def test_planned_names_do_not_repeat_among_siblings() -> None:
    siblings: dict[str | None, list[str]] = {}
    for row in full(1):
        siblings.setdefault(row.parent_code, []).append(row.name)
    for parent, names in siblings.items():
        assert len(names) == len(set(names)), parent


def test_an_unknown_scale_is_refused_in_chinese() -> None:
    with pytest.raises(ValidationError, match="未知的规模 huge（可选: small、full）"):
        plan("huge", 1)


def test_small_demo_in_the_database(kernel: Any) -> None:
    with kernel.db.write() as s:
        written = build_demo_net(kernel, s, scale="small", seed=1)
    with kernel.db.read() as s:
        nodes = list(s.scalars(select(Node)))
        by_code = {n.code: n for n in nodes}
        levels = Counter(n.level for n in nodes)
        assert written == len(nodes) == len(plan("small", 1))
        assert [levels[lv] for lv in Level] == [1, 14, 111, 222, 666, 1332, 0]
        assert by_code["45"].name == "广西壮族自治区"
        assert (by_code["4501"].name, by_code["4514"].name) == ("南宁市", "崇左市")
        assert by_code["450107"].name == "西乡塘区" and by_code["450181"].name == "横州市"
        assert by_code["450108"].name == "良庆区" and by_code["451481"].name == "凭祥市"
        assert (by_code["45"].child_count, by_code["45"].grid_count) == (14, 1332)
        assert (by_code["4501"].child_count, by_code["450107"].grid_count) == (12, 12)
        assert tree.verify_counts(s) == []

        orgs: dict[int, list[Organisation]] = {}
        for org in s.scalars(select(Organisation)):
            orgs.setdefault(org.node_id, []).append(org)
        for node in nodes:
            kinds = Counter(o.kind for o in orgs.get(node.id or 0, []))
            names = {o.name for o in orgs.get(node.id or 0, [])}
            if node.level <= Level.TOWNSHIP:
                assert kinds["centre"] == 1 and f"{node.name}综治中心" in names, node.code
            else:
                assert kinds["centre"] == 0, node.code
            assert kinds["station"] == (1 if node.level == Level.COMMUNITY else 0), node.code
            if node.level == Level.COMMUNITY:
                assert f"{node.name}网格工作站" in names
            if node.level == Level.GRID:
                assert not kinds, node.code
        county = orgs[by_code["450107"].id or 0]
        assert {o.department for o in county if o.kind == "department"} >= {
            "公安",
            "司法",
            "民政",
            "信访",
        }
        assert "西乡塘区医疗纠纷人民调解委员会" in {o.name for o in county if o.kind == "mediation"}
        total = s.execute(select(func.count()).select_from(Organisation)).scalar_one()
        assert total == len(nodes) - levels[Level.GRID] + 125 * 8 + 111 * 4

    with pytest.raises(ValidationError, match="演示数据只能写入空库"), kernel.db.write() as s:
        build_demo_net(kernel, s, scale="small", seed=2)
