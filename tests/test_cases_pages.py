"""The staff pages of the case lifecycle, driven through the real app as people use them: a grid
worker reports, the community station accepts from the case page, stale and incomplete forms are
answered in place, outsiders are kept out, the inbox search lives in the URL, duplicates are
offered, double submits make one case, routing rules steer the next report, attachments upload
and download only for viewers, and the reporter's phone is never shown in full."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select
from starlette.testclient import TestClient

from yiwang.audit import Actor
from yiwang.auth.service import grants_of
from yiwang.cases import engine
from yiwang.cases.engine import ActionInput, Doer, NewCase
from yiwang.cases.models import Case, CaseCopy, RoutingRule
from yiwang.testing import audit_entries

GRID = "45010700100101"
GRID2 = "45010700100102"
COMMUNITY = "450107001001"
OTHER_COMMUNITY = "450107001002"
OTHER_GRID = "45010700100201"
TOWNSHIP = "450107001"
COUNTY = "450107"
OTHER_COUNTY = "450108"
PHONE = "13812345678"
# Near 南宁 人民路 (WGS-84); a second point ~60 m east, a third ~2 km away.
HERE = (22.8170, 108.3665)
NEAR = (22.8170, 108.3671)
FAR = (22.8350, 108.3665)


@dataclass
class Desk:
    """The net of test_cases.py, its people, and a logged-in browser per person."""

    app: Any
    kernel: Any
    users: Any
    nodes: dict[str, Any]
    orgs: dict[str, Any]
    people: dict[str, Any]
    stack: ExitStack
    browsers: dict[str, TestClient] = field(default_factory=dict)

    def browser(self, who: str) -> TestClient:
        if who not in self.browsers:
            client = self.stack.enter_context(TestClient(self.app))
            assert self.users.login(client, self.people[who].username).status_code in (200, 303)
            self.browsers[who] = client
        return self.browsers[who]

    def token(self, who: str) -> str:
        return str(self.users.csrf(self.browser(who), "/cases/"))

    def post(self, who: str, url: str, data: dict[str, Any], files: list[Any] | None = None, *,
             htmx: bool = False) -> Any:  # fmt: skip
        """A form post as the browser sends it: multipart when files come along (htmx adds the
        CSRF header), url-encoded with the token field otherwise."""
        client = self.browser(who)
        token = self.token(who)
        headers = {"HX-Request": "true", "HX-Target": "main"} if htmx else {}
        if files:
            return client.post(url, data=data, files=files, headers={**headers, "X-CSRF-Token": token},
                               follow_redirects=False)  # fmt: skip
        return client.post(url, data={**data, "csrf_token": token}, headers=headers, follow_redirects=False)

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

    def count(self) -> int:
        with self.kernel.db.read() as s:
            return int(s.execute(select(func.count()).select_from(Case)).scalar_one())


@pytest.fixture
def desk(app: Any, kernel: Any, grid: Any, users: Any) -> Iterator[Desk]:
    nodes = {code: grid.node(code) for code in (GRID, GRID2, OTHER_GRID, OTHER_COUNTY)}
    for code in (COMMUNITY, OTHER_COMMUNITY, TOWNSHIP, COUNTY):
        nodes[code] = grid.get(code)
    orgs = {
        "county": grid.org(nodes[COUNTY], "西乡塘区综治中心"),
        "police": grid.org(nodes[COUNTY], "西乡塘区公安分局", kind="department", department="police"),
        "township": grid.org(nodes[TOWNSHIP], "本县街道综治中心"),
        "station": grid.org(nodes[COMMUNITY], "人民社区网格工作站", kind="station"),
        "other_station": grid.org(nodes[OTHER_COMMUNITY], "隔壁社区网格工作站", kind="station"),
    }
    people = {
        "worker": users.make("grid_worker", GRID),
        "station": users.make("community_staff", COMMUNITY),
        "outsider": users.make("community_staff", OTHER_COMMUNITY),
        "county": users.make("county_staff", COUNTY),
        "other_county": users.make("county_staff", OTHER_COUNTY),
    }
    with ExitStack() as stack:
        yield Desk(app, kernel, users, nodes, orgs, people, stack)


def png(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(out, format="PNG")
    return out.getvalue()


def form_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"表单中没有 {name}"
    return found.group(1)


def case_id_of(response: Any) -> int:
    assert response.status_code == 303, response.text[:2000]
    found = re.fullmatch(r"/cases/(\d+)", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


def report_form(desk: Desk, who: str = "worker", **kw: Any) -> dict[str, Any]:
    page = desk.browser(who).get("/cases/new")
    assert page.status_code == 200
    return {"channel": "web", "case_type": "public_facility", "title": "井盖缺失", "description": "人民路口井盖缺失",
            "node": GRID, "urgency": "normal", "scale": "small", "coord": "wgs84",
            "channel_key": form_value(page.text, "channel_key")} | kw  # fmt: skip


# --- the loop -----------------------------------------------------------------------------------


def test_a_reported_case_reaches_the_station_inbox_and_is_accepted_from_its_page(desk: Desk) -> None:
    page = desk.browser("worker").get("/cases/new")
    assert "事件上报" in page.text and "人民路" not in page.text
    assert "公共设施损坏" in page.text and '<optgroup label="城市管理">' in page.text
    case_id = case_id_of(desk.post("worker", "/cases/new", report_form(desk)))
    case = desk.case(case_id)
    assert (case.state, case.org_id, case.channel) == ("reported", desk.orgs["station"].id, "web")

    inbox = desk.browser("station").get("/cases/")
    assert inbox.status_code == 200
    assert case.serial in inbox.text and "井盖缺失" in inbox.text and "人民社区网格工作站" in inbox.text
    assert re.search(r'aria-current="page">待办 <span class="badge">1</span>', inbox.text)
    detail = desk.browser("station").get(f"/cases/{case_id}")
    assert detail.status_code == 200
    assert f'action="/cases/{case_id}/act/accept"' in detail.text
    assert f'name="version" value="{case.version}"' in detail.text
    assert "待受理" in detail.text and "受理时限" in detail.text
    done = desk.post("station", f"/cases/{case_id}/act/accept", {"version": str(case.version)})
    assert done.status_code == 303 and done.headers["location"] == f"/cases/{case_id}"
    after = desk.browser("station").get(f"/cases/{case_id}")
    assert desk.case(case_id).state == "accepted"
    assert "待派遣" in after.text and "处置时限" in after.text
    assert re.search(r"<strong>受理</strong>\s*<span class=\"muted\">" + desk.people["station"].username, after.text)
    # The grid worker may view but not accept: no accept form for them.
    worker_view = desk.browser("worker").get(f"/cases/{case_id}")
    assert worker_view.status_code == 200 and "/act/accept" not in worker_view.text


def test_a_stale_form_is_a_conflict_and_shows_the_fresh_case(desk: Desk) -> None:
    case = desk.report()
    desk.act("station", case.id, "accept")
    stale = desk.post("station", f"/cases/{case.id}/act/reject", {"version": str(case.version), "opinion": "重复"})
    assert stale.status_code == 409
    assert "该事件已被他人处理，请刷新后查看最新状态" in stale.text
    assert "待派遣" in stale.text  # the fresh state
    assert f'name="version" value="{case.version + 1}"' in stale.text
    assert desk.case(case.id).state == "accepted"


def test_a_missing_opinion_is_shown_beside_the_form_and_the_input_is_kept(desk: Desk) -> None:
    case = desk.report()
    desk.act("station", case.id, "accept")
    # Dispatched to a person of the station's own area: the case stays with the station.
    desk.act("station", case.id, "dispatch", assignee=desk.people["worker"].id)
    version = desk.case(case.id).version
    answer = desk.post("station", f"/cases/{case.id}/act/extend_request", {"version": str(version), "f_days": "3"})
    assert answer.status_code == 422
    assert "请填写处理意见" in answer.text
    form = re.search(r'<details class="act" id="a-extend_request" open>.*?</details>', answer.text, re.S)
    assert form, "the failed action's form is open"
    assert "请填写处理意见" in form.group(0) and 'value="3"' in form.group(0)
    assert desk.case(case.id).extension_days is None
    again = desk.post("station", f"/cases/{case.id}/act/extend_request", {"version": str(version), "f_days": "3"},
                      htmx=True)  # fmt: skip
    assert again.status_code == 422 and "<html" not in again.text and "请填写处理意见" in again.text
    ok = desk.post("station", f"/cases/{case.id}/act/extend_request",
                   {"version": str(version), "f_days": "3", "opinion": "需采购材料"}, htmx=True)  # fmt: skip
    assert ok.status_code == 200 and ok.headers["hx-redirect"] == f"/cases/{case.id}"
    assert desk.case(case.id).extension_days == 3


def test_dispatch_offers_the_units_and_people_of_the_holders_area(desk: Desk) -> None:
    case = desk.report()
    desk.act("station", case.id, "accept")
    page = desk.browser("station").get(f"/cases/{case.id}").text
    dispatch = re.search(r'id="a-dispatch".*?</details>', page, re.S)
    assert dispatch and desk.people["worker"].username in dispatch.group(0)
    assert "隔壁社区" not in page and desk.people["outsider"].username not in page
    nothing = desk.post("station", f"/cases/{case.id}/act/dispatch", {"version": str(desk.case(case.id).version),
                                                                        "opinion": "请尽快处理"})  # fmt: skip
    assert nothing.status_code == 422 and "请选择承办单位或承办人" in nothing.text and "请尽快处理" in nothing.text


def test_outsiders_get_403_and_do_not_see_the_case_in_any_list(desk: Desk) -> None:
    case = desk.report(title="仅本社区可见")
    assert desk.browser("outsider").get(f"/cases/{case.id}").status_code == 403
    assert desk.browser("outsider").get(f"/cases/{case.id}/print").status_code == 403
    listing = desk.browser("outsider").get("/cases/?tab=all")
    assert listing.status_code == 200 and "仅本社区可见" not in listing.text and case.serial not in listing.text
    found = desk.browser("outsider").get("/cases/?tab=all&q=仅本社区")
    assert "仅本社区可见" not in found.text.replace('value="仅本社区"', "")
    denied = desk.post("outsider", f"/cases/{case.id}/act/accept", {"version": str(case.version)})
    assert denied.status_code == 403 and desk.case(case.id).state == "reported"
    assert desk.browser("station").get("/cases/999999").status_code == 404
    # The county above sees it in 全部.
    assert "仅本社区可见" in desk.browser("county").get("/cases/?tab=all").text


# --- the inbox search ---------------------------------------------------------------------------


def test_filters_round_trip_in_the_url_and_htmx_gets_only_the_table(desk: Desk) -> None:
    for i in range(22):
        desk.report(title=f"路灯损坏{i:02d}", urgency="urgent" if i % 2 else "normal")
    desk.report(title="垃圾堆放", case_type="environment")
    browser = desk.browser("county")
    url = "/cases/?tab=all&q=路灯&type=public_facility&urgency=urgent&area=" + COMMUNITY + "&since=2020-01-01"
    page = browser.get(url)
    assert page.status_code == 200 and page.headers["vary"] == "HX-Request"
    assert 'name="q" value="路灯"' in page.text and 'value="urgent" selected' in page.text
    assert 'value="public_facility" selected' in page.text and f'value="{COMMUNITY}"' in page.text
    assert 'value="2020-01-01"' in page.text
    assert "共 11 件" in page.text and "垃圾堆放" not in page.text and "路灯损坏00" not in page.text
    everything = browser.get("/cases/?tab=all&q=路灯")
    assert "共 22 件" in everything.text and "第 1 / 2 页" in everything.text
    assert re.search(r'href="/cases/\?tab=all&amp;q=%E8%B7%AF%E7%81%AF&amp;page=2"', everything.text)
    second = browser.get("/cases/?tab=all&q=路灯&page=2")
    assert "第 2 / 2 页" in second.text and second.text.count("/cases/") >= 2

    htmx = browser.get(url, headers={"HX-Request": "true", "HX-Target": "case-results"})
    assert htmx.status_code == 200 and htmx.headers["vary"] == "HX-Request"
    assert "<html" not in htmx.text and 'class="search"' not in htmx.text and "<table" in htmx.text
    assert "共 11 件" in htmx.text
    whole = browser.get(url, headers={"HX-Request": "true", "HX-Target": "main"})
    assert "<html" not in whole.text and 'class="search"' in whole.text


def test_bad_filter_values_are_explained_not_errors(desk: Desk) -> None:
    desk.report()
    browser = desk.browser("station")
    page = browser.get(f"/cases/?tab=nope&since=2026-13-01&until=x&urgency=loud&type=nope&area={OTHER_COUNTY}&page=abc")
    assert page.status_code == 200
    for message in ("列表「nope」不存在", "开始日期格式应为", "结束日期格式应为", "紧急程度无效", "事件类型无效",
                    f"区域编码 {OTHER_COUNTY} 不存在或不在您的辖区内"):  # fmt: skip
        assert message in page.text
    assert "井盖缺失" in page.text  # the valid part of the search still runs (待办)
    backwards = browser.get("/cases/?tab=all&since=2026-03-10&until=2026-03-01")
    assert "开始日期不能晚于结束日期" in backwards.text


# --- reporting ----------------------------------------------------------------------------------


def test_a_likely_duplicate_is_offered_before_a_new_case_is_made(desk: Desk) -> None:
    first = desk.report(lat=HERE[0], lon=HERE[1])
    form = report_form(desk, lat=str(NEAR[0]), lon=str(NEAR[1]))
    offered = desk.post("worker", "/cases/new", form)
    assert offered.status_code == 200
    assert "附近 7 天内已有同类事件" in offered.text and f'href="/cases/{first.id}"' in offered.text
    assert 'name="confirm_new" value="1"' in offered.text and "仍然上报" in offered.text
    assert form_value(offered.text, "channel_key") == form["channel_key"]
    assert desk.count() == 1
    created = case_id_of(desk.post("worker", "/cases/new", form | {"confirm_new": "1"}))
    assert created != first.id and desk.count() == 2
    # Far enough away, or another type: no question asked.
    far = report_form(desk, lat=str(FAR[0]), lon=str(FAR[1]))
    assert desk.post("worker", "/cases/new", far).status_code == 303


def test_a_double_submit_makes_one_case(desk: Desk) -> None:
    form = report_form(desk)
    first = case_id_of(desk.post("worker", "/cases/new", form))
    again = case_id_of(desk.post("worker", "/cases/new", form))
    assert first == again and desk.count() == 1
    other = case_id_of(desk.post("worker", "/cases/new", report_form(desk)))  # a fresh form
    assert other != first and desk.count() == 2


def test_report_problems_are_listed_in_chinese_and_the_form_is_kept(desk: Desk) -> None:
    bad = desk.post("worker", "/cases/new", report_form(desk, title=" ", lat="22.8", lon="", case_type="nope",
                                                        description="保留的描述"))  # fmt: skip
    assert bad.status_code == 422
    assert "请填写标题" in bad.text and "经纬度须同时提供" in bad.text and "事件类型无效" in bad.text
    assert "保留的描述" in bad.text
    outside = desk.post("worker", "/cases/new", report_form(desk, node=OTHER_GRID))
    assert outside.status_code == 422 and "不在您的上报范围内" in outside.text
    assert desk.count() == 0


def test_the_type_fields_are_swapped_in_by_htmx(desk: Desk) -> None:
    part = desk.browser("worker").get("/cases/new?case_type=general",
                                      headers={"HX-Request": "true", "HX-Target": "type-fields"})  # fmt: skip
    assert part.status_code == 200 and "<form" not in part.text and "<html" not in part.text


def test_the_reporter_phone_is_never_shown_in_full(desk: Desk) -> None:
    form = report_form(desk, channel="hotline", reporter_name="张三丰", reporter_phone=PHONE,
                       description=f"群众来电，回拨 {PHONE}")  # fmt: skip
    case_id = case_id_of(desk.post("worker", "/cases/new", form))
    assert desk.case(case_id).reporter_phone == PHONE
    desk.act("station", case_id, "accept", opinion=f"已联系 {PHONE}")
    for who in ("worker", "station", "county"):
        browser = desk.browser(who)
        for url in (f"/cases/{case_id}", f"/cases/{case_id}/print", "/cases/?tab=all", "/cases/?tab=todo",
                    f"/cases/?tab=all&q={PHONE[:3]}"):  # fmt: skip
            text = browser.get(url).text
            assert PHONE not in text, (who, url)
    detail = desk.browser("station").get(f"/cases/{case_id}").text
    assert "138****5678" in detail and "张**" in detail and "12345 热线" in detail


# --- the print view -----------------------------------------------------------------------------


def test_the_print_view_shows_fields_and_the_whole_timeline(desk: Desk) -> None:
    case = desk.report(title="护栏倒塌")
    desk.act("station", case.id, "accept")
    desk.act("station", case.id, "copy", copy_orgs=[desk.orgs["police"].id])
    page = desk.browser("station").get(f"/cases/{case.id}/print")
    assert page.status_code == 200
    assert "事件办理单" in page.text and "@media print" in page.text and "size: A4" in page.text
    assert case.serial in page.text and "护栏倒塌" in page.text
    rows = re.findall(r"<td>(上报|受理|抄告)</td>", page.text)
    assert rows == ["上报", "受理", "抄告"]
    assert "抄告：西乡塘区公安分局" in page.text
    assert '<nav class="menu"' not in page.text  # a sheet of paper, not the shell


# --- attachments --------------------------------------------------------------------------------


def test_attachments_upload_with_an_action_and_download_only_for_viewers(desk: Desk) -> None:
    case = desk.report()
    picture = png()
    done = desk.post("station", f"/cases/{case.id}/act/accept", {"version": str(case.version), "opinion": "现场照片"},
                     files=[("files", ("现场.png", picture, "image/png")), ("files", ("第二张.png", png((0, 90, 200)), "image/png"))])  # fmt: skip
    assert done.status_code == 303
    page = desk.browser("station").get(f"/cases/{case.id}").text
    links = re.findall(rf'href="(/cases/{case.id}/files/\d+)"[^>]*>现场\.png', page)
    assert links and "第二张.png" in page and "附件（2）" in page
    got = desk.browser("worker").get(links[0])
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(got.content)).size == (32, 24)
    assert desk.browser("outsider").get(links[0]).status_code == 403
    # A file id of another case through this case's path: not found.
    other = desk.report()
    file_id = links[0].rsplit("/", 1)[1]
    assert desk.browser("station").get(f"/cases/{other.id}/files/{file_id}").status_code == 404


def test_a_refused_file_is_explained_beside_the_form(desk: Desk) -> None:
    case = desk.report()
    answer = desk.post("station", f"/cases/{case.id}/act/accept", {"version": str(case.version), "opinion": "见附件"},
                       files=[("files", ("照片.png", b"<html><script>alert(1)</script></html>", "image/png"))])  # fmt: skip
    assert answer.status_code == 422
    assert "照片.png" in answer.text and "文件内容与扩展名不符" in answer.text
    assert re.search(r'id="a-accept" open>.*见附件', answer.text, re.S)
    assert desk.case(case.id).state == "reported"


# --- routing rules ------------------------------------------------------------------------------


def test_a_routing_rule_is_set_on_its_page_and_steers_the_next_report(desk: Desk) -> None:
    browser = desk.browser("county")
    page = browser.get("/admin/routing")
    assert page.status_code == 200 and "本节点没有设置规则" in page.text
    assert 'value="police"' in page.text and "西乡塘区公安分局" in page.text
    rule = {"node": COUNTY, "case_type": "safety_hazard", "urgency": "", "scale": "large", "level": "4",
            "departments": "police", "note": "较大隐患由街道处置"}  # fmt: skip
    bad = desk.post("county", "/admin/routing", rule | {"level": "9"})
    assert bad.status_code == 422 and "承办层级应为省、市、县、乡镇或社区" in bad.text
    too_high = desk.post("county", "/admin/routing", rule | {"level": "2"})
    assert too_high.status_code == 422 and "承办层级不能高于设置规则的节点" in too_high.text
    saved = desk.post("county", "/admin/routing", rule)
    assert saved.status_code == 303 and saved.headers["location"] == f"/admin/routing?node={COUNTY}"
    listed = browser.get(saved.headers["location"]).text
    assert "安全隐患" in listed and "乡镇(街道)" in listed and "较大隐患由街道处置" in listed
    again = desk.post("county", "/admin/routing", rule)
    assert again.status_code == 422 and "本节点已有相同条件" in again.text
    [entry] = audit_entries(desk.kernel, action="cases.routing.set")
    assert json.loads(entry.detail)["level"] == 4

    # The township sees it, read-only, as inherited.
    township = desk.users.make("township_staff", TOWNSHIP)
    desk.people["township"] = township
    inherited = desk.browser("township").get("/admin/routing").text
    assert "从上级继承的规则" in inherited and "较大隐患由街道处置" in inherited
    assert "上级（辖区以外）" in inherited  # the county is not the township's to name

    form = report_form(desk, case_type="safety_hazard", scale="large", title="边坡开裂")
    case = desk.case(case_id_of(desk.post("worker", "/cases/new", form)))
    assert case.org_id == desk.orgs["township"].id
    with desk.kernel.db.read() as s:
        assert s.execute(select(CaseCopy.org_id).where(CaseCopy.case_id == case.id)).scalars().all() == [desk.orgs["police"].id]  # type: ignore[arg-type]
    detail = desk.browser("county").get(f"/cases/{case.id}").text
    assert "依流转规则" in detail and "抄告：西乡塘区公安分局" in detail

    with desk.kernel.db.read() as s:
        rule_id = s.execute(select(RoutingRule.id)).scalar_one()  # type: ignore[call-overload]
    assert desk.post("other_county", f"/admin/routing/{rule_id}/delete", {}).status_code == 403
    assert desk.post("township", f"/admin/routing/{rule_id}/delete", {}).status_code == 403
    gone = desk.post("county", f"/admin/routing/{rule_id}/delete", {})
    assert gone.status_code == 303
    with desk.kernel.db.read() as s:
        assert s.execute(select(func.count()).select_from(RoutingRule)).scalar() == 0
    assert [e.action for e in audit_entries(desk.kernel, action="cases.routing.*")] == ["cases.routing.delete", "cases.routing.set"]


def test_routing_rules_are_set_only_inside_the_jurisdiction(desk: Desk) -> None:
    rule = {"node": OTHER_COUNTY, "case_type": "", "urgency": "", "scale": "", "level": "3"}
    assert desk.post("county", "/admin/routing", rule).status_code == 403
    assert desk.browser("county").get(f"/admin/routing?node={OTHER_COUNTY}").status_code == 403
    assert desk.browser("station").get("/admin/routing").status_code == 403  # no cases.routing
    unknown = desk.post("county", "/admin/routing", rule | {"node": COUNTY, "departments": "fire"})
    assert unknown.status_code == 422 and "成员单位代码无效: fire" in unknown.text
    with desk.kernel.db.read() as s:
        assert s.execute(select(func.count()).select_from(RoutingRule)).scalar() == 0


def test_the_menu_shows_the_case_pages_to_those_who_may_use_them(desk: Desk) -> None:
    menu = desk.browser("station").get("/cases/").text
    assert 'href="/cases/" aria-current="page">事件办理' in menu and 'href="/cases/new">事件上报' in menu
    assert "/admin/routing" not in menu
    assert 'href="/admin/routing">流转规则' in desk.browser("county").get("/cases/").text


def test_a_form_with_files_works_without_javascript(desk: Desk) -> None:
    """A multipart form posted by a plain browser (no htmx, so no CSRF header) carries the token
    as its first field; the middleware finds it there. A forged token is still refused."""
    case = desk.report()
    browser = desk.browser("station")
    url = f"/cases/{case.id}/act/accept"
    photo = ("现场.png", _png(), "image/png")
    forged = browser.post(url, data={"csrf_token": "forged", "version": str(case.version)},
                          files=[("files", photo)], follow_redirects=False)  # fmt: skip
    assert forged.status_code == 403 and desk.case(case.id).state == "reported"
    ok = browser.post(url, data={"csrf_token": desk.token("station"), "version": str(case.version)},
                      files=[("files", photo)], follow_redirects=False)  # fmt: skip
    assert ok.status_code == 303 and desk.case(case.id).state == "accepted"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 120, 0)).save(out, "PNG")
    return out.getvalue()
