"""网格员手机端 through the real app, as a phone's browser uses it: the worker reports with photos
and a location (the same key sent three times makes one case), bad input and bad photos are
explained in place in Chinese and create nothing, the task list holds only the worker's own
tasks, acting from a task page goes through the engine (a stale page is 已被他人处理), and a
stranger's case is refused. The offline draft's browser behaviour is tested end to end with
Playwright (tests/e2e); here the page's hooks for it are checked."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select
from starlette.testclient import TestClient

from yiwang.cases.engine import utcnow
from yiwang.cases.models import Case, CaseStep
from yiwang.files import files_of
from yiwang.testing.cases import GRID, GRID2, Net

HERE = (22.8170, 108.3665)
NEAR = (22.8170, 108.3671)


class Phone:
    """A logged-in browser per person of the case net."""

    def __init__(self, app: Any, net: Net, users: Any, stack: ExitStack) -> None:
        self.app, self.net, self.users, self.stack = app, net, users, stack
        self.clients: dict[str, TestClient] = {}

    def __call__(self, who: str) -> TestClient:
        if who not in self.clients:
            client = self.stack.enter_context(TestClient(self.app))
            assert self.users.login(client, self.net.users[who].username).status_code in (200, 303)
            self.clients[who] = client
        return self.clients[who]

    def token(self, who: str) -> str:
        return str(self.users.csrf(self(who), "/m/"))

    def post(self, who: str, url: str, data: dict[str, Any], files: list[Any] | None = None) -> Any:
        """As the page's script sends it (multipart, CSRF header) — or, with no files, as a plain
        browser form (url-encoded with the token field)."""
        client = self(who)
        if files:
            return client.post(url, data=data, files=files, headers={"X-CSRF-Token": self.token(who)},
                               follow_redirects=False)  # fmt: skip
        return client.post(url, data={**data, "csrf_token": self.token(who)}, follow_redirects=False)

    def report_form(self, who: str = "worker", **kw: Any) -> dict[str, Any]:
        page = self(who).get("/m/report")
        assert page.status_code == 200, page.text[:500]
        key = re.search(r'name="channel_key" value="([^"]+)"', page.text)
        assert key
        return {"case_type": "public_facility", "title": "井盖缺失", "description": "人民路口井盖缺失",
                "node": GRID, "urgency": "urgent", "scale": "small", "coord": "wgs84",
                "lat": str(HERE[0]), "lon": str(HERE[1]), "channel_key": key.group(1)} | kw  # fmt: skip


@pytest.fixture
def phone(app: Any, case_net: Net, users: Any) -> Iterator[Phone]:
    with ExitStack() as stack:
        yield Phone(app, case_net, users, stack)


def png(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(out, format="PNG")
    return out.getvalue()


def count(net: Net) -> int:
    with net.kernel.db.read() as s:
        return int(s.execute(select(func.count()).select_from(Case)).scalar_one())


def created(response: Any) -> int:
    assert response.status_code == 303, response.text[:3000]
    found = re.fullmatch(r"/m/tasks/(\d+)\?new=1", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


# --- home and layout ----------------------------------------------------------------------------


def test_home_shows_my_grid_my_task_counts_and_big_buttons(phone: Phone, case_net: Net) -> None:
    mine = case_net.report()
    case_net.act("station", mine, "accept")
    case_net.act("station", mine, "dispatch", assignee=case_net.users["worker"].id)
    case_net.report("worker2", node_id=case_net.nodes[GRID2].id, title="别人的事件")
    page = phone("worker").get("/m/")
    assert page.status_code == 200
    assert "我的网格" in page.text and GRID in page.text
    assert re.search(r'href="/m/tasks"><span class="m-num">1</span><span>待办', page.text)
    assert re.search(r'href="/m/tasks\?tab=overdue"><span class="m-num">0</span><span>超期', page.text)
    assert 'href="/m/report">上报事件' in page.text and 'href="/m/tasks">我的任务' in page.text
    # The slim layout: no side menu, the CSRF header for htmx and scripts, user and logout, 电脑版.
    assert '<nav class="menu"' not in page.text
    assert '"X-CSRF-Token": "' in page.text and '<meta name="csrf-token" content="' in page.text
    assert 'action="/logout"' in page.text and case_net.users["worker"].username in page.text
    assert ">电脑版</a>" in page.text and 'name="viewport"' in page.text
    assert "<script>" not in page.text  # CSP: script-src 'self'
    # The staff shell links here.
    assert 'href="/m/">手机版' in phone("worker").get("/cases/").text


def test_pages_need_a_login(app: Any, case_net: Net) -> None:
    with TestClient(app) as anonymous:
        for url in ("/m/", "/m/report", "/m/tasks"):
            answer = anonymous.get(url, follow_redirects=False)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")


# --- reporting ----------------------------------------------------------------------------------


def test_a_report_with_photos_makes_one_case_however_often_it_is_sent(phone: Phone, case_net: Net) -> None:
    form = phone.report_form()
    photos = [("files", ("现场1.png", png(), "image/png")), ("files", ("现场2.png", png((0, 90, 200)), "image/png"))]
    first = created(phone.post("worker", "/m/report", form, photos))
    # The draft sent again after a lost answer (twice): the same case, no second one.
    for _ in range(2):
        assert created(phone.post("worker", "/m/report", form, photos)) == first
    assert count(case_net) == 1
    case = case_net.case(first)
    assert (case.channel, case.channel_key, case.node_id) == ("phone", form["channel_key"], case_net.nodes[GRID].id)
    assert (case.lat, case.lon, case.urgency, case.state) == (HERE[0], HERE[1], "urgent", "reported")
    assert case.reporter_id == case_net.users["worker"].id
    with case_net.kernel.db.read() as s:
        assert [f.original_name for f in files_of(s, "case", first)] == ["现场1.png", "现场2.png"]
    page = phone("worker").get(f"/m/tasks/{first}?new=1")
    assert page.status_code == 200
    assert f"已上报，事件编号 {case.serial}" in page.text and f'data-case-serial="{case.serial}"' in page.text
    assert len(re.findall(rf'<img src="/cases/{first}/files/\d+"', page.text)) == 2


def test_the_report_form_is_one_column_with_camera_gps_and_a_draft_key(phone: Phone, case_net: Net) -> None:
    page = phone("worker").get("/m/report").text
    assert 'accept="image/*" capture="environment" multiple' in page
    assert 'data-widget="report"' in page and 'data-scripts="/static/js/mobile.js"' in page
    assert 'data-draft-state=""' in page and 'id="m-banner"' in page
    assert "data-geo-locate" in page and "重新定位" in page and 'name="lat"' in page
    assert f'<option value="{GRID}" selected>' in page or re.search(rf'value="{GRID}"[^>]* selected', page)
    assert '<optgroup label="城市管理">' in page
    assert 'name="urgency" value="critical"' in page
    # Two visits, two keys: each draft has its own.
    again = phone("worker").get("/m/report").text
    key = re.compile(r'name="channel_key" value="([^"]+)"')
    assert key.search(page).group(1) != key.search(again).group(1)  # type: ignore[union-attr]
    script = phone("worker").get("/static/js/mobile.js")
    assert script.status_code == 200 and "indexedDB" in script.text and '"online"' in script.text


def test_problems_are_shown_in_place_in_chinese_and_nothing_is_made(phone: Phone, case_net: Net) -> None:
    form = phone.report_form(title=" ", case_type="nope", lat="22.8", lon="", description="保留的描述")
    bad = phone.post("worker", "/m/report", form)
    assert bad.status_code == 422
    for message in ("上报信息有误", "请填写标题", "事件类型无效", "经纬度须同时提供"):
        assert message in bad.text
    assert "保留的描述" in bad.text and f'value="{form["channel_key"]}"' in bad.text
    assert 'id="m-report"' in bad.text and '<nav class="menu"' not in bad.text
    outside = phone.post("worker", "/m/report", phone.report_form(node=GRID2))
    assert outside.status_code == 422 and f"事发网格 {GRID2} 不存在或不在您的上报范围内" in outside.text
    assert count(case_net) == 0


def test_a_photo_of_the_wrong_type_is_refused_in_chinese(phone: Phone, case_net: Net) -> None:
    disguised = phone.post("worker", "/m/report", phone.report_form(),
                           [("files", ("照片.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg"))])  # fmt: skip
    assert disguised.status_code == 422
    assert "照片.jpg" in disguised.text and "文件内容与扩展名不符" in disguised.text
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    document = phone.post("worker", "/m/report", phone.report_form(), [("files", ("通知.pdf", pdf, "application/pdf"))])
    assert document.status_code == 422, document.text[:2000]
    assert "通知.pdf：只能上传照片" in document.text
    assert count(case_net) == 0


def test_a_likely_duplicate_is_offered_before_a_new_case_is_made(phone: Phone, case_net: Net) -> None:
    first = case_net.report(lat=HERE[0], lon=HERE[1], now=utcnow())
    form = phone.report_form(lat=str(NEAR[0]), lon=str(NEAR[1]))
    offered = phone.post("worker", "/m/report", form)
    assert offered.status_code == 200 and count(case_net) == 1
    assert "附近 7 天内已有同类事件" in offered.text and f'href="/m/tasks/{first.id}"' in offered.text
    assert 'name="confirm_new" value="1"' in offered.text and "仍然上报" in offered.text
    assert f'value="{form["channel_key"]}"' in offered.text
    made = created(phone.post("worker", "/m/report", form | {"confirm_new": "1"}))
    assert made != first.id and count(case_net) == 2
    # The confirmed draft resent: its case, not a question about it.
    assert created(phone.post("worker", "/m/report", form)) == made


def test_the_type_fields_are_swapped_in(phone: Phone) -> None:
    part = phone("worker").get("/m/report?case_type=general", headers={"HX-Request": "true", "HX-Target": "type-fields"})
    assert part.status_code == 200 and "<form" not in part.text and "<html" not in part.text


# --- my tasks -----------------------------------------------------------------------------------


def test_the_task_list_holds_only_my_tasks(phone: Phone, case_net: Net) -> None:
    mine = case_net.report(title="派给我的事件")
    case_net.act("station", mine, "accept")
    case_net.act("station", mine, "dispatch", assignee=case_net.users["worker"].id)
    theirs = case_net.report("worker2", node_id=case_net.nodes[GRID2].id, title="派给同事的事件")
    case_net.act("station", theirs, "accept")
    case_net.act("station", theirs, "dispatch", assignee=case_net.users["worker2"].id)
    waiting = case_net.report(title="待社区受理")  # the station's task, not mine
    case_net.act("station", waiting, "accept")
    page = phone("worker").get("/m/tasks")
    assert page.status_code == 200
    assert "派给我的事件" in page.text and f'href="/m/tasks/{mine.id}"' in page.text
    assert "派给同事的事件" not in page.text and "待社区受理" not in page.text
    assert "待办 <span class=\"badge\">1</span>" in page.text
    assert "没有超期的任务" in phone("worker").get("/m/tasks?tab=overdue").text
    # The station's list is the station's 待办 (the inbox's): what waits for its staff.
    assert "待社区受理" in phone("station").get("/m/tasks").text


def test_acting_from_the_task_page_goes_through_the_engine(phone: Phone, case_net: Net) -> None:
    case = case_net.report()
    case_net.act("station", case, "accept")
    case = case_net.act("station", case, "dispatch", assignee=case_net.users["worker"].id)
    page = phone("worker").get(f"/m/tasks/{case.id}")
    assert page.status_code == 200
    assert f'action="/m/tasks/{case.id}/act/take"' in page.text and f'name="version" value="{case.version}"' in page.text
    assert "/act/accept" not in page.text  # only what the worker may do now
    taken = phone.post("worker", f"/m/tasks/{case.id}/act/take", {"version": str(case.version)})
    assert taken.status_code == 303 and taken.headers["location"] == f"/m/tasks/{case.id}?done=take"
    assert "已签收" in phone("worker").get(taken.headers["location"]).text
    after = case_net.case(case.id or 0)
    assert after.state == "handling"
    # 处置反馈 with a photo: the opinion is required, and said so in place.
    missing = phone.post("worker", f"/m/tasks/{case.id}/act/feedback", {"version": str(after.version)},
                         [("files", ("处置后.png", png((0, 150, 0)), "image/png"))])  # fmt: skip
    assert missing.status_code == 422 and "请填写处理意见" in missing.text
    assert re.search(r'id="m-a-feedback" open', missing.text)
    done = phone.post("worker", f"/m/tasks/{case.id}/act/feedback", {"version": str(after.version), "opinion": "已修复"},
                      [("files", ("处置后.png", png((0, 150, 0)), "image/png"))])  # fmt: skip
    assert done.status_code == 303
    steps = case_net.steps(case.id or 0)
    assert [s.action for s in steps][-2:] == ["take", "feedback"] and steps[-1].opinion == "已修复"
    assert steps[-1].actor_id == case_net.users["worker"].id
    with case_net.kernel.db.read() as s:
        photo = [f for f in files_of(s, "case", case.id or 0) if f.original_name == "处置后.png"]
        assert len(photo) == 1 and photo[0].owner_ref == steps[-1].id
    # The page that was open before the feedback is stale now.
    stale = phone.post("worker", f"/m/tasks/{case.id}/act/feedback", {"version": str(after.version), "opinion": "再报"})
    assert stale.status_code == 409 and "已被他人处理" in stale.text
    with case_net.kernel.db.read() as s:
        assert s.execute(select(func.count()).select_from(CaseStep).where(CaseStep.case_id == case.id)).scalar() == len(steps)  # type: ignore[arg-type]


def test_other_peoples_cases_are_refused(phone: Phone, case_net: Net, users: Any) -> None:
    theirs = case_net.report("worker2", node_id=case_net.nodes[GRID2].id, title="同事网格的事件")
    assert phone("worker").get(f"/m/tasks/{theirs.id}").status_code == 403
    denied = phone.post("worker", f"/m/tasks/{theirs.id}/act/self_handle", {"version": str(theirs.version),
                                                                            "opinion": "越权"})  # fmt: skip
    assert denied.status_code == 403 and case_net.case(theirs.id or 0).state == "reported"
    assert phone("worker").get("/m/tasks/999999").status_code == 404


def test_the_report_works_without_javascript(phone: Phone, case_net: Net) -> None:
    """A plain browser posts the multipart form without the CSRF header: the token is the form's
    first field, where the middleware looks for it. A forged one is refused."""
    page = phone("worker").get("/m/report").text
    form = re.search(r'<form id="m-report".*?</form>', page, re.S)
    assert form and re.search(r'enctype="multipart/form-data"[^>]*>\s*<input type="hidden" name="csrf_token"', form.group(0))
    photo = [("files", ("现场.png", png(), "image/png"))]
    values = phone.report_form()
    forged = phone("worker").post("/m/report", data=values | {"csrf_token": "forged"}, files=photo, follow_redirects=False)
    assert forged.status_code == 403 and count(case_net) == 0
    plain = phone("worker").post("/m/report", data={"csrf_token": phone.token("worker"), **values}, files=photo,
                                 follow_redirects=False)  # fmt: skip
    created(plain)
    assert count(case_net) == 1
