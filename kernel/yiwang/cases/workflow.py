"""Workflows as data: states, actions and what each action requires (事件处置流程).

A workflow is a frozen value a plugin (or the kernel) declares; the kernel stores every distinct
definition as a numbered version and a case keeps the version it started with, so changing a
workflow never rewrites the history or the next step of cases already under way.

The kernel alone applies a transition (``yiwang.cases.engine``); a definition only says which
action leads where, who may take it and what it asks for. ``effect`` names one of the kernel's
built-in side effects (see ``EFFECTS``), so a workflow can reuse them without code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

#: Clocks a state may run (``State.clock``): time to accept, time to handle.
CLOCKS = ("accept", "handle")
#: Where an action sends the case (``Action.route``).
ROUTES = {
    "": "留在当前单位",
    "down": "派往下级单位或成员单位",
    "up": "上报上级综治中心",
    "back": "退回上一个经办单位",
    "copy": "抄告其他单位（不转移）",
}
#: Kernel side effects an action may name (``Action.effect``).
EFFECTS = {
    "": "无",
    "accept": "受理：开始处置计时",
    "dispatch": "派遣：开始处置计时",
    "feedback": "反馈：停止处置计时",
    "close": "结案：按是否超期记为正常或超期结案",
    "close_special": "特殊结案",
    "rework": "返工：重新计时，计入返工次数",
    "rate": "评价：记录满意度",
    "reopen": "重开：重新计时",
    "supervise": "督办：设置督办级别",
    "urge": "催办：通知经办单位",
    "extend_request": "申请延期",
    "extend_approve": "批准延期：顺延处置期限",
    "extend_reject": "驳回延期",
    "suspend": "挂起：暂停计时",
    "resume": "恢复：顺延暂停的时间",
    "copy": "抄告",
    "assign_self": "由操作人承办",
}
#: Form field kinds an action may ask for.
FIELD_KINDS = ("text", "int", "choice")
#: Pseudo target state of ``resume``: the state the case was suspended in.
PREVIOUS = "@previous"
ANY = "*"


@dataclass(frozen=True)
class State:
    """A state of the case (状态). ``terminal`` states end the case's clocks."""

    name: str
    title: str
    terminal: bool = False
    clock: str = ""


@dataclass(frozen=True)
class FormField:
    """An extra input an action asks for, validated by the kernel before the transition."""

    name: str
    label: str
    kind: str = "text"
    required: bool = True
    choices: tuple[tuple[str, str], ...] = ()
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class Action:
    """A step a user may take (操作).

    ``sources``: states it starts from (``"*"``: every non-terminal state). ``target``: the state it
    leads to (``""``: the state does not change; ``"@previous"``: back to the suspended state).
    ``permission``: needed at the node of the organisation holding the case (or, for actions on
    cases held below, at that node — assignments cover subtrees).
    """

    name: str
    title: str
    sources: tuple[str, ...]
    target: str
    permission: str
    opinion: bool = False
    attachment: bool = False
    route: str = ""
    effect: str = ""
    fields: tuple[FormField, ...] = ()
    #: Only the reporter channel's staff/grid worker who reported may take it (自行处置).
    reporter_only: bool = False
    #: Shown among the main buttons (else under "更多").
    primary: bool = True

    def starts_from(self, state: str, terminal: Iterable[str]) -> bool:
        if ANY in self.sources:
            return state not in set(terminal)
        return state in self.sources


@dataclass(frozen=True)
class Workflow:
    """A named workflow: its states, actions and the state a new case starts in."""

    name: str
    title: str
    states: tuple[State, ...]
    actions: tuple[Action, ...]
    initial: str

    def state(self, name: str) -> State:
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)

    def action(self, name: str) -> Action:
        for a in self.actions:
            if a.name == name:
                return a
        raise KeyError(name)

    @property
    def terminal(self) -> frozenset[str]:
        return frozenset(s.name for s in self.states if s.terminal)

    def actions_from(self, state: str) -> list[Action]:
        term = self.terminal
        return [a for a in self.actions if a.starts_from(state, term)]

    def as_data(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        """Identity of the definition: equal digests mean the same version."""
        text = json.dumps(self.as_data(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Workflow:
        def action(a: Mapping[str, Any]) -> Action:
            fields = tuple(
                FormField(**{**f, "choices": tuple(tuple(c) for c in f.get("choices", ()))})
                for f in a.get("fields", ())
            )
            return Action(**{**a, "sources": tuple(a["sources"]), "fields": fields})

        return cls(
            name=data["name"],
            title=data["title"],
            states=tuple(State(**s) for s in data["states"]),
            actions=tuple(action(a) for a in data["actions"]),
            initial=data["initial"],
        )


@dataclass(frozen=True)
class Limits:
    """Time limits of a case type in working days (办理时限), with card thresholds (督办亮牌).

    ``handle_days`` may differ by the level of the handling organisation (``{5: 3, 4: 5}``:
    three days at a community, five at a township); ``handle_default`` applies elsewhere.
    """

    accept_days: float = 1
    handle_default: float = 5
    handle_days: Mapping[int, float] = field(default_factory=dict)
    accept_yellow: float = 2
    accept_red: float = 5
    handle_yellow: float = 5
    handle_red: float = 10

    def handle_for(self, level: int) -> float:
        return float(self.handle_days.get(level, self.handle_default))


@dataclass(frozen=True)
class CaseType:
    """A kind of case (事件类型) a module handles, with its own fields and workflow.

    ``fields`` are extra inputs on the report form, stored with the case (``Case.extra``).
    ``workflow`` names a declared workflow (``"standard"`` ships with the kernel).
    """

    name: str
    title: str
    workflow: str = "standard"
    fields: tuple[FormField, ...] = ()
    limits: Limits = field(default_factory=Limits)
    #: Grouping on the report form (大类), e.g. "社会治安".
    category: str = ""
    plugin: str = ""


def problems(wf: Workflow, permissions: Iterable[str]) -> list[str]:
    """What is wrong with a definition (``yiwang workflow check``); empty when it is sound."""
    out: list[str] = []
    names = [s.name for s in wf.states]
    known = set(names)
    perms = set(permissions)
    if len(known) != len(names):
        out.append("状态名称重复")
    if wf.initial not in known:
        out.append(f"初始状态 {wf.initial} 未定义")
    if not wf.terminal:
        out.append("没有终止状态")
    seen: set[str] = set()
    for a in wf.actions:
        where = f"操作 {a.name}"
        if a.name in seen:
            out.append(f"{where} 重复")
        seen.add(a.name)
        for src in a.sources:
            if src != ANY and src not in known:
                out.append(f"{where} 的起始状态 {src} 未定义")
        if a.target and a.target != PREVIOUS and a.target not in known:
            out.append(f"{where} 的目标状态 {a.target} 未定义")
        if a.permission not in perms:
            out.append(f"{where} 所需权限 {a.permission} 未声明")
        if a.route not in ROUTES:
            out.append(f"{where} 的去向 {a.route} 无效")
        if a.effect not in EFFECTS:
            out.append(f"{where} 的效果 {a.effect} 无效")
        for f in a.fields:
            if f.kind not in FIELD_KINDS:
                out.append(f"{where} 的表单字段 {f.name} 类型 {f.kind} 无效")
    for s in wf.states:
        if s.clock and s.clock not in CLOCKS:
            out.append(f"状态 {s.name} 的计时 {s.clock} 无效")
    if wf.initial in known:
        reach = reachable(wf)
        for s in wf.states:
            if s.name not in reach:
                out.append(f"状态 {s.name} 从初始状态不可达")
        for s in wf.states:
            if s.terminal or s.name not in reach:
                continue
            if not any(t in wf.terminal for t in reachable(wf, s.name)):
                out.append(f"状态 {s.name} 无法到达任何终止状态")
    return out


def reachable(wf: Workflow, start: str | None = None) -> set[str]:
    """States reachable from ``start`` (default: the initial state), itself included."""
    seen = {start or wf.initial}
    todo = list(seen)
    term = wf.terminal
    while todo:
        here = todo.pop()
        for a in wf.actions:
            if not a.starts_from(here, term):
                continue
            targets = [a.target] if a.target and a.target != PREVIOUS else []
            if a.target == PREVIOUS:
                targets = [s.name for s in wf.states if not s.terminal]
            for t in targets:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
    return seen
