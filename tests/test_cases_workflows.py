"""Workflows as data: plugins declare case types and workflows, definitions are versioned (a
case keeps the version it started with), ``yiwang workflow check`` finds broken definitions,
and deadlines follow the holiday calendar."""

from __future__ import annotations

import types
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from yiwang.api import Action, CaseType, FormField, Limits, PluginSpec, State, Workflow, hookimpl
from yiwang.cases import engine
from yiwang.cases.registry import CaseRegistry
from yiwang.cli.main import cli
from yiwang.errors import PluginError, ValidationError
from yiwang.testing.cases import Net

PATROL = Workflow(
    "roads.patrol", "护路巡查流程",
    states=(State("found", "已发现", clock="handle"), State("fixed", "已整改", terminal=True)),
    actions=(Action("fix", "整改完成", ("found",), "fixed", "cases.handle", opinion=True),),
    initial="found",
)  # fmt: skip
HAZARD = CaseType(
    "roads.hazard", "铁路沿线隐患", workflow="roads.patrol", category="护路护线",
    fields=(FormField("km", "公里标", "int", min=0, max=5000),),
    limits=Limits(handle_default=2, handle_yellow=1, handle_red=3),
)  # fmt: skip


def _roads(
    workflow: Workflow = PATROL, case_type: CaseType = HAZARD, name: str = "roads"
) -> PluginSpec:
    hooks = types.SimpleNamespace()

    @hookimpl
    def yiwang_workflows() -> list[Workflow]:
        return [workflow]

    @hookimpl
    def yiwang_case_types() -> list[CaseType]:
        return [case_type]

    hooks.yiwang_workflows, hooks.yiwang_case_types = yiwang_workflows, yiwang_case_types
    return PluginSpec(name=name, version="1.0", title="护路护线", api=">=1.0,<2", hooks=hooks)


ROADS = _roads()


@pytest.mark.with_plugins(ROADS)
def test_a_plugin_case_type_runs_its_own_workflow_and_fields(case_net: Net) -> None:
    with pytest.raises(ValidationError) as info:
        case_net.report(case_type="roads.hazard", extra={"km": "abc"})
    assert "公里标应为整数" in info.value.problems
    case = case_net.report(case_type="roads.hazard", extra={"km": "1203"})
    assert (case.workflow, case.state, case.clock) == ("roads.patrol", "found", "handle")
    assert engine.aware(case.due_at) == engine.aware(case.created_at).replace(
        day=12
    )  # 2 working days
    case = case_net.act("station", case, "fix", opinion="已清除障碍")
    assert case.state == "fixed"


def test_changed_definition_is_a_new_version_and_running_cases_keep_theirs(case_net: Net) -> None:
    kernel = case_net.kernel
    old = case_net.report()
    assert old.workflow_version == 1
    # A new release of the standard workflow drops 自行处置 and renames a state.
    std = kernel.cases.workflows["standard"]
    changed = Workflow(
        std.name, std.title,
        tuple(State(s.name, "已报" if s.name == "reported" else s.title, s.terminal, s.clock) for s in std.states),
        tuple(a for a in std.actions if a.name != "self_handle"), std.initial,
    )  # fmt: skip
    kernel.cases.workflows["standard"] = changed
    with kernel.db.write() as s:
        assert kernel.cases.sync(s)["standard"] == 2
    new = case_net.report()
    assert new.workflow_version == 2
    # The old case still runs by version 1: self_handle is still there for it.
    case_net.act("worker", old, "self_handle", opinion="已处理")
    with pytest.raises(ValidationError, match="没有此操作"):
        case_net.act("worker", new, "self_handle", opinion="已处理")
    with kernel.db.write() as s:  # syncing the same definition again stores nothing
        assert kernel.cases.sync(s)["standard"] == 2


def test_registry_refuses_foreign_names_and_unknown_workflows(kernel: Any) -> None:
    foreign = _roads(case_type=CaseType("population.x", "冒名", workflow="roads.patrol"))
    with pytest.raises(PluginError, match="应以 roads. 开头"):
        CaseRegistry(_kernel_with(kernel, foreign))
    missing = _roads(case_type=CaseType("roads.y", "无流程", workflow="roads.nope"))
    with pytest.raises(PluginError, match="未声明"):
        CaseRegistry(_kernel_with(kernel, missing))


def _kernel_with(kernel: Any, spec: PluginSpec) -> Any:
    import dataclasses

    from yiwang.kernel import Kernel

    settings = dataclasses.replace(kernel.settings, plugins_enabled=(spec.name,))
    return Kernel(settings, extra_plugins=[spec], db=kernel.db)


BROKEN = Workflow(
    "roads.broken", "有问题的流程",
    states=(State("a", "甲"), State("b", "乙"), State("island", "孤岛")),
    actions=(Action("go", "前进", ("a",), "b", "roads.nonexistent"),
             Action("bad", "坏目标", ("b",), "nowhere", "cases.handle")),
    initial="a",
)  # fmt: skip


@pytest.mark.with_plugins(
    _roads(workflow=BROKEN, case_type=CaseType("roads.z", "乙", workflow="roads.broken"))
)
def test_workflow_check_lists_every_problem(kernel: Any) -> None:
    problems = kernel.cases.problems()["roads.broken"]
    assert "没有终止状态" in problems
    assert "操作 go 所需权限 roads.nonexistent 未声明" in problems
    assert "操作 bad 的目标状态 nowhere 未定义" in problems
    assert "状态 island 从初始状态不可达" in problems
    assert kernel.cases.problems()["standard"] == []


def test_workflow_cli(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from yiwang.cli.main import Context

    runner = CliRunner()
    obj = Context()
    obj.__dict__["settings"] = settings
    ok = runner.invoke(cli, ["workflow", "check"], obj=obj)
    assert ok.exit_code == 0 and "✓ standard" in ok.output
    walk = runner.invoke(
        cli, ["workflow", "simulate", "standard", "accept", "dispatch", "take", "feedback"], obj=obj
    )
    assert walk.exit_code == 0 and walk.output.strip().endswith("verifying（待核查）")
    bad = runner.invoke(cli, ["workflow", "simulate", "standard", "close"], obj=obj)
    assert bad.exit_code != 0 and "不能执行 close" in str(bad.exception or bad.output)


def test_deadline_spans_the_national_day_holidays(case_net: Net) -> None:
    # Reported Tuesday 30 Sep 2025 10:00 (Beijing); 1–8 Oct are holidays, 11 Oct (Sat) is worked.
    start = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
    case = case_net.report(now=start)
    assert engine.aware(case.due_at) == datetime(2025, 10, 9, 2, 0, tzinfo=UTC)  # 1 working day
    assert engine.aware(case.yellow_at) == datetime(2025, 10, 10, 2, 0, tzinfo=UTC)  # 2
    # 5 working days: 30 Sep (rest), 9, 10, 11 (make-up Saturday), 13, 14 (10:00).
    assert engine.aware(case.red_at) == datetime(2025, 10, 14, 2, 0, tzinfo=UTC)
