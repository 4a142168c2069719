"""A hypothesis state machine drives random actions by random people at random times against a
reference model of the standard workflow: which actions are allowed to whom, where the case
goes, and which cards and overdue flags the working-day clock must show.

Checked after every step: the case's state, holder, card and overdue flag equal the model's;
every change is one timeline step and one audit record; a closed case changes only by reopen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from yiwang.builtin import CASE_GRANTS
from yiwang.calendar import WorkCalendar
from yiwang.cases import clock, engine
from yiwang.cases.models import Case, CaseStep
from yiwang.cases.standard import STANDARD
from yiwang.errors import Conflict, Forbidden, ValidationError
from yiwang.testing.cases import T0, Net

pytestmark = pytest.mark.sqlite_only

#: Where each actor is assigned, as the organisations their subtree covers.
COVERS = {
    "worker": set(), "worker2": set(), "station": {"station"},
    "township": {"station", "township"}, "county": {"station", "township", "county", "police"},
    "officer": {"station", "township", "county", "police"}, "leader": {"station", "township", "county", "police"},
}  # fmt: skip
ROLE = {"worker": "grid_worker", "worker2": "grid_worker", "station": "community_staff",
        "township": "township_staff", "county": "county_staff", "officer": "dept_handler", "leader": "leader"}  # fmt: skip
PARENT = {"station": "township", "township": "county"}
#: Units a case held by each unit may be copied to: inside its area, or a department above it.
COPY_TO = {"station": {"station", "police"}, "township": {"township", "station", "police"},
           "county": {"county", "township", "station", "police"}, "police": {"police"}}  # fmt: skip
#: Dispatch targets below each holder (the police department sits at the county node).
BELOW = {
    "county": ["township", "station", "police"],
    "township": ["station"],
    "station": [],
    "police": [],
}
CAL = WorkCalendar()


def allows(actor: str, permission: str) -> bool:
    verbs = CASE_GRANTS.get(ROLE[actor], ())
    return permission.removeprefix("cases.") in verbs


@dataclass
class Model:
    state: str = "reported"
    holder: str = "station"
    moves: list[tuple[str, str]] = field(default_factory=list)  # (from, to) holder changes
    steps: int = 1
    suspended_from: str = ""
    extension: int | None = None
    rating: int | None = None
    # clock: kind, start of the current running segment, working days consumed before it
    clock: str = "accept"
    segment: datetime = T0
    consumed: float = 0.0
    paused: bool = False
    limits: tuple[float, float, float] = (1, 2, 5)  # due, yellow, red
    card: str = ""
    overdue: bool = False

    def used(self, now: datetime) -> float:
        return self.consumed + (0.0 if self.paused else CAL.elapsed(self.segment, now))

    def start_clock(self, kind: str, now: datetime) -> None:
        self.clock, self.segment, self.consumed, self.paused = kind, now, 0.0, False
        self.card, self.overdue = "", False
        if kind == "accept":
            self.limits = (1, 2, 5)
        elif kind == "handle":
            self.limits = (5, 5, 10)

    def tick(self, now: datetime) -> None:
        if not self.clock or self.paused:
            return
        due, yellow, red = self.limits
        used = self.used(now)
        if used >= red:
            self.card = "red"
        elif used >= yellow and self.card == "":
            self.card = "yellow"
        if used >= due:
            self.overdue = True


class CaseMachine(RuleBasedStateMachine):
    net: Net

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.model = Model()
        self.case_id = 0

    @initialize()
    def report(self) -> None:
        self.case_id = int(self.net.report("worker", now=self.now).id or 0)

    @rule(hours=st.integers(1, 96))
    def time_passes(self, hours: int) -> None:
        self.now += timedelta(hours=hours)
        clock.run_clock(self.net.kernel, self.now)
        before = (self.model.card, self.model.overdue)
        self.model.tick(self.now)
        after = (self.model.card, self.model.overdue)
        # Each rise is a timeline step: red/yellow card and the overdue flag.
        self.model.steps += (before[0] != after[0]) + (before[1] != after[1])

    @rule(
        action=st.sampled_from([a.name for a in STANDARD.actions]),
        actor=st.sampled_from(sorted(COVERS)),
        unit=st.sampled_from(["station", "township", "county", "police"]),
        opinion=st.sampled_from(["", "已处理"]),
    )
    def act(self, action: str, actor: str, unit: str, opinion: str) -> None:
        target = unit
        expected = self.expect(action, actor, target, opinion)
        kwargs: dict[str, Any] = {"opinion": opinion}
        if action == "dispatch":
            kwargs["target_org"] = self.net.orgs[target].id
        if action == "copy":
            kwargs["copy_orgs"] = [self.net.orgs[target].id]
        if action == "rate":
            kwargs["fields"] = {"rating": "4"}
        if action == "supervise":
            kwargs["fields"] = {"level": "yellow"}
        if action == "extend_request":
            kwargs["fields"] = {"days": "2"}
        try:
            self.net.act(actor, self.case_id, action, now=self.now, **kwargs)
            outcome = "ok"
        except Forbidden:
            outcome = "forbidden"
        except (ValidationError, Conflict):
            outcome = "invalid"
        assert outcome == expected, (action, actor, target, opinion, self.model)
        if outcome == "ok":
            self.apply(action, target)

    # --- the reference model ------------------------------------------------------------------

    def expect(self, action: str, actor: str, target: str, opinion: str) -> str:
        m = self.model
        a = STANDARD.action(action)
        if not a.starts_from(m.state, STANDARD.terminal):
            return "invalid"
        if a.reporter_only:
            if actor != "worker" or not allows(actor, a.permission):
                return "forbidden"
        elif m.holder not in COVERS[actor] or not allows(actor, a.permission):
            return "forbidden"
        if a.opinion and not opinion:
            return "invalid"
        if action == "dispatch" and target not in BELOW[m.holder]:
            return "invalid"
        if action == "copy" and target not in COPY_TO[m.holder]:
            return "invalid"
        if action == "escalate" and m.holder not in PARENT:
            return "invalid"
        if a.route == "back" and self.previous() is None and a.effect not in ("feedback", "rework"):
            return "invalid"
        if action == "extend_request" and m.extension:
            return "invalid"
        if action in ("extend_approve", "extend_reject") and not m.extension:
            return "invalid"
        if action == "rate" and m.rating is not None:
            return "invalid"
        return "ok"

    def previous(self) -> str | None:
        for src, dst in reversed(self.model.moves):
            if dst == self.model.holder:
                return src
        return None

    def apply(self, action: str, target: str) -> None:
        m = self.model
        a = STANDARD.action(action)
        m.steps += 1
        old_clock, old_holder = m.clock, m.holder
        new_holder = m.holder
        if action == "dispatch":
            new_holder = target
        elif action == "escalate":
            new_holder = PARENT[m.holder]
        elif a.route == "back":
            new_holder = self.previous() or m.holder
        if new_holder != m.holder:
            m.moves.append((m.holder, new_holder))
            m.holder = new_holder
        new_state = m.suspended_from if a.target == "@previous" else (a.target or m.state)
        if a.effect == "suspend":
            m.suspended_from = m.state
            m.consumed, m.paused = m.used(self.now), True
        elif a.effect == "resume":
            m.suspended_from = ""
            m.segment, m.paused = self.now, False
        elif a.effect == "extend_request":
            m.extension = 2
        elif a.effect == "extend_approve":
            due, yellow, red = m.limits
            m.limits = (due + (m.extension or 0), yellow, red)
            m.overdue = m.used(self.now) >= m.limits[0]
            m.extension = None
        elif a.effect == "extend_reject":
            m.extension = None
        elif a.effect == "rate":
            m.rating = 4
        elif a.effect == "reopen":
            m.rating = None
        m.state = new_state
        kind = STANDARD.state(new_state).clock
        if a.effect not in ("suspend", "resume", "extend_approve") and (
            kind != old_clock
            or (kind and new_holder != old_holder)
            or a.effect in ("reopen", "rework")
        ):
            m.start_clock(kind, self.now)
        if STANDARD.state(new_state).terminal:
            m.start_clock("", self.now)

    # --- invariants -----------------------------------------------------------------------------

    @invariant()
    def matches_the_model(self) -> None:
        if not self.case_id:
            return
        case = self.net.case(self.case_id)
        m = self.model
        assert case.state == m.state
        assert case.org_id == self.net.orgs[m.holder].id
        assert (case.card, case.overdue) == (m.card, m.overdue), (case.card, case.overdue, m)
        with self.net.kernel.db.read() as s:
            steps = s.execute(
                select(func.count())
                .select_from(CaseStep)
                .where(engine.STEP.c.case_id == self.case_id)
            ).scalar()
        assert steps == m.steps
        assert self.audit_count() == m.steps

    def audit_count(self) -> int:
        from yiwang.audit.models import AuditEvent

        with self.net.kernel.db.read() as s:
            return int(s.execute(
                select(func.count()).select_from(AuditEvent).where(
                    AuditEvent.object_type == "case", AuditEvent.object_id == str(self.case_id))  # type: ignore[arg-type]
            ).scalar_one())  # fmt: skip


def test_random_action_sequences_follow_the_reference_model(case_net: Net) -> None:
    CaseMachine.net = case_net
    run_state_machine_as_test(
        CaseMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        ),  # fmt: skip
    )


def test_closed_cases_change_only_by_reopen(case_net: Net) -> None:
    case = case_net.report()
    case = case_net.act("worker", case, "self_handle", opinion="已处理")
    case = case_net.act("station", case, "verify_pass")
    case = case_net.act("station", case, "close")
    wf = STANDARD
    for action in wf.actions:
        if action.name in ("reopen", "rate"):
            continue
        with pytest.raises((ValidationError, Forbidden)):
            case_net.act("county", case.id, action.name, opinion="x")
    assert case_net.case(int(case.id or 0)).state == "closed"
    assert isinstance(case_net.case(int(case.id or 0)), Case)


def _reached(net: Net) -> set[str]:
    with net.kernel.db.read() as s:
        return set(s.execute(select(engine.STEP.c.action).distinct()).scalars())
