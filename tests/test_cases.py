"""The case engine: reporting from any channel, the standard workflow, routing, permissions,
idempotency, concurrency, clocks and cards on the working-day calendar."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from yiwang import stats
from yiwang.cases import clock, engine
from yiwang.cases.engine import Conflict
from yiwang.cases.models import Case, CaseCopy, RoutingRule
from yiwang.errors import Forbidden, ValidationError
from yiwang.testing import audit_entries
from yiwang.testing.cases import COUNTY, GRID, GRID2, T0, Net


def test_report_lands_at_the_community_station_with_a_serial_and_an_accept_clock(
    case_net: Net,
) -> None:
    case = case_net.report()
    assert case.state == "reported"
    assert case.org_id == case_net.orgs["station"].id
    assert case.serial.startswith("20260310") and len(case.serial) == 16
    assert case.clock == "accept"
    # 1 working day to accept, yellow after 2, red after 5 (Tuesday 10:00 → Wed/Thu/next Tue).
    assert engine.aware(case.due_at) == T0 + timedelta(days=1)
    assert engine.aware(case.yellow_at) == T0 + timedelta(days=2)
    assert engine.aware(case.red_at) == T0 + timedelta(days=7)
    [step] = case_net.steps(case.id)
    assert (step.action, step.to_state, step.to_org_id) == (
        "report",
        "reported",
        case_net.orgs["station"].id,
    )
    assert [e.action for e in audit_entries(case_net.kernel) if e.object_type == "case"] == [
        "cases.report"
    ]


def test_the_standard_loop_from_report_to_rating(case_net: Net) -> None:
    case = case_net.report()
    case = case_net.act("station", case, "accept")
    assert (case.state, case.clock) == ("accepted", "handle")
    # The police department sits at the county, outside the station's subtree.
    with pytest.raises(ValidationError, match="无法派遣"):
        case_net.act("station", case, "dispatch", target_org=case_net.orgs["police"].id)
    case = case_net.act("station", case, "escalate", opinion="需要街道协调")
    assert (case.state, case.org_id) == ("reported", case_net.orgs["township"].id)
    case = case_net.act("township", case, "accept")
    case = case_net.act("township", case, "escalate", opinion="需公安处置")
    assert case.org_id == case_net.orgs["county"].id
    case = case_net.act("county", case, "accept")
    case = case_net.act("county", case, "dispatch", target_org=case_net.orgs["police"].id)
    assert (case.state, case.org_id, case.clock) == (
        "dispatched",
        case_net.orgs["police"].id,
        "handle",
    )
    case = case_net.act("officer", case, "take")
    assert case.assignee_id == case_net.users["officer"].id
    with pytest.raises(ValidationError, match="请填写处理意见"):
        case_net.act("officer", case, "feedback")
    case = case_net.act("officer", case, "feedback", opinion="已更换井盖")
    assert (case.state, case.org_id, case.clock) == ("verifying", case_net.orgs["county"].id, "")
    case = case_net.act("county", case, "verify_fail", opinion="井盖不平整，返工")
    assert (case.state, case.org_id, case.rework_count) == (
        "dispatched",
        case_net.orgs["police"].id,
        1,
    )
    case = case_net.act("officer", case, "feedback", opinion="已重新安装")
    case = case_net.act("county", case, "verify_pass")
    case = case_net.act("county", case, "close")
    assert (case.state, case.close_type) == ("closed", "normal")
    case = case_net.act("county", case, "rate", fields={"rating": "4"})
    assert case.rating == 4
    with pytest.raises(ValidationError, match="已评价"):
        case_net.act("county", case, "rate", fields={"rating": "5"})
    actions = [s.action for s in case_net.steps(case.id)]
    assert actions == [
        "report", "accept", "escalate", "accept", "escalate", "accept", "dispatch", "take",
        "feedback", "verify_fail", "feedback", "verify_pass", "close", "rate",
    ]  # fmt: skip
    audited = [
        e.action for e in reversed(audit_entries(case_net.kernel)) if e.object_type == "case"
    ]
    assert audited == ["cases." + a for a in actions]
    with case_net.kernel.db.read() as s:
        assert stats.value(s, "cases.state", case_net.nodes[COUNTY].id, "closed") == 1
        assert stats.value(s, "cases.state", case_net.nodes[COUNTY].id, "reported") == 0


def test_send_back_returns_the_case_to_the_dispatching_unit(case_net: Net) -> None:
    case = case_net.report()
    case = case_net.act("station", case, "accept")
    case = case_net.act("station", case, "escalate", opinion="上报")
    case = case_net.act("township", case, "accept")
    case = case_net.act("township", case, "dispatch", target_org=case_net.orgs["station"].id)
    assert case.org_id == case_net.orgs["station"].id
    case = case_net.act("station", case, "send_back", opinion="不属于本社区")
    assert (case.state, case.org_id) == ("accepted", case_net.orgs["township"].id)


def test_grid_worker_settles_on_the_spot_and_only_the_reporter_may(case_net: Net) -> None:
    case = case_net.report()
    with pytest.raises(Forbidden):
        case_net.act("worker2", case, "self_handle", opinion="已处理")
    case = case_net.act("worker", case, "self_handle", opinion="已现场处理")
    assert (case.state, case.clock) == ("verifying", "")
    case = case_net.act("station", case, "verify_pass")
    case = case_net.act("station", case, "close")
    assert case.close_type == "normal"


def test_permissions_follow_the_holding_unit(case_net: Net) -> None:
    case = case_net.report()
    with pytest.raises(Forbidden):
        case_net.act("worker", case, "accept")
    with pytest.raises(Forbidden):
        case_net.act("leader", case, "accept")
    with pytest.raises(Forbidden):  # not at a node the grid worker covers
        case_net.report("worker2", node_id=case_net.nodes[GRID].id)


def test_report_validation_lists_every_problem_and_saves_nothing(case_net: Net) -> None:
    with pytest.raises(ValidationError) as info:
        case_net.report(
            title=" ", case_type="nope", urgency="x", lat=91.0, lon=None, reporter_phone="abc"
        )
    problems = info.value.problems
    assert "请填写标题" in problems and "事件类型无效: nope" in problems
    assert "经纬度须同时提供" in problems and "反映人电话格式不正确" in problems
    with case_net.kernel.db.read() as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar() == 0


def test_gcj02_location_is_stored_as_wgs84(case_net: Net) -> None:
    case = case_net.report(lat=22.8170, lon=108.3665, coord="gcj02")
    assert case.lat is not None and case.lon is not None
    assert abs(case.lat - 22.8170) > 1e-4  # shifted back to WGS-84
    from yiwang.api import distance_m, wgs84_to_gcj02

    assert distance_m(*wgs84_to_gcj02(case.lat, case.lon), 22.8170, 108.3665) < 0.05


def test_same_idempotency_key_three_times_makes_one_case(case_net: Net) -> None:
    ids = {case_net.report(channel_key="phone-msg-1").id for _ in range(3)}
    assert len(ids) == 1
    other = case_net.report(channel_key="phone-msg-1", channel="wechat")
    assert other.id not in ids  # keys are per channel


def test_concurrent_idempotent_reports_make_one_case(case_net: Net) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            results.append(case_net.report(channel_key="same").id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1


def test_stale_version_is_a_conflict(case_net: Net) -> None:
    case = case_net.report()
    case_net.act("station", case, "accept")
    with pytest.raises(Conflict, match="已被他人处理"):
        case_net.act("station", case.id, "reject", opinion="重复", version=case.version)


def test_concurrent_actions_exactly_one_wins(case_net: Net) -> None:
    case = case_net.report()
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def go(action: str, opinion: str) -> None:
        barrier.wait()
        try:
            case_net.act("station", case.id, action, version=case.version, opinion=opinion)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=go, args=a) for a in (("accept", ""), ("reject", "不属实"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    assert len(case_net.steps(case.id)) == 2


def test_routing_rule_sends_large_cases_to_the_township_and_copies_departments(
    case_net: Net,
) -> None:
    with case_net.kernel.db.write() as s:
        s.add(RoutingRule(node_id=case_net.nodes[COUNTY].id, node_path=case_net.nodes[COUNTY].path,
                          case_type="safety_hazard", scale="large", level=4, copy_departments="police"))  # fmt: skip
    small = case_net.report(case_type="safety_hazard")
    assert small.org_id == case_net.orgs["station"].id
    large = case_net.report(case_type="safety_hazard", scale="large")
    assert large.org_id == case_net.orgs["township"].id
    with case_net.kernel.db.read() as s:
        copies = (
            s.execute(select(CaseCopy.org_id).where(CaseCopy.case_id == large.id)).scalars().all()
        )
    assert copies == [case_net.orgs["police"].id]
    # Without a rule the scale decides: major → county.
    assert case_net.report(scale="major").org_id == case_net.orgs["county"].id


def test_clock_raises_cards_once_and_catches_up_after_downtime(case_net: Net) -> None:
    case = case_net.report()
    assert clock.run_clock(case_net.kernel, T0 + timedelta(hours=1)) == 0
    # Three weeks of downtime: the red card and the overdue flag rise at the first run, once.
    later = T0 + timedelta(days=21)
    assert clock.run_clock(case_net.kernel, later) == 2
    assert clock.run_clock(case_net.kernel, later) == 0
    case = case_net.case(case.id)
    assert (case.card, case.overdue, case.ever_overdue) == ("red", True, True)
    assert [s.action for s in case_net.steps(case.id)] == ["report", "card_red", "overdue"]
    # Accepting starts the handle clock: the card and overdue flag are for the new phase.
    case = case_net.act("station", case, "accept", now=later)
    assert (case.card, case.overdue, case.ever_overdue) == ("", False, True)


def test_yellow_card_then_red_card(case_net: Net) -> None:
    case = case_net.report()
    assert (
        clock.run_clock(case_net.kernel, T0 + timedelta(days=2, minutes=1)) == 2
    )  # overdue + yellow
    assert case_net.case(case.id).card == "yellow"
    assert clock.run_clock(case_net.kernel, T0 + timedelta(days=7, minutes=1)) == 1
    assert case_net.case(case.id).card == "red"


def test_suspension_pauses_the_clock(case_net: Net) -> None:
    case = case_net.report()
    due = engine.aware(case.due_at)
    case = case_net.act("station", case, "suspend", opinion="等待权属认定")
    assert clock.run_clock(case_net.kernel, T0 + timedelta(days=30)) == 0
    resumed_at = T0 + timedelta(days=7)  # the next Tuesday, same time
    case = case_net.act("station", case, "resume", now=resumed_at)
    assert case.state == "reported"
    assert engine.aware(case.due_at) == due + timedelta(days=7)


def test_extension_request_and_approval_moves_the_deadline(case_net: Net) -> None:
    case = case_net.report()
    case = case_net.act("station", case, "accept")
    case = case_net.act("station", case, "escalate", opinion="上报")
    case = case_net.act("township", case, "accept")
    case = case_net.act("township", case, "dispatch", target_org=case_net.orgs["station"].id)
    due = engine.aware(case.due_at)
    case = case_net.act(
        "station", case, "extend_request", opinion="需采购材料", fields={"days": "3"}
    )
    assert case.extension_days == 3
    with pytest.raises(ValidationError, match="已有待审批"):
        case_net.act("station", case, "extend_request", opinion="再延", fields={"days": "3"})
    with pytest.raises(Forbidden):
        case_net.act("station", case, "extend_approve")
    case = case_net.act("township", case, "extend_approve")
    assert case.extension_days is None
    assert due is not None and engine.aware(case.due_at) == due + timedelta(days=3)


def test_closed_case_changes_only_by_reopen(case_net: Net) -> None:
    case = case_net.report()
    case = case_net.act("worker", case, "self_handle", opinion="已处理")
    case = case_net.act("station", case, "verify_pass")
    case = case_net.act("station", case, "close")
    with pytest.raises(ValidationError, match="不能"):
        case_net.act("station", case.id, "accept", version=None)
    case = case_net.act("township", case, "reopen", opinion="群众反映未解决")
    assert (case.state, case.reopen_count, case.closed_at) == ("accepted", 1, None)


def test_copy_to_other_units(case_net: Net) -> None:
    case = case_net.report()
    case = case_net.act("station", case, "accept")
    with pytest.raises(ValidationError, match="请选择抄告单位"):
        case_net.act("station", case, "copy")
    case = case_net.act("station", case, "copy", copy_orgs=[case_net.orgs["police"].id])
    with case_net.kernel.db.read() as s:
        assert s.execute(select(func.count()).select_from(CaseCopy)).scalar() == 1
        assert engine.may_view(case_net.kernel, s, case_net.doer("officer"), case)
    step = case_net.steps(case.id)[-1]
    assert json.loads(step.data)["copied"] == ["兴宁区公安分局"]


def test_a_plugin_guard_vetoes_and_the_event_hook_hears_after_commit(case_net: Net) -> None:
    from yiwang.api import hookimpl

    heard: list[tuple[int, str]] = []

    class Guard:
        @hookimpl
        def yiwang_case_guard(self, case: Any, action: str) -> str | None:
            return "结案前须上传整改照片" if action == "accept" and "veto" in case.title else None

        @hookimpl
        def yiwang_case_changed(self, case_id: int, action: str) -> None:
            heard.append((case_id, action))

    case_net.kernel.host.pm.register(Guard(), name="guard-test")
    try:
        vetoed = case_net.report(title="veto me")
        with pytest.raises(ValidationError, match="整改照片"):
            case_net.act("station", vetoed, "accept")
        assert case_net.case(vetoed.id).state == "reported"
        case_net.act("station", case_net.report(), "accept")
    finally:
        case_net.kernel.host.pm.unregister(name="guard-test")
    assert [a for _, a in heard] == ["report", "report", "accept"]


def test_an_idempotency_key_never_opens_someone_elses_case(case_net: Net) -> None:
    case_net.report(channel_key="k-1")
    with pytest.raises(Forbidden, match="幂等键"):
        case_net.report("worker2", channel_key="k-1", node_id=case_net.nodes[GRID2].id)


def test_copies_stay_inside_the_cases_chain(case_net: Net, grid: Any) -> None:
    elsewhere = grid.org(grid.node("450108"), "青秀区综治中心")
    case = case_net.report()
    case = case_net.act("station", case, "accept")
    case = case_net.act("station", case, "escalate", opinion="上报")
    case = case_net.act("township", case, "accept")
    with pytest.raises(ValidationError) as info:
        case_net.act("township", case, "copy", copy_orgs=[elsewhere.id])
    assert info.value.problems == ["不能抄告辖区以外的单位: 青秀区综治中心"]
    # A member department above the holder is in the chain.
    case_net.act("township", case, "copy", copy_orgs=[case_net.orgs["police"].id])


def test_cases_follow_a_moved_subtree(case_net: Net, grid: Any) -> None:
    case = case_net.report()
    grid.node("450108")
    moved = grid.move("450107001", "450108", "450108009")
    after = case_net.case(int(case.id or 0))
    assert after.node_path.startswith(moved.path) and after.org_path.startswith(moved.path)
    with case_net.kernel.db.read() as s:  # the new county counts it, the old one no longer does
        assert stats.value(s, "cases.state", grid.get("450108").id, "reported") == 1
        assert stats.value(s, "cases.state", case_net.nodes[COUNTY].id, "reported") == 0


def test_a_citizen_reporter_hears_by_sms_when_the_case_is_accepted_and_closed(case_net: Net) -> None:
    import dataclasses

    from yiwang.notify.models import NotifyMessage

    kernel = case_net.kernel
    sms = dataclasses.replace(kernel.settings.notify.sms_http, url="http://127.0.0.1:9/sms")
    notify = dataclasses.replace(kernel.settings.notify, channels=("outbox", "sms_http"), sms_http=sms,
                                 deliver_on_commit=False)  # fmt: skip
    object.__setattr__(kernel.settings, "notify", notify)  # as a site file enabling SMS would
    citizen = case_net.report(channel="hotline", reporter_name="王芳", reporter_phone="13812345678")
    landline = case_net.report(channel="hotline", reporter_phone="0771-5551234", title="路面塌陷")
    case_net.act("station", citizen, "accept")
    case_net.act("station", landline, "accept")  # not a mobile: skipped, the action still happens
    with kernel.db.read() as s:
        rows = s.execute(  # messages to an address, not to a user
            select(NotifyMessage).where(NotifyMessage.channel == "sms_http", NotifyMessage.user_id.is_(None))  # type: ignore[arg-type, union-attr]
        ).scalars().all()
    assert [(r.ref_id, r.event) for r in rows] == [(citizen.id, "cases.citizen.受理")]
    assert case_net.case(int(landline.id or 0)).state == "accepted"


def test_two_clocks_at_once_raise_each_card_once(case_net: Net) -> None:
    """Two workers' clock runs at the same moment (a lease normally prevents it): each card and
    overdue flag is still written once — the compare-and-set on the case's version decides."""
    cases = [case_net.report(title=f"事件{i}") for i in range(6)]
    later = T0 + timedelta(days=21)
    done: list[int] = []
    barrier = threading.Barrier(2)

    def tick() -> None:
        barrier.wait()
        done.append(clock.run_clock(case_net.kernel, later))

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(done) == 12  # red card + overdue for each of the six cases, once
    for c in cases:
        assert [s.action for s in case_net.steps(int(c.id or 0))] == ["report", "card_red", "overdue"]
