"""Accessibility of the core pages: axe-core (a test-only npm package) finds no serious or
critical violation on the login page, a grid node, the case inbox, a case, the report form (the
last three on a phone too), the users page, the audit log and the notifications — each seen by a
user who works there, with data on it and folded forms unfolded. Each page's screenshot is kept in ``test-artifacts/<test>/``."""

from __future__ import annotations

from typing import Any

import pytest

from yiwang.testing.browser import axe, describe, log_in
from yiwang.testing.cases import COMMUNITY, Net

pytestmark = pytest.mark.browser


def test_core_pages_have_no_serious_accessibility_violations(
    cheap_passwords: None, live_server: Any, new_page: Any, shots: Any, case_net: Net, users: Any
) -> None:
    base = live_server.url
    case = case_net.report(title="路灯不亮", reporter_name="张三", reporter_phone="13800000000")
    case_net.act("station", case, "accept", opinion="受理")
    admin = users.make("system_admin", "45", username="xitongguanli")
    auditor = users.make("audit_admin", "45", username="shenjiguanli")
    county = case_net.users["county"].username
    # (who, phone?, path, name of the screenshot); None: not logged in.
    visits = [
        (None, True, "/login", "login-phone"),
        (None, False, "/login", "login"),
        (county, False, f"/grid/{COMMUNITY}", "grid-node"),
        (county, False, "/cases/?tab=all", "case-inbox"),
        (county, False, f"/cases/{case.id}", "case-detail"),
        (county, False, "/cases/new", "report-form"),
        (case_net.users["worker"].username, True, "/cases/new", "report-form-phone"),
        (case_net.users["worker"].username, True, f"/cases/{case.id}", "case-detail-phone"),
        (case_net.users["worker"].username, True, "/cases/?tab=all", "case-inbox-phone"),
        (county, False, "/notifications", "notifications"),
        (admin.username, False, "/admin/users", "admin-users"),
        (auditor.username, False, "/audit/", "audit-log"),
    ]
    pages: dict[tuple[str | None, bool], Any] = {}
    found = []
    for who, phone, path, name in visits:
        page = pages.get((who, phone))
        if page is None:
            page = pages[(who, phone)] = new_page(phone=phone, bypass_csp=True)
            if who:
                log_in(page, base, who)
        response = page.goto(base + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        # Folded forms (a case's actions) are checked too: axe skips what is hidden.
        page.eval_on_selector_all("details", "els => els.forEach((e) => { e.open = true; })")
        shots(page, name)
        violations = axe(page)
        if violations:
            found.append(f"{name} ({path}):\n{describe(violations)}")
    assert found == [], "\n\n".join(found)


def test_the_check_finds_what_it_looks_for(new_page: Any) -> None:
    page = new_page(bypass_csp=True)
    page.set_content('<html><body><main><button></button><img src="x.png">'
                     '<p style="color:#bbb;background:#fff">浅色文字</p></main></body></html>')  # fmt: skip
    ids = {v["id"] for v in axe(page, impacts=("minor", "moderate", "serious", "critical"))}
    assert {"button-name", "image-alt", "color-contrast", "html-has-lang"} <= ids, ids
