"""Working-day calendar (工作日历): the State Council's holidays and make-up workdays, province
overrides that win and stay in their province, deadlines counted in working time, the cache
across workers, the admin page with its scope and audit, and the CLI."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import chinese_calendar
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from yiwang import audit
from yiwang.audit import Actor
from yiwang.calendar import Override, WorkCalendar, calendar_for, overrides_of
from yiwang.calendar.cache import CalendarCache, province_id_of
from yiwang.calendar.overrides import remove_override, set_override
from yiwang.cli.main import Context, cli
from yiwang.errors import NotFound, ValidationError
from yiwang.kernel import Kernel

CST = timezone(timedelta(hours=8))
CAL = WorkCalendar()


def cst(*args: int) -> datetime:
    """A Beijing-time instant."""
    return datetime(*args, tzinfo=CST)  # type: ignore[misc]


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


# --- the national arrangement ---------------------------------------------------------------------


def test_national_day_and_mid_autumn_2025() -> None:
    for d in days(date(2025, 10, 1), date(2025, 10, 8)):
        assert not CAL.is_workday(d), d
    assert CAL.is_workday(date(2025, 9, 28))  # Sunday, make-up workday
    assert CAL.is_workday(date(2025, 10, 11))  # Saturday, make-up workday
    assert not CAL.is_workday(date(2025, 9, 27)) and not CAL.is_workday(date(2025, 10, 12))
    assert CAL.is_workday(date(2025, 10, 9)) and CAL.is_workday(date(2025, 9, 30))
    assert CAL.describe(date(2025, 10, 1)).name == "国庆节"
    assert CAL.describe(date(2025, 10, 6)).name == "中秋节"
    assert CAL.describe(date(2025, 10, 11)).name == "国庆节调休"
    assert CAL.describe(date(2025, 10, 11)).mark == "班"
    # October 2025: Thu 9, Fri 10, Sat 11 (make-up), then three full weeks of five.
    assert CAL.workdays_between(date(2025, 10, 1), date(2025, 10, 31)) == 18
    assert CAL.workdays_between(date(2025, 9, 27), date(2025, 10, 12)) == 6  # 28–30, 9–11
    assert CAL.workdays_between(date(2025, 10, 8), date(2025, 10, 1)) == 0


def test_spring_festival_2026() -> None:
    # The package's 2026 data: Feb 15–23 off (nine days); Sat Feb 14 and Sat Feb 28 work.
    for d in days(date(2026, 2, 15), date(2026, 2, 23)):
        assert not CAL.is_workday(d), d
        assert CAL.describe(d).name == "春节"
    assert CAL.is_workday(date(2026, 2, 14)) and CAL.is_workday(date(2026, 2, 28))
    assert CAL.describe(date(2026, 2, 28)).name == "春节调休"
    assert CAL.is_workday(date(2026, 2, 24))
    assert CAL.workdays_between(date(2026, 2, 1), date(2026, 2, 28)) == 16


def test_table_equals_the_package_for_every_covered_day() -> None:
    covered = CAL.covered_years()
    assert covered[0] == 2004 and 2025 in covered and 2026 in covered
    for d in days(date(covered[0], 1, 1), date(covered[-1], 12, 31)):
        assert CAL.is_workday(d) == chinese_calendar.is_workday(d), d
        _, name = chinese_calendar.get_holiday_detail(d)
        assert (CAL.describe(d).source == "official") == (name is not None), d


def test_years_without_official_data_fall_back_to_monday_to_friday() -> None:
    assert 2027 not in CAL.covered_years()
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 1, 1))
    assert CAL.is_workday(date(2027, 1, 1))  # a Friday: no New Year's Day without the notice
    assert not CAL.is_workday(date(2027, 1, 2))
    assert CAL.describe(date(2027, 1, 1)).covered is False
    assert CAL.workdays_between(date(2027, 1, 1), date(2027, 12, 31)) == 261
    assert CAL.missing_years(date(2026, 11, 25)) == [2027]
    assert CAL.missing_years(date(2026, 6, 1)) == []
    with pytest.raises(ValidationError, match="超出工作日历支持的范围"):
        CAL.is_workday(date(2150, 1, 1))


# --- deadlines ------------------------------------------------------------------------------------


def test_deadline_starting_on_a_holiday_counts_from_the_next_working_day() -> None:
    # Oct 1–8 2025 off: counting begins Thu Oct 9 00:00; one day ends at its 24:00.
    assert CAL.deadline(cst(2025, 10, 1, 10), 1) == cst(2025, 10, 10)
    assert CAL.deadline(cst(2025, 10, 1, 10), 0.5) == cst(2025, 10, 9, 12)
    assert CAL.elapsed(cst(2025, 10, 1, 10), cst(2025, 10, 8, 23, 59)) == 0


def test_deadline_from_mid_friday_continues_on_monday() -> None:
    friday = cst(2025, 11, 14, 15)
    assert CAL.deadline(friday, 1) == cst(2025, 11, 17, 15)
    assert CAL.deadline(friday, 0.5) == cst(2025, 11, 17, 3)  # 9 h on Friday, 3 h on Monday
    assert CAL.deadline(friday, 5) == cst(2025, 11, 21, 15)


def test_deadline_crosses_a_make_up_saturday() -> None:
    assert CAL.deadline(cst(2025, 10, 10, 15), 1) == cst(2025, 10, 11, 15)  # Saturday works
    assert CAL.deadline(cst(2025, 10, 10, 15), 2) == cst(2025, 10, 13, 15)  # Sunday does not
    # Sep 30 10:00 + 3: Oct 9 10:00, Oct 10 10:00, Sat Oct 11 10:00.
    assert CAL.deadline(cst(2025, 9, 30, 10), 3) == cst(2025, 10, 11, 10)


def test_fractional_days_are_hours() -> None:
    start = cst(2025, 9, 30, 10)
    # 54 h: 14 h left on Sep 30, all of Oct 9, 16 h of Oct 10.
    assert CAL.deadline(start, 2.25) == cst(2025, 10, 10, 16)
    assert CAL.deadline(start, 1 / 24) == cst(2025, 9, 30, 11)
    assert CAL.elapsed(start, cst(2025, 10, 10, 16)) == pytest.approx(2.25, abs=1e-12)


def test_deadline_edges() -> None:
    start = cst(2025, 11, 14, 15)
    assert CAL.deadline(start, 0) == start and CAL.deadline(start, 0).tzinfo == UTC
    naive = datetime(2025, 11, 14, 7)  # naive is UTC: 15:00 in Beijing
    assert CAL.deadline(naive, 1) == cst(2025, 11, 17, 15)
    assert CAL.deadline(naive, 1).tzinfo == UTC
    # A limit that runs out at midnight ends at 24:00 of the last working day, not on Monday.
    assert CAL.deadline(cst(2025, 11, 14), 1) == cst(2025, 11, 15)
    assert CAL.elapsed(cst(2025, 11, 14), cst(2025, 11, 17)) == 1
    assert CAL.elapsed(cst(2025, 11, 17), cst(2025, 11, 14)) == 0
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            CAL.deadline(start, bad)
    with pytest.raises(ValidationError, match="超出工作日历支持的范围"):
        CAL.deadline(start, 40_000)


def test_the_time_zone_decides_where_a_day_begins() -> None:
    # 23:30 UTC on Thursday Nov 13 is already Friday in Beijing, still Friday 05:30 in Urumqi (+6).
    start = datetime(2025, 11, 13, 23, 30, tzinfo=UTC)
    assert CAL.local_date(start) == date(2025, 11, 14)
    urumqi = WorkCalendar(timezone="Asia/Urumqi")
    assert urumqi.deadline(start, 1) == datetime(2025, 11, 16, 23, 30, tzinfo=UTC)  # Mon 05:30 there
    assert CAL.deadline(start, 1) == datetime(2025, 11, 16, 23, 30, tzinfo=UTC)  # Mon 07:30 here
    assert CAL.deadline(start, 0.5) == cst(2025, 11, 14, 19, 30)
    with pytest.raises(ValueError, match="changes its UTC offset"):
        WorkCalendar(timezone="Europe/Berlin")  # daylight saving: days of 23 and 25 hours


_instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31, 23, 59, 59, 999999)
)


@hsettings(max_examples=400, deadline=None)
@given(start=_instants, span=st.floats(min_value=0, max_value=120, allow_nan=False))
def test_elapsed_is_the_inverse_of_deadline(start: datetime, span: float) -> None:
    end = CAL.deadline(start, span)
    assert end >= start.replace(tzinfo=UTC)
    assert CAL.elapsed(start, end) == pytest.approx(span, abs=1e-9)


@hsettings(max_examples=400, deadline=None)
@given(start=_instants, end=_instants)
def test_deadline_of_the_elapsed_time_is_the_earliest_such_instant(start: datetime, end: datetime) -> None:
    worked = CAL.elapsed(start, end)
    back = CAL.deadline(start, worked)
    assert back <= max(start, end).replace(tzinfo=UTC)
    assert CAL.elapsed(start, back) == pytest.approx(worked, abs=1e-9)


def test_deadline_is_table_arithmetic_not_a_walk_over_days() -> None:
    start = cst(2024, 3, 1, 9)
    began = time.perf_counter()
    for n in range(20_000):
        CAL.deadline(start, 2000 + n % 5000)  # spans of 8–27 years
    assert time.perf_counter() - began < 2.0


# --- overrides -------------------------------------------------------------------------------------


def test_an_override_wins_over_the_package_and_the_weekend() -> None:
    cal = WorkCalendar({
        date(2025, 10, 8): Override(True, "提前上班"),
        date(2025, 11, 17): Override(False, "壮族三月三调休"),
        date(2025, 11, 15): Override(True, "补班"),
    })  # fmt: skip
    assert cal.is_workday(date(2025, 10, 8)) and not CAL.is_workday(date(2025, 10, 8))
    info = cal.describe(date(2025, 11, 17))
    assert (info.workday, info.source, info.name, info.official_workday) == (False, "override", "壮族三月三调休", True)
    # Fri 15:00 + 1: Saturday works now, Monday does not.
    assert cal.deadline(cst(2025, 11, 14, 15), 1) == cst(2025, 11, 15, 15)
    assert cal.deadline(cst(2025, 11, 14, 15), 2) == cst(2025, 11, 18, 15)
    with pytest.raises(AttributeError):
        cal.extra = 1  # type: ignore[attr-defined]


def _actor() -> Actor:
    return Actor.system("test")


def test_overrides_are_per_province(kernel: Any, grid: Any) -> None:
    guangxi, guangdong = grid.node("45"), grid.node("44")
    g = grid.node("45010700100101")
    set_override(kernel, guangxi, date(2026, 12, 31), workday=False, name="自治区调休", actor=_actor())
    assert not calendar_for(kernel, g.path).is_workday(date(2026, 12, 31))
    assert not calendar_for(kernel, guangxi.path).is_workday(date(2026, 12, 31))
    assert calendar_for(kernel, guangdong.path).is_workday(date(2026, 12, 31))
    assert calendar_for(kernel, None).is_workday(date(2026, 12, 31))
    assert calendar_for(kernel, g.path).deadline(cst(2026, 12, 30, 12), 1) == cst(2027, 1, 1, 12)
    assert calendar_for(kernel, guangdong.path).deadline(cst(2026, 12, 30, 12), 1) == cst(2026, 12, 31, 12)
    # Setting again replaces; removing restores the national arrangement.
    set_override(kernel, guangxi, date(2026, 12, 31), workday=True, name="照常上班", actor=_actor())
    with kernel.db.read() as s:
        assert [(o.day, o.workday, o.name) for o in overrides_of(s, guangxi.id)] == [
            (date(2026, 12, 31), True, "照常上班")
        ]
    remove_override(kernel, guangxi, date(2026, 12, 31), actor=_actor(), reason="恢复")
    assert calendar_for(kernel, g.path).overrides == {}
    with pytest.raises(NotFound):
        remove_override(kernel, guangxi, date(2026, 12, 31), actor=_actor())


def test_overrides_are_validated_and_nothing_is_saved_on_error(kernel: Any, grid: Any) -> None:
    city = grid.node("4501")
    province = grid.node("45")
    with pytest.raises(ValidationError) as caught:
        set_override(kernel, city, date(2026, 5, 6), workday=False, name="", actor=_actor())
    assert any("不是省级" in p for p in caught.value.problems)
    assert any("请填写名称或原因" in p for p in caught.value.problems)
    with pytest.raises(ValidationError, match="工作日历调整未保存"):
        set_override(kernel, province, date(2026, 5, 6), workday=False, name="长" * 61, actor=_actor())
    with kernel.db.read() as s:
        assert overrides_of(s, province.id) == [] and overrides_of(s, city.id) == []
        assert audit.search(s, action="calendar.override.*") == []


def test_province_of_a_path_is_its_first_segment() -> None:
    assert province_id_of("/12/34/56/") == 12
    assert province_id_of(None) is None
    with pytest.raises(ValueError):
        province_id_of("450107")


@pytest.fixture
def second_worker(settings: Any) -> Iterator[Kernel]:
    """Another worker: its own Kernel and connection pool on the same database."""
    other = Kernel(settings)
    yield other
    other.db.dispose()


def test_the_cache_sees_another_workers_change(kernel: Any, grid: Any, second_worker: Kernel) -> None:
    province = grid.node("45")
    day = date(2026, 10, 10)  # a make-up Saturday in the package
    assert calendar_for(second_worker, province.path).is_workday(day)
    assert calendar_for(second_worker, province.path) is calendar_for(second_worker, province.path)
    slow = CalendarCache(second_worker.db, refresh_seconds=3600)
    assert slow.province(province.id).is_workday(day)
    set_override(kernel, province, day, workday=False, name="不调休", actor=_actor())
    # refresh 0 s (the test settings): the next call re-reads the epoch and rebuilds.
    assert not calendar_for(second_worker, province.path).is_workday(day)
    # A worker within its refresh interval keeps its calendar until the interval passes.
    assert slow.province(province.id).is_workday(day)
    slow._checked -= 3600
    assert not slow.province(province.id).is_workday(day)
    remove_override(second_worker, province, day, actor=_actor())
    assert calendar_for(kernel, province.path).is_workday(day)


# --- the page ---------------------------------------------------------------------------------------


def _post(client: Any, users: Any, path: str, data: dict[str, str]) -> Any:
    token = users.csrf(client, "/admin/calendar")
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


def _events(kernel: Any, action: str) -> list[Any]:
    with kernel.db.read() as s:
        return list(audit.search(s, action=action))


def test_a_role_without_the_permission_is_refused(client: Any, login: Any, grid: Any, users: Any) -> None:
    grid.node("45")
    login("province_staff", "45")
    assert client.get("/admin/calendar").status_code == 403
    token = users.csrf(client, "/grid/")
    refused = client.post("/admin/calendar", data={"node": "45", "day": "2026-12-31", "kind": "holiday",
                                                   "name": "x", "csrf_token": token})  # fmt: skip
    assert refused.status_code == 403
    assert 'href="/admin/calendar"' not in client.get("/grid/").text


def test_a_system_admin_keeps_their_provinces_calendar(
    client: Any, login: Any, grid: Any, users: Any, kernel: Any
) -> None:
    grid.node("45010700100101")
    login("system_admin", "45")
    assert 'href="/admin/calendar"' in client.get("/grid/").text
    page = client.get("/admin/calendar", params={"month": "2025-10"})
    assert page.status_code == 200
    assert "2025年10月" in page.text and "国庆节" in page.text and "国庆节调休" in page.text
    assert 'data-day="2025-10-11"' in page.text
    saved = _post(client, users, "/admin/calendar",
                  {"node": "45", "day": "2025-10-13", "kind": "holiday", "name": "壮族三月三调休", "month": "2025-10"})  # fmt: skip
    assert saved.status_code == 303 and "month=2025-10" in saved.headers["location"]
    assert not calendar_for(kernel, grid.get("45010700100101").path).is_workday(date(2025, 10, 13))
    page = client.get("/admin/calendar", params={"month": "2025-10", "node": "450107"}).text
    assert "壮族三月三调休" in page and "本省调整" in page
    [event] = _events(kernel, "calendar.override.set")
    assert event.detail_data == {"node_id": grid.get("45").id, "day": "2025-10-13", "workday": False,
                                 "name": "壮族三月三调休", "was": None}  # fmt: skip
    assert event.username.startswith("systemadmin")
    no_reason = _post(client, users, "/admin/calendar/remove", {"node": "45", "day": "2025-10-13", "reason": ""})
    assert no_reason.status_code == 400 and "请填写撤销原因" in no_reason.text
    removed = _post(client, users, "/admin/calendar/remove", {"node": "45", "day": "2025-10-13", "reason": "录错"})
    assert removed.status_code == 303
    [event] = _events(kernel, "calendar.override.remove")
    assert event.detail_data["reason"] == "录错" and event.detail_data["was"]["name"] == "壮族三月三调休"
    assert calendar_for(kernel, grid.get("45").path).is_workday(date(2025, 10, 13))


def test_validation_errors_are_shown_in_chinese_and_nothing_is_saved(
    client: Any, login: Any, grid: Any, users: Any, kernel: Any
) -> None:
    login("system_admin", "45")
    cases = [
        ({"day": "2025-13-01", "kind": "holiday", "name": "x"}, "日期格式应为"),
        ({"day": "2025-10-13", "kind": "", "name": "x"}, "请选择上班或休息"),
        ({"day": "2025-10-13", "kind": "workday", "name": " "}, "请填写名称或原因"),
        ({"day": "2025-10-13", "kind": "workday", "name": "长" * 61}, "不能超过 60 个字"),
        ({"day": "2025-10-13", "kind": "workday", "name": "x", "node": "4501"}, "不是省级"),
    ]
    grid.node("4501")
    for data, message in cases:
        page = _post(client, users, "/admin/calendar", {"node": "45", **data})
        assert page.status_code == 400, data
        assert message in page.text, (data, page.text[:2000])
        assert 'name="name"' in page.text  # the form is shown again with what was typed
    with kernel.db.read() as s:
        assert overrides_of(s, grid.get("45").id) == []
    assert _events(kernel, "calendar.override.set") == []
    assert client.get("/admin/calendar", params={"month": "2025-1x"}).status_code == 200


def test_an_admin_cannot_edit_another_province(
    client: Any, login: Any, grid: Any, users: Any, kernel: Any
) -> None:
    grid.node("44")
    login("system_admin", "45")
    assert client.get("/admin/calendar", params={"node": "44"}).status_code == 403
    refused = _post(client, users, "/admin/calendar", {"node": "44", "day": "2026-12-31", "kind": "holiday", "name": "越权"})
    assert refused.status_code == 403
    with kernel.db.read() as s:
        assert overrides_of(s, grid.get("44").id) == []
    assert calendar_for(kernel, grid.get("44").path).is_workday(date(2026, 12, 31))


def test_a_county_admin_sees_the_province_calendar_read_only(
    client: Any, login: Any, grid: Any, users: Any, kernel: Any
) -> None:
    grid.node("450107")
    login("system_admin", "450107")
    page = client.get("/admin/calendar", params={"month": "2026-02"})
    assert page.status_code == 200 and "春节" in page.text
    assert "本省" in page.text and "省45" not in page.text  # the province is above their jurisdiction
    assert "admin/calendar/remove" not in page.text and 'name="kind"' not in page.text
    refused = _post(client, users, "/admin/calendar", {"node": "45", "day": "2026-12-31", "kind": "holiday", "name": "x"})
    assert refused.status_code == 403


# --- the CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def run(kernel: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    # The test database carries every installed plugin's migrations, this kernel none of them.
    monkeypatch.setattr("yiwang.cli.main._ready", lambda kernel: None)

    def invoke(*args: str) -> Any:
        obj = Context()
        obj.__dict__["kernel"] = kernel
        return CliRunner().invoke(cli, ["calendar", *args], obj=obj)

    return invoke


def test_cli_shows_a_month_with_marks(run: Any, grid: Any) -> None:
    grid.node("45")
    shown = run("show", "2025-10")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].startswith("2025年10月") and "国家安排" in lines[0]
    assert re.search(r"^\s+1休\s+2休\s+3休\s+4休\s+5休$", lines[2])  # Oct 1 2025 is a Wednesday
    assert re.search(r"^\s*6休\s+7休\s+8休\s+9班\s+10班\s+11班\s+12休$", lines[3])
    assert "2025-10-11 班 国庆节调休" in shown.output and "2025-10-06 休 中秋节" in shown.output
    changed = run("set", "2025-10-13", "--holiday", "--name", "壮族三月三调休", "--province", "45")
    assert changed.exit_code == 0, changed.output
    assert "已将 省45 的 2025-10-13 设为休息" in changed.output
    local = run("show", "2025-10", "--province", "45")
    assert "省45（45）" in local.output and "2025-10-13 休 壮族三月三调休（本省调整）" in local.output
    assert "13休" in local.output
    assert "13班" in run("show", "2025-10").output
    assert run("unset", "2025-10-13", "--province", "45", "--reason", "录错").exit_code == 0
    assert "13班" in run("show", "2025-10", "--province", "45").output


def test_cli_check_warns_about_years_without_data(run: Any) -> None:
    late = run("check", "--today", "2026-11-25")
    assert late.exit_code == 0
    assert "已收录国家节假日安排: 2004–2026 年" in late.output
    assert "警告: 缺少 2027 年" in late.output
    early = run("check", "--today", "2026-06-01")
    assert early.exit_code == 0 and "警告" not in early.output and "齐全" in early.output


def test_cli_set_and_unset_refuse_bad_input(run: Any, grid: Any, kernel: Any) -> None:
    grid.node("4501")
    missing_kind = run("set", "2026-12-31", "--name", "x", "--province", "45")
    assert isinstance(missing_kind.exception, ValidationError) and missing_kind.exception.exit_code == 5
    city = run("set", "2026-12-31", "--holiday", "--name", "x", "--province", "4501")
    assert isinstance(city.exception, ValidationError) and "不是省级" in str(city.exception)
    bad_day = run("set", "2026-02-30", "--holiday", "--name", "x", "--province", "45")
    assert isinstance(bad_day.exception, ValidationError)
    nothing = run("unset", "2026-12-31", "--province", "45")
    assert isinstance(nothing.exception, NotFound) and nothing.exception.exit_code == 6
    unknown = run("show", "2026-10", "--province", "99")
    assert isinstance(unknown.exception, NotFound)
    with kernel.db.read() as s:
        assert overrides_of(s, grid.get("45").id) == []
    ok = run("set", "2026-12-31", "--workday", "--name", "跨年值守", "--province", "45")
    assert ok.exit_code == 0
    [event] = _events(kernel, "calendar.override.set")
    assert event.username.startswith("cli:") and event.detail_data["workday"] is True
