"""The jurisdiction dashboard (工作台): every number equals the count of the list it links to,
a community sees only its subtree, the ranking lists only children, a drill-down outside the
jurisdiction is refused, the charts' JSON carries the same numbers, and the licence page lists
the front-end libraries with their versions."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from yiwang import stats
from yiwang.cases import tallies
from yiwang.cases.clock import run_clock
from yiwang.cases.engine import utcnow
from yiwang.stats.recount import recount
from yiwang.testing.cases import COMMUNITY, COUNTY, GRID, GRID2, TOWNSHIP, Net

OTHER_COMMUNITY = "450107001002"
OTHER_GRID = "45010700100201"
OTHER_COUNTY = "450108"


@dataclass
class Scene:
    net: Net
    app: Any
    users: Any
    stack: ExitStack
    people: dict[str, Any]

    def browser(self, who: str) -> TestClient:
        client = self.stack.enter_context(TestClient(self.app))
        user = self.people.get(who) or self.net.users[who]
        assert self.users.login(client, user.username).status_code in (200, 303)
        return client


@pytest.fixture
def scene(case_net: Net, app: Any, grid: Any, users: Any, kernel: Any) -> Iterator[Scene]:
    """Cases over the last weeks in two communities; some accepted, closed, overdue, carded."""
    net = case_net
    net.nodes[OTHER_GRID] = grid.node(OTHER_GRID)
    net.nodes[OTHER_COUNTY] = grid.node(OTHER_COUNTY + "00100101")
    now = utcnow()
    made = []
    for days_ago, node in [(0, GRID), (0, GRID2), (1, GRID), (2, OTHER_GRID), (4, GRID),
                           (9, OTHER_GRID), (16, GRID), (25, GRID2), (40, GRID)]:  # fmt: skip
        when = now - timedelta(days=days_ago, seconds=2)
        who = "worker2" if node == GRID2 else ("county" if node == OTHER_GRID else "worker")
        made.append(net.report(who, now=when, node_id=net.nodes[node].id, title=f"事件{days_ago}"))
    # Accepted: the first two today and the 9-days-ago one.
    net.act("station", made[0], "accept", now=now)
    net.act("station", made[1], "accept", now=now)
    net.act("county", made[5], "accept", now=now - timedelta(days=8))
    # Closed on the spot: the 4-days-ago case (today), the 16-days-ago case (15 days ago).
    for case, at in ((made[4], now), (made[6], now - timedelta(days=15))):
        net.act("worker", case, "self_handle", opinion="已现场处理", now=at)
        net.act("station", case, "verify_pass", now=at)
        net.act("station", case, "close", now=at)
    # The clock raises what is due for the rest (a week on, on the calendar).
    run_clock(kernel, now=now + timedelta(days=1))
    people = {"county_user": users.make("county_staff", COUNTY),
              "community_user": users.make("community_staff", COMMUNITY)}  # fmt: skip
    with ExitStack() as stack:
        yield Scene(net, app, users, stack, people)


def listed(client: TestClient, href: str) -> int:
    """How many cases the inbox behind ``href`` says it lists."""
    page = client.get(html.unescape(href))
    assert page.status_code == 200, page.text[:500]
    assert "无效" not in page.text and "不在您的辖区内" not in page.text, html.unescape(href)
    found = re.search(r"：共 (\d+) 件", page.text)
    assert found, page.text[:2000]
    return int(found.group(1))


def numbers(page_html: str) -> list[tuple[str, int]]:
    """Every linked number of the dashboard that points at the inbox: (href, value)."""
    return [
        (href, int(value))
        for href, value in re.findall(r'<a[^>]*href="(/cases/\?[^"]+)"[^>]*>(\d+)</a>', page_html)
    ]


def test_every_number_equals_the_list_it_links_to_at_county_level(scene: Scene) -> None:
    client = scene.browser("county_user")
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "工作台" in page.text and 'id="dash-ranking"' in page.text
    found = numbers(page.text)
    # cards (3 periods × 3 + 3 flags), 30 trend days × 2, types, ranking rows
    assert len(found) > 60
    nonzero = 0
    checked: dict[str, int] = {}
    for href, value in found:
        if href in checked:
            assert checked[href] == value, href
            continue
        checked[href] = listed(client, href)
        assert checked[href] == value, f"{html.unescape(href)}: 工作台 {value}，列表 {checked[href]}"
        nonzero += value > 0
    assert nonzero >= 10
    trend = client.get("/dashboard/data.json").json()["trend"]
    assert sum(d["reported"] for d in trend) == 8  # all nine but the one 40 days ago
    assert sum(d["closed"] for d in trend) == 2
    overdue = dict(re.findall(r'aria-label="(超期在办|黄牌|红牌) (\d+) 件"', page.text))
    assert int(overdue["超期在办"]) >= 1


def test_the_rollups_are_what_a_recount_finds(scene: Scene, kernel: Any) -> None:
    with kernel.db.read() as s:
        assert recount(kernel, s, check=True, indicators=[tallies.DAILY, tallies.FLAGS]) == []
        county = scene.net.nodes[COUNTY].id
        today = tallies.local_day(utcnow())
        reported = stats.days(s, tallies.DAILY, county, ("reported",), today - timedelta(days=60), today)
        assert sum(reported["reported"].values()) == 9


def test_a_community_sees_only_its_subtree(scene: Scene) -> None:
    client = scene.browser("community_user")
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "人民社区" in page.text or COMMUNITY in page.text
    for href, value in numbers(page.text):
        assert f"area={COMMUNITY}" in href or f"area={GRID}" in href or f"area={GRID2}" in href
        assert listed(client, href) == value
    data = client.get("/dashboard/data.json").json()
    assert data["node"]["code"] == COMMUNITY
    # The other community's cases (2 and 9 days ago) are not counted.
    assert sum(d["reported"] for d in data["trend"]) == 6  # 9 cases, minus OTHER_GRID's 2, minus 40 days ago
    assert {c["code"] for c in data["children"]} == {GRID, GRID2}


def test_the_ranking_lists_only_children_and_drills_down(scene: Scene) -> None:
    client = scene.browser("county_user")
    page = client.get(f"/dashboard?node={TOWNSHIP}&period=month")
    assert page.status_code == 200
    ranking = re.search(r'id="dash-ranking".*?</table>', page.text, re.S)
    assert ranking
    rows = re.findall(r'<td><a href="/dashboard\?node=(\d+)&amp;period=month"', ranking.group(0))
    assert sorted(rows) == sorted({COMMUNITY, OTHER_COMMUNITY})
    data = client.get(f"/dashboard/data.json?node={TOWNSHIP}&period=month").json()
    assert [c["code"] for c in data["children"]] == rows  # ranked by cases reported
    assert all(c["code"].startswith(TOWNSHIP) and len(c["code"]) == 12 for c in data["children"])
    down = client.get(f"/dashboard?node={COMMUNITY}")
    assert down.status_code == 200 and f"/dashboard?node={TOWNSHIP}" in down.text  # breadcrumbs up


def test_drill_down_outside_the_jurisdiction_is_refused(scene: Scene) -> None:
    client = scene.browser("community_user")
    for url in (f"/dashboard?node={OTHER_COMMUNITY}", f"/dashboard?node={COUNTY}",
                f"/dashboard/data.json?node={OTHER_COUNTY}", f"/dashboard?node={TOWNSHIP}"):  # fmt: skip
        assert client.get(url).status_code == 403, url


def test_the_json_route_carries_the_page_numbers(scene: Scene) -> None:
    client = scene.browser("county_user")
    data = client.get("/dashboard/data.json?period=week").json()
    assert data["node"]["code"] == COUNTY and data["period"] == "week"
    assert len(data["trend"]) == 30 and data["trend"][-1]["day"] == tallies.local_day(utcnow()).isoformat()
    assert {p: [c["label"] for c in cs] for p, cs in data["cards"].items()}["today"] == ["上报", "受理", "结案"]
    assert sum(t["value"] for t in data["types"]) == data["cards"]["week"][0]["value"]
    for t in data["types"]:
        assert listed(client, t["href"]) == t["value"]
    today = data["trend"][-1]
    assert today["reported"] == 2 and listed(client, today["reported_href"]) == 2
    assert today["closed"] == 1 and listed(client, today["closed_href"]) == 1
    assert client.get("/dashboard/data.json?period=nonsense").json()["period"] == "month"


def test_the_page_wires_the_charts_accessibly(scene: Scene) -> None:
    client = scene.browser("county_user")
    page = client.get("/dashboard").text
    assert 'data-widget="dashboard"' in page and "/static/vendor/echarts.min.js" in page
    assert "/static/js/dashboard.js" in page and 'role="img"' in page and "aria-label=" in page
    assert 'id="dash-trend-table"' in page and 'id="dash-types-table"' in page
    assert "<script>" not in page
    assert client.get("/static/js/dashboard.js").status_code == 200
    # Another period through htmx: the content only, with its charts, and the URL pushed.
    part = client.get("/dashboard?period=today", headers={"HX-Request": "true"}).text
    assert "<html" not in part and 'data-widget="dashboard"' in part
    assert 'hx-push-url="true"' in part and "今日上报事件（按类型）" in part


def test_home_lands_on_the_dashboard_for_case_viewers(scene: Scene, users: Any, app: Any) -> None:
    client = scene.browser("county_user")
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 302 and home.headers["location"].endswith("/dashboard")
    menu = client.get("/dashboard").text
    assert 'href="/dashboard"' in menu and "工作台" in menu
    other = users.make("system_admin", COUNTY)  # no cases.view: the net as before
    with TestClient(app) as c:
        users.login(c, other.username)
        assert c.get("/dashboard").status_code == 403
        assert c.get("/", follow_redirects=False).headers["location"].endswith("/grid/")
        assert 'href="/dashboard"' not in c.get("/grid/").text


def test_about_lists_the_front_end_libraries_and_python_licences(client: Any, login: Any) -> None:
    login("grid_worker", "45010700100101")
    page = client.get("/about")
    assert page.status_code == 200
    for name in ("htmx.org", "echarts", "leaflet"):
        assert re.search(rf">{re.escape(name)}</a>\s*</td>\s*<td class=\"mono\">\d+\.\d+", page.text), name
    assert "Apache-2.0" in page.text and "0BSD" in page.text
    for name in ("starlette", "SQLAlchemy", "yiwang"):
        assert name.lower() in page.text.lower()
    assert 'href="/about"' in client.get("/grid/").text  # linked from the footer


def test_reopening_leaves_the_closing_day_and_flags_follow_the_clock(case_net: Net, kernel: Any) -> None:
    now = utcnow()
    day = tallies.local_day(now)
    county = case_net.nodes[COUNTY].id

    def kept(key: str, indicator: str = tallies.DAILY) -> int:
        with kernel.db.read() as s:
            if indicator == tallies.FLAGS:
                return stats.value(s, indicator, county, key)
            return stats.days(s, indicator, county, (key,), day, day)[key][day]

    case = case_net.report(now=now - timedelta(days=3))
    run_clock(kernel, now=now)  # three days on: overdue to accept, maybe carded
    assert kept("overdue", tallies.FLAGS) == 1
    case_net.act("station", case, "accept", now=now)
    assert kept("overdue", tallies.FLAGS) == 0 and kept("accepted") == 1  # a fresh clock
    case_net.act("station", case, "dispatch", assignee=case_net.users["worker"].id, now=now)
    case_net.act("worker", case, "feedback", opinion="已处置", now=now)
    case_net.act("station", case, "verify_pass", now=now)
    case = case_net.act("station", case, "close", now=now)
    # It was overdue once: 超期结案, counted against the on-time rate.
    assert case.close_type == "overdue" and kept("closed") == 1 and kept("closed_late") == 1
    case = case_net.act("county", case, "reopen", opinion="群众反映未解决", now=now)
    assert case.closed_at is None and kept("closed") == 0 and kept("closed_late") == 0
    with kernel.db.read() as s:
        assert recount(kernel, s, check=True, indicators=[tallies.DAILY, tallies.FLAGS]) == []


def test_dated_keys_are_checked_on_recount(kernel: Any) -> None:
    from yiwang.stats import Indicator

    ind = Indicator("cases.x", "x", ("reported",), dated=True)
    assert ind.allows("reported:2026-12-03")
    assert not ind.allows("reported:2026-13-01") and not ind.allows("reported")
    assert not ind.allows("closed:2026-12-03")
    assert Indicator("cases.y", "y", ("a",)).allows("a")


def test_the_inbox_filters_by_acceptance_and_closing_date(scene: Scene) -> None:
    client = scene.browser("county_user")
    today = tallies.local_day(utcnow()).isoformat()
    assert listed(client, f"/cases/?tab=all&date=accepted&since={today}&until={today}") == 2
    assert listed(client, f"/cases/?tab=all&date=closed&since={today}&until={today}") == 1
    assert listed(client, f"/cases/?tab=all&since={today}&until={today}") == 2
    bad = client.get("/cases/?tab=all&date=whenever")
    assert "日期类别无效: whenever" in bad.text
    assert 'name="date"' in bad.text and "结案日期" in bad.text


def test_the_numbers_come_from_rollups_not_from_counting_cases(scene: Scene, kernel: Any) -> None:
    """A province dashboard must not count the cases: only the by-type chart (bounded by the
    report date) and the overdue list (ten rows) read the case table."""
    from sqlalchemy import event

    from yiwang.admin.common import node_by_code
    from yiwang.cases import dashboard

    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    engine = kernel.db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        with kernel.db.read() as s:
            row = node_by_code(s, COUNTY)
            assert row is not None
            seen.clear()
            board = dashboard.build(kernel, s, row, "month")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    on_cases = [q for q in seen if "case_case" in q]
    assert len(on_cases) == 2, on_cases
    by_type = next(q for q in on_cases if "GROUP BY" in q)
    assert "created_at >=" in by_type and "created_at <" in by_type
    overdue = next(q for q in on_cases if "GROUP BY" not in q)
    assert "LIMIT" in overdue
    assert len(seen) <= 8, seen
    assert board.cards["month"][0].value >= 1
