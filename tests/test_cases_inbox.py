"""The case inbox as staff use it: columns chosen and remembered per user, saved queries, bulk
actions where each case stands or falls alone, and an xlsx export of exactly the listed rows —
masked and audited. Driven through the real app; every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from starlette.testclient import TestClient

from yiwang.audit import Actor
from yiwang.auth.service import grants_of
from yiwang.cases import engine, inbox
from yiwang.cases.engine import ActionInput, Doer, NewCase
from yiwang.cases.models import Case, CaseStep
from yiwang.testing import audit_entries
from yiwang.web import prefs

GRID = "45010700100101"
COMMUNITY = "450107001001"
OTHER_COMMUNITY = "450107001002"
OTHER_GRID = "45010700100201"
TOWNSHIP = "450107001"
COUNTY = "450107"
PHONE = "13812345678"
HEADER = re.compile(r'<th scope="col">([^<]+)</th>')


@dataclass
class Desk:
    app: Any
    kernel: Any
    users: Any
    nodes: dict[str, Any]
    orgs: dict[str, Any]
    people: dict[str, Any]
    stack: ExitStack
    browsers: dict[str, TestClient] = field(default_factory=dict)

    def browser(self, who: str, *, fresh: bool = False) -> TestClient:
        if fresh or who not in self.browsers:
            client = self.stack.enter_context(TestClient(self.app))
            assert self.users.login(client, self.people[who].username).status_code in (200, 303)
            self.browsers[who] = client
        return self.browsers[who]

    def post(self, who: str, url: str, data: dict[str, Any] | list[tuple[str, str]], *, htmx: bool = False) -> Any:
        client = self.browser(who)
        token = str(self.users.csrf(client, "/cases/"))
        items = list(data.items()) if isinstance(data, dict) else list(data)
        headers = {"HX-Request": "true", "HX-Target": "main"} if htmx else {}
        body = "&".join(f"{quote(k)}={quote(str(v))}" for k, v in [("csrf_token", token), *items])
        return client.post(url, content=body.encode(), follow_redirects=False,
                           headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip

    def doer(self, who: str) -> Doer:
        user = self.people[who]
        with self.kernel.db.read() as s:
            grants = grants_of(s, user.id)
        return Doer(Actor(user.id, user.username), grants, user.username)

    def report(self, who: str = "worker", **kw: Any) -> Case:
        values: dict[str, Any] = {"case_type": "public_facility", "title": "井盖缺失", "node_id": self.nodes[GRID].id,
                                  "channel": "phone", "description": "人民路口井盖缺失"} | kw  # fmt: skip
        with self.kernel.db.write() as s:
            case, _ = engine.report(self.kernel, s, self.doer(who), NewCase(**values))
            return case

    def act(self, who: str, case_id: int, action: str, **kw: Any) -> None:
        with self.kernel.db.write() as s:
            current = s.get(Case, case_id)
            assert current is not None
            engine.act(self.kernel, s, self.doer(who), case_id, action, ActionInput(**kw), version=current.version)

    def case(self, case_id: int) -> Case:
        with self.kernel.db.read() as s:
            found = s.get(Case, case_id)
            assert found is not None
            return found

    def steps(self, case_id: int, action: str) -> int:
        with self.kernel.db.read() as s:
            return int(s.execute(select(func.count()).select_from(CaseStep)
                                 .where(CaseStep.case_id == case_id, CaseStep.action == action)).scalar_one())  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture
def desk(app: Any, kernel: Any, grid: Any, users: Any) -> Iterator[Desk]:
    nodes = {code: grid.node(code) for code in (GRID, OTHER_GRID)}
    for code in (COMMUNITY, OTHER_COMMUNITY, TOWNSHIP, COUNTY):
        nodes[code] = grid.get(code)
    orgs = {
        "county": grid.org(nodes[COUNTY], "西乡塘区综治中心"),
        "township": grid.org(nodes[TOWNSHIP], "本县街道综治中心"),
        "station": grid.org(nodes[COMMUNITY], "人民社区网格工作站", kind="station"),
        "other_station": grid.org(nodes[OTHER_COMMUNITY], "隔壁社区网格工作站", kind="station"),
    }
    people = {
        "worker": users.make("grid_worker", GRID),
        "other_worker": users.make("grid_worker", OTHER_GRID),
        "station": users.make("community_staff", COMMUNITY),
        "station2": users.make("community_staff", COMMUNITY),
        "outsider": users.make("community_staff", OTHER_COMMUNITY),
        "county": users.make("county_staff", COUNTY),
    }
    with ExitStack() as stack:
        yield Desk(app, kernel, users, nodes, orgs, people, stack)


def headers(html: str) -> list[str]:
    table = html[html.index('<table class="table cases">'):]
    return HEADER.findall(table[: table.index("</thead>")])


# --- the preference store ------------------------------------------------------------------------


def test_the_preference_store_keeps_one_value_per_user_and_key(kernel: Any, users: Any) -> None:
    a, b = users.make("grid_worker", GRID), users.make("grid_worker", GRID)
    with kernel.db.write() as s:
        assert prefs.get_pref(s, a.id, "x.size", 20) == 20
        prefs.set_pref(s, a.id, "x.size", 50)
        prefs.set_pref(s, a.id, "x.size", {"n": 100, "名": "列"})
        prefs.set_pref(s, b.id, "x.size", 10)
    with kernel.db.read() as s:
        assert prefs.get_pref(s, a.id, "x.size") == {"n": 100, "名": "列"}
        assert prefs.get_pref(s, b.id, "x.size") == 10
    with kernel.db.write() as s:
        prefs.set_pref(s, a.id, "x.size", None)
    with kernel.db.read() as s:
        assert prefs.get_pref(s, a.id, "x.size", "默认") == "默认" and prefs.get_pref(s, b.id, "x.size") == 10


# --- 列设置 ---------------------------------------------------------------------------------------


def test_the_column_choice_is_remembered_for_that_user_only(desk: Desk) -> None:
    desk.report(reporter_name="张三丰", reporter_phone=PHONE)
    default = headers(desk.browser("station").get("/cases/?tab=all").text)
    assert default[:4] == ["编号", "标题", "类型", "状态"] and "反映人" not in default

    saved = desk.post("station", "/cases/columns", [("col", "state"), ("col", "created"), ("col", "reporter"),
                                                    ("col", "reporter_phone"), ("col", "nonsense"),
                                                    ("back", "tab=all&page=2&evil=1")])  # fmt: skip
    assert saved.status_code == 303 and saved.headers["location"] == "/cases/?tab=all"
    # Remembered across sessions (a new login), not shared with a colleague at the same station.
    page = desk.browser("station", fresh=True).get("/cases/?tab=all").text
    assert headers(page) == ["编号", "标题", "状态", "上报时间", "反映人", "反映人电话"]
    assert "张**" in page and "138****5678" in page and PHONE not in page
    assert headers(desk.browser("station2").get("/cases/?tab=all").text) == default

    # A column removed from a later version is ignored, not an error.
    with desk.kernel.db.write() as s:
        prefs.set_pref(s, desk.people["station"].id, inbox.COLUMNS_PREF, ["gone", "scale"])
    assert headers(desk.browser("station").get("/cases/?tab=all").text) == ["编号", "标题", "规模"]

    # htmx: the inbox comes back in place, with the query the form came from.
    again = desk.post("station", "/cases/columns", {"reset": "1", "back": "tab=all&q=井盖"}, htmx=True)
    assert again.status_code == 200 and "<html" not in again.text and 'value="井盖"' in again.text
    assert headers(again.text) == default


# --- 常用查询 -------------------------------------------------------------------------------------


def test_saved_queries_are_chips_of_their_owner_and_are_validated(desk: Desk) -> None:
    desk.report()
    saved = desk.post("station", "/cases/filters", {"name": " 本周  红牌 ", "back": "tab=overdue&card=red&page=3&x=1"})
    assert saved.status_code == 303 and saved.headers["location"] == "/cases/?tab=overdue&card=red"
    page = desk.browser("station").get("/cases/").text
    assert 'href="/cases/?tab=overdue&amp;card=red"' in page and ">本周 红牌</a>" in page
    assert "本周 红牌" not in desk.browser("station2").get("/cases/").text

    for name, message in (("", "请填写查询名称"), ("长" * 31, "查询名称不能超过 30 个字"),
                          ("本周 红牌", "已有名为「本周 红牌」的常用查询")):  # fmt: skip
        refused = desk.post("station", "/cases/filters", {"name": name, "back": "tab=all"}, htmx=True)
        assert refused.status_code == 422 and message in refused.text, name
    with desk.kernel.db.read() as s:
        mine = prefs.saved_filters(s, desk.people["station"].id, inbox.PAGE)
    assert [f.name for f in mine] == ["本周 红牌"]

    with desk.kernel.db.write() as s:
        for i in range(prefs.MAX_SAVED_FILTERS - 1):
            prefs.save_filter(s, desk.people["station"].id, inbox.PAGE, f"查询{i}", "tab=all")
    full = desk.post("station", "/cases/filters", {"name": "再来一个", "back": "tab=all"})
    assert full.status_code == 422 and "常用查询最多保存 20 个" in full.text

    # Another user cannot delete it (and is not told it exists); the owner can.
    theirs = desk.post("station2", f"/cases/filters/{mine[0].id}/delete", {"back": ""})
    assert theirs.status_code == 404
    with desk.kernel.db.read() as s:
        assert len(prefs.saved_filters(s, desk.people["station"].id, inbox.PAGE)) == prefs.MAX_SAVED_FILTERS
    gone = desk.post("station", f"/cases/filters/{mine[0].id}/delete", {"back": "tab=all"}, htmx=True)
    assert gone.status_code == 200 and ">本周 红牌</a>" not in gone.text
    with desk.kernel.db.read() as s:
        assert "本周 红牌" not in [f.name for f in prefs.saved_filters(s, desk.people["station"].id, inbox.PAGE)]


def test_a_saved_query_is_only_a_url_and_never_widens_the_scope(desk: Desk) -> None:
    desk.report(title="本社区井盖")
    desk.post("outsider", "/cases/filters", {"name": "隔壁", "back": f"tab=all&area={COMMUNITY}"})
    page = desk.browser("outsider").get(f"/cases/?tab=all&area={COMMUNITY}").text
    assert f"区域编码 {COMMUNITY} 不存在或不在您的辖区内" in page and "本社区井盖" not in page


def test_the_todo_tab_never_lists_a_case_a_todo_permission_reaches_outside_the_view_scope(desk: Desk) -> None:
    """待办 leaves out the view scope's own test when every to-do reach lies inside it; a role
    that may accept where it may not view must not make the shortcut show more."""
    desk.report(title="本社区井盖")
    desk.report("other_worker", title="隔壁井盖", node_id=desk.nodes[OTHER_GRID].id)
    mixed = desk.users.make("community_staff", COMMUNITY, extra=(("dispatcher", OTHER_COMMUNITY),))
    client = desk.stack.enter_context(TestClient(desk.app))
    assert desk.users.login(client, mixed.username).status_code in (200, 303)
    page = client.get("/cases/").text
    assert "本社区井盖" in page and "隔壁井盖" in page  # the dispatcher may view there too
    with desk.kernel.db.write() as s:
        desk.kernel.authz.revoke(s, "dispatcher", "cases.view")
    desk.kernel.authz.reload()
    page = client.get("/cases/").text
    assert "本社区井盖" in page and "隔壁井盖" not in page
    assert "待办 <span" in page and ">1</span>" in page


# --- 批量办理 -------------------------------------------------------------------------------------


def bulk_form(action: str, cases: list[Case], **extra: str) -> list[tuple[str, str]]:
    return [("action", action), ("back", "tab=all"), *[("ids", f"{c.id}:{c.version}") for c in cases],
            *extra.items()]  # fmt: skip


def test_bulk_accept_reports_each_case_and_a_conflict_leaves_the_others_done(desk: Desk) -> None:
    cases = [desk.report(title=f"井盖{i}") for i in range(4)]
    inbox_page = desk.browser("station").get("/cases/?tab=todo").text
    assert '<option value="accept">受理</option>' in inbox_page and 'data-select-all' in inbox_page
    assert f'value="{cases[0].id}:{cases[0].version}"' in inbox_page
    # Someone else accepts case 1 after the page was rendered.
    desk.act("station2", int(cases[1].id or 0), "accept")
    # Case 3 was accepted too, and the user's page is fresh for it: its state no longer allows 受理.
    desk.act("station2", int(cases[3].id or 0), "accept")
    fresh3 = desk.case(int(cases[3].id or 0))
    answer = desk.post("station", "/cases/bulk", bulk_form("accept", [cases[0], cases[1], cases[2], fresh3]), htmx=True)
    assert answer.status_code == 200, answer.text[:500]
    text = answer.text
    assert "共 4 件：成功 2 件，未成功 2 件。" in text
    assert re.search(rf"{cases[1].serial}.*?已被他人处理", text, re.S)
    assert re.search(rf"{fresh3.serial}.*?事件当前状态为「待派遣」，不能受理", text, re.S)
    for c in (cases[0], cases[2]):
        assert desk.case(int(c.id or 0)).state == "accepted"
    assert desk.steps(int(cases[1].id or 0), "accept") == 1  # not accepted twice
    assert desk.case(int(cases[1].id or 0)).version == cases[1].version + 1


def test_bulk_refuses_the_cases_the_user_may_not_act_on(desk: Desk) -> None:
    mine = desk.report(title="本社区")
    foreign = desk.report("other_worker", title="隔壁社区的事", node_id=desk.nodes[OTHER_GRID].id)
    answer = desk.post("station", "/cases/bulk", bulk_form("accept", [mine, foreign]))
    assert answer.status_code == 200
    assert "成功 1 件，未成功 1 件" in answer.text
    assert "无权限办理该事件" in answer.text and "隔壁社区的事" not in answer.text and foreign.serial not in answer.text
    assert desk.case(int(foreign.id or 0)).state == "reported" and desk.case(int(mine.id or 0)).state == "accepted"
    # A grid worker sees the case but may not accept it: refused, and no bulk bar is offered.
    other = desk.report(title="网格员看得到")
    worker = desk.post("worker", "/cases/bulk", bulk_form("accept", [other]))
    assert "没有权限受理此事件" in worker.text and desk.case(int(other.id or 0)).state == "reported"
    assert 'id="bulk-action"' not in desk.browser("worker").get("/cases/?tab=all").text


def test_bulk_dispatch_needs_a_unit_and_submits_are_bounded(desk: Desk, grid: Any) -> None:
    team = grid.org(desk.nodes[GRID], "第01网格处置组", kind="department", department="team")
    cases = [desk.report(title=f"派遣{i}") for i in range(2)]
    for c in cases:
        desk.act("station", int(c.id or 0), "accept")
    fresh = [desk.case(int(c.id or 0)) for c in cases]
    page = desk.browser("station").get("/cases/?tab=todo").text
    assert '<option value="dispatch">派遣</option>' in page and 'name="target_org"' in page
    missing = desk.post("station", "/cases/bulk", bulk_form("dispatch", fresh), htmx=True)
    assert missing.status_code == 422 and "请选择派遣的承办单位" in missing.text
    assert all(desk.case(int(c.id or 0)).state == "accepted" for c in fresh)
    # A unit outside the holder's area: each case refuses it, none moves.
    bad = desk.post("station", "/cases/bulk", bulk_form("dispatch", fresh, target_org=str(desk.orgs["other_station"].id)))
    assert "成功 0 件，未成功 2 件" in bad.text and all(desk.case(int(c.id or 0)).state == "accepted" for c in fresh)
    too_many = [("action", "accept"), *[("ids", f"{i}:1") for i in range(1, inbox.MAX_BULK + 2)]]
    refused = desk.post("station", "/cases/bulk", too_many)
    assert refused.status_code == 422 and f"一次最多批量办理 {inbox.MAX_BULK} 件" in refused.text
    nothing = desk.post("station", "/cases/bulk", [("action", "accept")])
    assert nothing.status_code == 422 and "请先勾选要办理的事件" in nothing.text
    unknown = desk.post("station", "/cases/bulk", bulk_form("reopen", fresh))
    assert unknown.status_code == 422 and "请选择要批量执行的操作" in unknown.text
    done = desk.post("station", "/cases/bulk", bulk_form("dispatch", fresh, target_org=str(team.id)))
    assert "成功 2 件，未成功 0 件" in done.text
    assert {(desk.case(int(c.id or 0)).state, desk.case(int(c.id or 0)).org_id) for c in fresh} == {("dispatched", team.id)}


# --- 导出 -----------------------------------------------------------------------------------------


def listed_serials(desk: Desk, who: str, query: str) -> list[str]:
    out: list[str] = []
    page = 1
    while True:
        text = desk.browser(who).get(f"/cases/?{query}&page={page}").text
        out += re.findall(r'<td class="mono"><a href="/cases/\d+">(\d+)</a></td>', text)
        if "下一页" not in text:
            return out
        page += 1


def test_the_export_holds_exactly_the_listed_rows_masked_and_audited(desk: Desk) -> None:
    for i in range(23):
        desk.report(title=f"路灯损坏{i:02d}", reporter_name="张三丰", reporter_phone=PHONE, channel="hotline",
                    urgency="urgent" if i % 3 else "normal")  # fmt: skip
    desk.report(title="垃圾堆放", case_type="environment")
    desk.report("other_worker", title="路灯损坏隔壁", node_id=desk.nodes[OTHER_GRID].id)
    desk.post("station", "/cases/columns", [("col", "state"), ("col", "reporter"), ("col", "reporter_phone"),
                                            ("col", "area")])  # fmt: skip
    query = "tab=all&q=路灯&urgency=urgent"
    listed = listed_serials(desk, "station", query)
    assert len(listed) == 15
    page = desk.browser("station").get(f"/cases/?{query}").text
    assert 'href="/cases/export.xlsx?tab=all&amp;q=%E8%B7%AF%E7%81%AF&amp;urgency=urgent"' in page

    answer = desk.browser("station").get(f"/cases/export.xlsx?{query}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in answer.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(answer.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("编号", "标题", "状态", "区域编码", "反映人", "反映人电话")
    assert [r[0] for r in rows[1:]] == listed  # the same rows, in the same order
    assert all(r[1].startswith("路灯损坏") and r[1] != "路灯损坏隔壁" for r in rows[1:])
    assert {(r[4], r[5]) for r in rows[1:]} == {("张**", "138****5678")}
    serial_cell, code_cell = ws.cell(row=2, column=1), ws.cell(row=2, column=4)
    assert serial_cell.data_type == "s" and serial_cell.number_format == "@" and code_cell.value == GRID
    assert not any(PHONE in str(v) or "张三丰" in str(v) for r in rows for v in r)

    [entry] = audit_entries(desk.kernel, action="cases.export")
    detail = json.loads(entry.detail) if isinstance(entry.detail, str) else entry.detail
    assert detail["count"] == 15 and detail["tab"] == "all" and detail["masked"] is True
    assert detail["filter"] == {"q": "路灯", "urgency": "urgent"}
    assert PHONE not in str(entry.detail) and "张三丰" not in str(entry.detail)

    # The outsider's export of the same filter holds only their own case.
    theirs = load_workbook(io.BytesIO(desk.browser("outsider").get("/cases/export.xlsx?tab=all&q=路灯").content)).active
    assert [r[1] for r in list(theirs.iter_rows(values_only=True))[1:]] == ["路灯损坏隔壁"]


def test_an_export_over_the_cap_is_refused_with_a_clear_message(desk: Desk, monkeypatch: Any) -> None:
    for _ in range(3):
        desk.report()
    monkeypatch.setattr(inbox, "MAX_EXPORT", 2)
    answer = desk.browser("station").get("/cases/export.xlsx?tab=all")
    assert answer.status_code == 422
    assert "符合条件的事件共 3 件，超过单次导出上限 2 件" in answer.text
    assert audit_entries(desk.kernel, action="cases.export") == []


# --- the case page's map -------------------------------------------------------------------------


def test_a_case_with_a_location_shows_a_map_widget_and_one_without_does_not(desk: Desk) -> None:
    with desk.kernel.db.write() as s:
        from yiwang.grid.models import Node

        node = s.get(Node, desk.nodes[GRID].id)
        assert node is not None
        node.geometry = '{"type":"Polygon","coordinates":[[[108.36,22.81],[108.37,22.81],[108.37,22.82],[108.36,22.81]]]}'
    located = desk.report(lat=22.8170, lon=108.3665)
    page = desk.browser("station").get(f"/cases/{located.id}").text
    assert 'data-widget="casemap"' in page and 'data-lat="22.817"' in page
    assert "/static/js/casemap.js" in page and "&#34;Polygon&#34;" in page
    assert desk.browser("station").get("/static/js/casemap.js").status_code == 200
    assert desk.browser("station").get("/static/js/inbox.js").status_code == 200
    nowhere = desk.report()
    assert 'data-widget="casemap"' not in desk.browser("station").get(f"/cases/{nowhere.id}").text


def test_a_plain_export_needs_the_reveal_permission_and_a_purpose_and_is_audited(desk: Desk) -> None:
    desk.report(title="来电反映", reporter_name="张三丰", reporter_phone=PHONE, channel="hotline")
    for who in ("station", "county"):
        desk.post(who, "/cases/columns", [("col", "reporter"), ("col", "reporter_phone")])
    # County staff hold no privacy.reveal: no form, and the request is refused.
    assert "导出原文" not in desk.browser("county").get("/cases/?tab=all").text
    refused = desk.post("county", "/cases/export.xlsx", {"back": "tab=all", "purpose": "回访反映人核实"})
    assert refused.status_code == 403 and "您没有导出敏感信息原文的权限" in refused.text
    page = desk.browser("station").get("/cases/?tab=all").text
    assert "导出原文" in page and 'action="/cases/export.xlsx"' in page
    short = desk.post("station", "/cases/export.xlsx", {"back": "tab=all", "purpose": "看看"})
    assert short.status_code == 422 and "查看敏感信息须填写用途" in short.text
    assert audit_entries(desk.kernel, action="cases.export") == []

    plain = desk.post("station", "/cases/export.xlsx", {"back": "tab=all&q=来电", "purpose": "回访反映人核实处置结果"})
    assert plain.status_code == 200
    rows = list(load_workbook(io.BytesIO(plain.content)).active.iter_rows(values_only=True))
    assert rows == [("编号", "标题", "反映人", "反映人电话"), (rows[1][0], "来电反映", "张三丰", PHONE)]
    [reveal] = audit_entries(desk.kernel, action="privacy.reveal")
    assert reveal.purpose == "回访反映人核实处置结果" and PHONE not in str(reveal.detail)
    [export] = audit_entries(desk.kernel, action="cases.export")
    detail = json.loads(export.detail) if isinstance(export.detail, str) else export.detail
    assert detail["masked"] is False and detail["count"] == 1
