"""``yiwang demo`` calls the kernel's ``yiwang_demo`` first, then plugins in dependency order."""

from __future__ import annotations

import types
from typing import Any

import pytest
from sqlalchemy import func, select

from yiwang.api import Node, PluginSpec, hookimpl
from yiwang.demo import run

CALLS: list[tuple[str, int]] = []


def _plugin(name: str, requires: tuple[str, ...] = ()) -> PluginSpec:
    hooks = types.SimpleNamespace()

    @hookimpl
    def yiwang_demo(session: Any, scale: str, seed: int) -> None:
        nodes = session.execute(select(func.count()).select_from(Node)).scalar_one()
        CALLS.append((name, nodes))

    hooks.yiwang_demo = yiwang_demo
    return PluginSpec(name=name, version="1.0", title=name, api=">=1.0,<2", hooks=hooks, requires=requires)


FIRST = _plugin("first_demo")
SECOND = _plugin("second_demo", requires=("first_demo",))


@pytest.mark.with_plugins(SECOND, FIRST)
def test_demo_runs_kernel_first_then_dependency_order(kernel: Any) -> None:
    CALLS.clear()
    called = run(kernel, scale="small", seed=1)
    assert called == ["yiwang", "first_demo", "second_demo"]
    assert [name for name, _ in CALLS] == ["first_demo", "second_demo"]
    assert all(nodes > 2000 for _, nodes in CALLS)  # the net existed when plugins ran


@pytest.mark.with_plugins("notice")
def test_demo_fills_the_reference_plugin(kernel: Any) -> None:
    from yiwang_notice.models import Notice

    run(kernel, scale="small", seed=7)
    with kernel.db.read() as s:
        assert s.execute(select(func.count()).select_from(Notice)).scalar_one() > 0
