"""A grid worker's report survives a lost connection: on a phone, offline, the report is kept as
a draft (待发送), and when the connection returns it is sent by itself — once, with the key the
draft was made with, so however the retries fall there is one case."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from yiwang.cases.models import Case
from yiwang.testing.browser import log_in
from yiwang.testing.cases import GRID, Net

pytestmark = pytest.mark.browser
TITLE = "断网时上报的路灯损坏"


def test_an_offline_report_is_sent_once_when_the_connection_returns(
    cheap_passwords: None, live_server: Any, new_page: Any, shots: Any, case_net: Net
) -> None:
    base = live_server.url
    page = new_page(phone=True)
    log_in(page, base, case_net.users["worker"].username)
    page.goto(base + "/m/report")
    form = page.locator("#m-report")
    page.get_by_label("事件类型").select_option(label="公共设施损坏")
    page.wait_for_load_state("networkidle")  # the type's own fields came in

    page.context.set_offline(True)
    page.get_by_label("标题").fill(TITLE)
    page.get_by_label("事件描述").fill("三号杆路灯不亮")
    page.get_by_label("事发网格").select_option(GRID)
    page.locator("[data-submit]").click()
    page.wait_for_function("document.querySelector('#m-report').dataset.draftState === 'pending'")
    assert re.search("待发送", page.locator("#m-banner").inner_text())
    shots(page, "01-offline-pending")
    kernel = case_net.kernel
    with kernel.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Case).where(Case.title == TITLE)) == 0

    # The connection returns: the draft goes by itself, and the page shows the new case.
    page.context.set_offline(False)
    page.wait_for_url(re.compile(r"/m/tasks/\d+\?new=1"), timeout=60_000)
    assert "已上报" in page.content()
    shots(page, "02-sent")
    with kernel.db.read() as s:
        [case] = s.scalars(select(Case).where(Case.title == TITLE)).all()
    assert case.channel == "phone" and case.channel_key
    # Opening the form again starts a fresh draft: the sent one is gone.
    page.goto(base + "/m/report")
    assert page.get_by_label("标题").input_value() == ""
    assert form.count() == 1 and page.locator("#m-report").get_attribute("data-draft-state") in ("", "saved")
    assert page.problems == [] or all("ERR_INTERNET_DISCONNECTED" in p for p in page.problems), page.problems
