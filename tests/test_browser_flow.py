"""One case through the standard loop in a real browser, each step by the user whose job it is.

A grid worker on a phone-sized screen logs in and reports a major matter with a photo; the
county's 调度员 finds it in 待办, accepts it and dispatches it to the community's 网格工作站; the
station signs for it and reports back with a photo of the repair; the county's 综治中心 verifies
and closes it. The timeline shows every step, the inbox badges move with the case, the browser
reports no console error (a refused inline script would be one), the phone pages fit the
screen, the county's dashboard counts the report and the closing, and every step leaves a screenshot in ``test-artifacts/<test>/``.

The page objects below are the only place that knows the pages' shapes: the report page
(``REPORT_URL``, ``report``) and where the counts are read (``INBOX_URL``, ``todo_count``) are
constants and small functions, to point at the phone pages and the dashboard when they exist.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from yiwang.testing.browser import log_in
from yiwang.testing.cases import GRID, Net

pytestmark = pytest.mark.browser

#: Where a reporter reports (the staff form today; the phone pages later).
REPORT_URL = "/cases/new"
#: Where a user sees how much waits for them.
INBOX_URL = "/cases/"
#: Where the county's numbers are.
DASHBOARD_URL = "/dashboard"
TITLE = "人民路口井盖缺失"


# --- page objects ------------------------------------------------------------------------------


def photo(folder: Path, name: str, color: tuple[int, int, int]) -> Path:
    path = folder / name
    Image.new("RGB", (640, 480), color).save(path, format="JPEG")
    return path


def report(page: Any, base: str, *, title: str, description: str, scale: str, files: list[Path]) -> int:
    """Fill and send the report form; returns the new case's id (the page shows the case)."""
    page.goto(base + REPORT_URL)
    page.get_by_label("事件类型").select_option(label="公共设施损坏")
    page.get_by_label("标题").fill(title)
    page.get_by_label("事件描述").fill(description)
    page.get_by_label("事发网格").select_option(GRID)
    page.get_by_label("规模").select_option(label=scale)
    page.get_by_label(re.compile("^附件")).set_input_files([str(f) for f in files])
    page.get_by_role("button", name="上报", exact=True).click()
    page.wait_for_url(re.compile(r"/cases/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def todo_count(page: Any, base: str) -> int:
    """The number on the 待办 tab (no badge: nothing waits)."""
    page.goto(base + INBOX_URL)
    tab = page.get_by_role("navigation", name="事件列表").get_by_role("link", name=re.compile("^待办"))
    badge = tab.locator(".badge")
    return int(badge.inner_text()) if badge.count() else 0


def act(page: Any, base: str, case_id: int, action: str, *, opinion: str = "", target: str = "",
        files: list[Path] = ()) -> None:  # type: ignore[assignment]  # fmt: skip
    """Open the case, unfold the action's form, fill it and send it; waits for the fresh page."""
    page.goto(f"{base}/cases/{case_id}")
    form = page.locator("details.act").filter(has=page.locator("summary", has_text=re.compile(f"^{action}$")))
    form.locator("summary").click()
    if target:
        form.get_by_label(re.compile("^承办单位")).select_option(label=target)
    if opinion:
        form.get_by_label(re.compile("^处理意见")).fill(opinion)
    if files:
        form.get_by_label(re.compile("^附件")).set_input_files([str(f) for f in files])
    with page.expect_navigation():
        form.get_by_role("button", name=action, exact=True).click()
    assert page.url.endswith(f"/cases/{case_id}"), page.url


def dashboard_count(page: Any, base: str, label: str, period: str = "today") -> int:
    """A number on the dashboard (工作台) card of ``period``, e.g. today's 结案."""
    page.goto(base + DASHBOARD_URL)
    row = page.locator(f"#dash-{period} dl > div").filter(has=page.locator("dt", has_text=re.compile(f"^{label}$")))
    return int(row.locator("a.dash-num").inner_text())


def state_of(page: Any) -> str:
    return str(page.locator("h1 .tag.state").inner_text())


def fits_the_screen(page: Any) -> bool:
    """Nothing sticks out sideways (on a phone a wide row shifts every tap)."""
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > screen.width + 1)
        .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))""")
    fits = bool(page.evaluate("document.documentElement.scrollWidth <= screen.width"))
    if not fits:
        print("wider than the screen:", wide)
    return fits


def timeline(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("ol.timeline > li > strong").all_inner_texts()]


# --- the loop ----------------------------------------------------------------------------------


def test_a_case_goes_round_the_loop_in_a_browser(
    cheap_passwords: None, live_server: Any, new_page: Any, shots: Any, case_net: Net, users: Any, tmp_path: Path
) -> None:
    base = live_server.url
    dispatcher = users.make("dispatcher", "450107", username="diaoduyuan")
    people = {"worker": case_net.users["worker"].username, "dispatcher": dispatcher.username,
              "station": case_net.users["station"].username, "county": case_net.users["county"].username}  # fmt: skip
    pages = {
        who: new_page(phone=who in ("worker", "station")) for who in people
    }
    for who, page in pages.items():
        log_in(page, base, people[who])
    assert todo_count(pages["dispatcher"], base) == 0
    assert todo_count(pages["station"], base) == 0
    reported, closed = (dashboard_count(pages["county"], base, label) for label in ("上报", "结案"))

    # 1. The grid worker reports from the phone, with a photo.
    worker = pages["worker"]
    worker.goto(base + REPORT_URL)
    assert fits_the_screen(worker)
    shots(worker, "01-report-form")
    case_id = report(worker, base, title=TITLE, description="井盖缺失约一米见方，夜间危险",
                     scale="重大", files=[photo(tmp_path, "现场.jpg", (180, 40, 40))])  # fmt: skip
    assert state_of(worker) == "待受理"
    assert worker.get_by_role("link", name="现场.jpg").first.is_visible()
    shots(worker, "02-reported")
    assert case_net.case(case_id).org_id == case_net.orgs["county"].id  # 重大 → the county

    # 2. The dispatcher finds it waiting, accepts and dispatches it to the station.
    desk = pages["dispatcher"]
    assert todo_count(desk, base) == 1
    desk.get_by_role("link", name=TITLE).click()
    desk.wait_for_url(f"{base}/cases/{case_id}")
    shots(desk, "03-dispatcher-inbox-to-case")
    act(desk, base, case_id, "受理")
    assert state_of(desk) == "待派遣"
    act(desk, base, case_id, "派遣", target="人民社区网格工作站", opinion="请社区当日处置")
    assert state_of(desk) == "待处置"
    shots(desk, "04-dispatched")
    assert todo_count(desk, base) == 0

    # 3. The station signs for it and reports back from the phone, with a photo of the repair.
    station = pages["station"]
    assert todo_count(station, base) == 1
    assert fits_the_screen(station)
    shots(station, "05-station-inbox")
    act(station, base, case_id, "签收")
    assert state_of(station) == "处置中"
    act(station, base, case_id, "处置反馈", opinion="已更换井盖并设置警示", files=[photo(tmp_path, "修复后.jpg", (40, 160, 60))])
    assert state_of(station) == "待核查"
    shots(station, "06-handled")
    assert todo_count(station, base) == 0

    # 4. The county centre verifies and closes it.
    county = pages["county"]
    assert todo_count(county, base) == 1
    act(county, base, case_id, "核查通过", opinion="现场核实已修复")
    assert state_of(county) == "待结案"
    act(county, base, case_id, "结案")
    assert state_of(county) == "已结案"
    shots(county, "07-closed")
    assert todo_count(county, base) == 0
    # The county's dashboard counted the report and the closing, today.
    assert dashboard_count(county, base, "上报") == reported + 1
    assert dashboard_count(county, base, "结案") == closed + 1
    shots(county, "07b-dashboard")

    # The reporter sees the whole story on the phone.
    worker.goto(f"{base}/cases/{case_id}")
    assert fits_the_screen(worker)
    steps = timeline(worker)
    assert steps == ["上报", "受理", "派遣", "签收", "处置反馈", "核查通过", "结案"], steps
    assert worker.get_by_role("link", name="修复后.jpg").first.is_visible()
    shots(worker, "08-reporter-timeline")
    assert case_net.case(case_id).state == "closed"
    for who, page in pages.items():
        assert page.problems == [], f"{who} 的浏览器报错: {page.problems}"
