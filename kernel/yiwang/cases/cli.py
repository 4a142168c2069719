"""``yiwang workflow …``: check, show and simulate the declared workflows."""

from __future__ import annotations

from typing import Any

import click

from yiwang.cases.workflow import PREVIOUS, Workflow
from yiwang.errors import NotFound, ValidationError


@click.group("workflow")
def workflow_group() -> None:
    """事件处置流程：校验、查看与模拟。"""


def _kernel() -> Any:
    """Declarations only: no database needed."""
    from yiwang.cli.main import Context

    return click.get_current_context().ensure_object(Context).kernel


def _workflow(kernel: Any, name: str) -> Workflow:
    wf: Workflow | None = kernel.cases.workflows.get(name)
    if wf is None:
        known = "、".join(sorted(kernel.cases.workflows)) or "无"
        raise NotFound(f"流程 {name} 未声明（已声明: {known}）")
    return wf


@workflow_group.command("check")
def check() -> None:
    """校验每个已声明流程（状态可达、有终止状态、权限已声明）与事件类型。"""
    kernel = _kernel()
    failures = 0
    for name, problems in sorted(kernel.cases.problems().items()):
        wf = kernel.cases.workflows[name]
        if problems:
            failures += 1
            click.echo(f"✗ {name}（{wf.title}）")
            for p in problems:
                click.echo(f"    - {p}")
        else:
            click.echo(f"✓ {name}（{wf.title}）: {len(wf.states)} 个状态, {len(wf.actions)} 个操作")
    types = kernel.cases.types
    click.echo(f"事件类型 {len(types)} 个: " + "、".join(f"{t.title}({t.name})" for t in types.values()))
    if failures:
        raise ValidationError(f"{failures} 个流程有问题")


@workflow_group.command("show")
@click.argument("name", default="standard")
def show(name: str) -> None:
    """列出流程的状态与操作。"""
    wf = _workflow(_kernel(), name)
    click.echo(f"{wf.name}（{wf.title}），初始状态: {wf.initial}")
    for s in wf.states:
        flags = [f for f, on in (("终止", s.terminal), (f"计时:{s.clock}", bool(s.clock))) if on]
        click.echo(f"  状态 {s.name:<12} {s.title}" + (f"  [{' '.join(flags)}]" if flags else ""))
    for a in wf.actions:
        target = "（不变）" if not a.target else ("（恢复原状态）" if a.target == PREVIOUS else a.target)
        needs = [n for n, on in (("意见", a.opinion), ("附件", a.attachment)) if on]
        needs += [f.label for f in a.fields]
        click.echo(
            f"  操作 {a.name:<15} {a.title:<6} {','.join(a.sources)} → {target}  权限 {a.permission}"
            + (f"  须填: {'、'.join(needs)}" if needs else "")
        )


@workflow_group.command("simulate")
@click.argument("name")
@click.argument("actions", nargs=-1, required=True)
def simulate(name: str, actions: tuple[str, ...]) -> None:
    """从初始状态依次执行 ACTIONS，打印每一步的状态；遇到不可执行的操作时报错。"""
    wf = _workflow(_kernel(), name)
    state, before = wf.initial, ""
    click.echo(f"  {state}（{wf.state(state).title}）")
    for step in actions:
        try:
            action = wf.action(step)
        except KeyError:
            raise ValidationError(f"流程 {name} 中没有操作 {step}") from None
        if not action.starts_from(state, wf.terminal):
            raise ValidationError(f"状态 {state}（{wf.state(state).title}）下不能执行 {step}（{action.title}）")
        if action.target == PREVIOUS:
            state, before = before or wf.initial, ""
        elif action.target:
            if action.effect == "suspend":
                before = state
            state = action.target
        click.echo(f"→ {action.title:<6} {state}（{wf.state(state).title}）")
