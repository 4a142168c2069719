"""Statistics rollups: indicators declared by plugins (``yiwang_indicators``), counts kept per
node and ancestor in the writing transaction, kept right by moves, verified and repaired by a
recount."""

from __future__ import annotations

import random
import types
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update

from yiwang.api import PATH_TYPE, Indicator, PluginSpec, hookimpl, move_paths, stats
from yiwang.cli.main import Context, cli
from yiwang.errors import PluginError, ValidationError
from yiwang.grid import tree
from yiwang.grid.service import move_node
from yiwang.stats.models import StatsRollup

ROLLUP = StatsRollup.__table__  # type: ignore[attr-defined]
META = MetaData()
ITEM = Table(
    "tally_item", META,
    Column("id", Integer, primary_key=True),
    Column("path", PATH_TYPE, nullable=False, index=True),
    Column("kind", String(10), nullable=False),
)  # fmt: skip
KINDS = ("a", "b", "c")
ITEMS = "tally.items"
ALL = "tally.all"


def _all_source(session: Any) -> Iterator[tuple[str, str, int]]:
    for path, n in session.execute(select(ITEM.c.path, func.count()).group_by(ITEM.c.path)):
        yield path, "", int(n)


def _tally_plugin() -> PluginSpec:
    hooks = types.SimpleNamespace()

    @hookimpl
    def yiwang_indicators() -> list[Indicator]:
        by_kind = select(ITEM.c.path, ITEM.c.kind, func.count()).group_by(ITEM.c.path, ITEM.c.kind)
        return [
            Indicator(ITEMS, "计数项", keys=KINDS, source=by_kind),
            Indicator(ALL, "计数项合计", source=_all_source),
            Indicator("tally.unchecked", "无来源指标"),
        ]

    @hookimpl
    def yiwang_node_moved(session: Any, node: Any, old_path: str) -> None:
        move_paths(session, ITEM.c.path, old_path, node.path)

    hooks.yiwang_indicators, hooks.yiwang_node_moved = yiwang_indicators, yiwang_node_moved
    return PluginSpec(name="tally", version="1.0", title="计数", api=">=1.0,<2", hooks=hooks)


TALLY = _tally_plugin()


def _bad_plugin() -> PluginSpec:
    hooks = types.SimpleNamespace()

    @hookimpl
    def yiwang_indicators() -> list[Indicator]:
        return [Indicator("population.persons", "冒名指标")]

    hooks.yiwang_indicators = yiwang_indicators
    return PluginSpec(name="impostor", version="1.0", title="冒名", api=">=1.0,<2", hooks=hooks)


@pytest.fixture
def tally(kernel: Any) -> Iterator[Any]:
    """The plugin's own table, created for the test."""
    META.create_all(kernel.db.engine)
    try:
        yield kernel
    finally:
        META.drop_all(kernel.db.engine)


# --- helpers: how a plugin writes its records and their counts ----------------------------------------


def put(s: Any, path: str, kind: str) -> int:
    item_id = int(
        s.execute(insert(ITEM).values(path=path, kind=kind).returning(ITEM.c.id)).scalar_one()
    )
    stats.add(s, ITEMS, path, key=kind)
    stats.add(s, ALL, path)
    return item_id


def rekind(s: Any, item_id: int, kind: str) -> None:
    path, old = s.execute(select(ITEM.c.path, ITEM.c.kind).where(ITEM.c.id == item_id)).one()
    s.execute(update(ITEM).where(ITEM.c.id == item_id).values(kind=kind))
    stats.move(s, ITEMS, old, path, path, new_key=kind)


def relocate(s: Any, item_id: int, new_path: str) -> None:
    path, kind = s.execute(select(ITEM.c.path, ITEM.c.kind).where(ITEM.c.id == item_id)).one()
    s.execute(update(ITEM).where(ITEM.c.id == item_id).values(path=new_path))
    stats.move(s, ITEMS, kind, path, new_path)
    stats.move(s, ALL, "", path, new_path)


def rows(kernel: Any) -> dict[tuple[int, str, str], int]:
    with kernel.db.read() as s:
        got = s.execute(select(ROLLUP.c.node_id, ROLLUP.c.indicator, ROLLUP.c.key, ROLLUP.c.value))
        return {(n, i, k): v for n, i, k, v in got if v}


def check(kernel: Any) -> list[stats.Discrepancy]:
    with kernel.db.read() as s:
        return stats.recount(kernel, s, check=True)


# --- tests ---------------------------------------------------------------------------------------------


@pytest.mark.with_plugins(TALLY)
def test_adds_in_a_write_unit_count_at_the_node_and_every_ancestor(tally: Any, grid: Any) -> None:
    g = grid.node("45010700100101")
    with tally.db.write() as s:
        for kind in ("a", "a", "b"):
            put(s, g.path, kind)
        assert stats.pending(s)  # queued, not yet written
    with tally.db.read() as s:
        for node_id in tree.ancestor_ids(g.path):
            assert stats.by_key(s, ITEMS, node_id) == {"a": 2, "b": 1}
            assert stats.by_key(s, ITEMS, node_id, KINDS) == {"a": 2, "b": 1, "c": 0}
            assert stats.value(s, ALL, node_id) == 3
            assert stats.value(s, ITEMS, node_id, "c") == 0
    assert len(rows(tally)) == 6 * 3  # province … grid, two keys plus the plain count
    with pytest.raises(ValueError), tally.db.write() as s:
        stats.add(s, ITEMS, "450107", "a")  # a code, not a path
    assert check(tally) == []


@pytest.mark.with_plugins(TALLY)
def test_a_write_unit_applies_one_batched_upsert_per_distinct_row(tally: Any, grid: Any) -> None:
    g1, g2 = grid.node("45010700100101"), grid.node("45010700100102")
    with tally.db.write() as s:
        for _ in range(50):
            put(s, g1.path, "a")
            put(s, g2.path, "b")
        put(s, g1.path, "c")
        rekind(s, 1, "c")  # the same item counted and re-kinded in one unit
        rekind(s, 1, "a")
        assert stats.pending(s)[(g1.path, ITEMS, "a")] == 50
        # Ancestors shared by both grids are summed before the upsert.
        expanded = stats.rollup.expand(stats.pending(s).items())
        assert expanded[(tree.ancestor_ids(g1.path)[0], ALL, "")] == 101
    with tally.db.read() as s:
        assert stats.by_key(s, ITEMS, g1.parent_id) == {"a": 50, "b": 50, "c": 1}
    assert check(tally) == []


@pytest.mark.with_plugins(TALLY)
def test_rollback_leaves_the_rollups_unchanged(tally: Any, grid: Any) -> None:
    g = grid.node("45010700100101")
    with tally.db.write() as s:
        put(s, g.path, "a")
    before = rows(tally)
    with pytest.raises(RuntimeError), tally.db.write() as s:
        put(s, g.path, "b")
        raise RuntimeError("abort")
    assert rows(tally) == before
    with tally.db.write() as s:  # a savepoint that rolls back drops only its own deltas
        put(s, g.path, "c")
        with pytest.raises(RuntimeError), s.begin_nested():
            put(s, g.path, "b")
            raise RuntimeError("abort")
    with tally.db.read() as s:
        assert stats.by_key(s, ITEMS, g.id) == {"a": 1, "c": 1}
    assert check(tally) == []


@pytest.mark.with_plugins(TALLY)
def test_children_read_gives_per_child_per_key_counts(tally: Any, grid: Any) -> None:
    g1, g2, g3 = (grid.node(c) for c in ("45010700100101", "45010700100201", "45010700100202"))
    grid.node("450107001003")  # a community with nothing counted
    with tally.db.write() as s:
        put(s, g1.path, "a")
        put(s, g2.path, "a")
        put(s, g2.path, "b")
        put(s, g3.path, "b")
    township = grid.get("450107001")
    with tally.db.read() as s:
        got = {row.code: counts for row, counts in stats.children(s, ITEMS, township.id, KINDS)}
        plain = {row.code: counts for row, counts in stats.children(s, ALL, township.id)}
    assert got == {
        "450107001001": {"a": 1, "b": 0, "c": 0},
        "450107001002": {"a": 1, "b": 2, "c": 0},
        "450107001003": {"a": 0, "b": 0, "c": 0},
    }
    assert plain == {"450107001001": {"": 1}, "450107001002": {"": 3}, "450107001003": {}}


@pytest.mark.with_plugins(TALLY)
def test_moving_a_subtree_moves_its_counts_and_equals_a_recount(tally: Any, grid: Any) -> None:
    g = grid.node("45010700100101")
    grid.node("45010800100101")
    with tally.db.write() as s:
        put(s, g.path, "a")
        put(s, g.path, "b")
    old_county, new_county = grid.get("450107"), grid.get("450108")
    moved = grid.move("450107001001", "450108001", new_code="450108001009")
    with tally.db.read() as s:
        assert stats.value(s, ALL, old_county.id) == 0
        assert stats.value(s, ALL, new_county.id) == 2
        assert stats.value(s, ALL, grid.get("4501").id) == 2  # the shared city is untouched
        assert stats.by_key(s, ITEMS, moved.id) == {"a": 1, "b": 1}
    assert check(tally) == []


@pytest.mark.with_plugins(TALLY)
def test_deltas_queued_before_a_move_in_the_same_unit_follow_the_subtree(
    tally: Any, grid: Any
) -> None:
    g = grid.node("45010700100101")
    grid.node("450108001")
    with tally.db.write() as s:
        put(s, g.path, "a")
        move_node(tally, s, tree.by_code(s, "450107001"), tree.by_code(s, "450108"), "450108002")
    with tally.db.read() as s:
        assert stats.value(s, ALL, grid.get("450108").id) == 1
        assert stats.value(s, ALL, grid.get("450107").id) == 0
    assert check(tally) == []


@pytest.mark.with_plugins(TALLY)
def test_a_random_mix_of_inserts_kind_changes_and_moves_ends_equal_to_a_recount(
    tally: Any, grid: Any
) -> None:
    rnd = random.Random(20261125)
    communities = [f"450107{t:03d}{c:03d}" for t in (1, 2) for c in (1, 2)]
    for code in communities:
        for g in (1, 2):
            grid.node(f"{code}{g:02d}")
    grid.node("450108001")
    serial = iter(range(10, 99))
    items: list[int] = []
    for _ in range(40):
        op = rnd.random()
        with tally.db.write() as s:
            grids = [
                (c, p)
                for c, p in s.execute(
                    select(tree.T.c.code, tree.T.c.path).where(tree.T.c.level == 6)
                )
            ]
            if op < 0.5 or not items:
                for _ in range(rnd.randint(1, 5)):
                    items.append(put(s, rnd.choice(grids)[1], rnd.choice(KINDS)))
            elif op < 0.7:
                rekind(s, rnd.choice(items), rnd.choice(KINDS))
            elif op < 0.85:
                relocate(s, rnd.choice(items), rnd.choice(grids)[1])
            else:  # move a grid to another community, or a community to another township
                if rnd.random() < 0.6:
                    code, _ = rnd.choice(grids)
                    parents = [c for c in communities if not code.startswith(c)]
                else:
                    code = rnd.choice(communities)
                    parents = [
                        t for t in ("450107001", "450107002", "450108001") if not code.startswith(t)
                    ]
                parent = rnd.choice(parents)
                new_code = parent + f"{next(serial):0{len(code) - len(parent)}d}"
                move_node(tally, s, tree.by_code(s, code), tree.by_code(s, parent), new_code)
                if code in communities:
                    communities[communities.index(code)] = new_code
                if rnd.random() < 0.5:  # and keep writing in the moving unit
                    under = tree.by_code(s, new_code).path
                    inside = (
                        s.execute(
                            select(tree.T.c.path).where(
                                tree.T.c.level == 6, tree.within(tree.T.c.path, under)
                            )
                        )
                        .scalars()
                        .all()
                    )
                    put(s, rnd.choice(inside), "a")
    assert check(tally) == []
    with tally.db.read() as s:
        total = s.execute(select(func.count()).select_from(ITEM)).scalar_one()
        assert stats.value(s, ALL, grid.get("45").id) == total


@pytest.mark.with_plugins(TALLY)
def test_recount_repairs_a_tampered_rollup_row(tally: Any, grid: Any) -> None:
    g = grid.node("45010700100101")
    with tally.db.write() as s:
        put(s, g.path, "a")
    county = grid.get("450107")
    with tally.db.write() as s:
        s.execute(
            update(ROLLUP).where(ROLLUP.c.node_id == county.id, ROLLUP.c.key == "a").values(value=7)
        )
        s.execute(insert(ROLLUP).values(node_id=county.id, indicator=ITEMS, key="c", value=2))
    found = check(tally)
    assert {(d.node_code, d.key, d.kept, d.actual) for d in found} == {
        ("450107", "a", 7, 1),
        ("450107", "c", 2, 0),
    }
    assert "450107" in found[0].describe() and "实际" in found[0].describe()
    with tally.db.write() as s:
        assert len(stats.recount(tally, s)) == 2
    assert check(tally) == []
    with tally.db.read() as s:
        assert stats.by_key(s, ITEMS, county.id) == {"a": 1}


@pytest.mark.with_plugins(TALLY)
def test_recount_command_lists_differences_in_chinese_and_repairs(
    tally: Any, grid: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = grid.node("45010700100101")
    with tally.db.write() as s:
        put(s, g.path, "b")
        stats.flush(s)
        s.execute(update(ROLLUP).values(value=ROLLUP.c.value + 1))  # a delta applied twice
    obj = Context()
    obj.__dict__["kernel"] = tally
    # The test database carries every installed plugin's migrations, this kernel only tally.
    monkeypatch.setattr("yiwang.cli.main._ready", lambda kernel: None)
    runner = CliRunner()
    result = runner.invoke(cli, ["stats", "recount", "--check"], obj=obj)
    assert isinstance(result.exception, ValidationError) and result.exception.exit_code == 5
    assert "统计汇总有 12 处与数据不一致" in str(result.exception)
    assert "tally.items[b] @ 450107: 记录值 2，实际 1" in str(result.exception)
    result = runner.invoke(cli, ["stats", "recount"], obj=obj)
    assert result.exit_code == 0, result.output
    assert "已修复 12 处" in result.output
    result = runner.invoke(cli, ["stats", "recount", "--check"], obj=obj)
    assert result.exit_code == 0 and "一致" in result.output
    bad = runner.invoke(cli, ["stats", "recount", "--indicator", "tally.nope"], obj=obj)
    assert isinstance(bad.exception, ValidationError)


@pytest.mark.with_plugins(TALLY)
def test_a_source_returning_an_undeclared_key_is_an_error(tally: Any, grid: Any) -> None:
    g = grid.node("45010700100101")
    with tally.db.write() as s:
        s.execute(insert(ITEM).values(path=g.path, kind="zz"))
    with pytest.raises(ValidationError, match="未声明的分类键"), tally.db.read() as s:
        stats.recount(tally, s, check=True)


@pytest.mark.with_plugins(_bad_plugin())
def test_yiwang_indicators_names_must_start_with_the_plugin_name(kernel: Any) -> None:
    with pytest.raises(PluginError, match="应以 impostor. 开头"):
        kernel.sync_declarations()


@pytest.mark.with_plugins(TALLY)
def test_declared_indicators_are_tagged_with_their_plugin(kernel: Any) -> None:
    declared = stats.declared_indicators(kernel)
    assert declared[ITEMS].plugin == "tally"
    assert declared[ITEMS].all_keys == KINDS
    assert declared[ALL].all_keys == ("",)
    kernel.sync_declarations()
