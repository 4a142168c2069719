"""The staff shell as people meet it: a menu grouped by section with the current page marked,
the interface in English when asked, a global search that finds cases and divisions — by
pinyin initials too — inside the user's subtree only, and a live inbox badge that follows the
count and never keeps an idle session alive."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from yiwang.api import PluginSpec, SearchHit, hookimpl
from yiwang.auth.models import AuthSession
from yiwang.pinyin import pinyin_initials
from yiwang.settings import UiSettings
from yiwang.testing.cases import GRID

OTHER_COUNTY = "450108"


def test_pinyin_initials_keep_letters_and_digits() -> None:
    assert pinyin_initials("西乡塘区") == "xxtq"
    assert pinyin_initials("第01网格") == "d01wg"
    assert pinyin_initials("南宁 Nanning") == "nnnanning"


def test_menu_is_grouped_by_section_and_marks_the_current_page(client: Any, case_net: Any, users: Any) -> None:
    users.login(client, case_net.users["station"].username)
    page = client.get("/cases/").text
    assert re.search(r'<h2 class="menu-head">事件</h2>\s*<ul>\s*<li><a href="/cases/" aria-current="page">事件办理</a>', page)
    menu = page[page.index('<nav class="menu"'):page.index("</nav>", page.index('<nav class="menu"'))]
    assert menu.count('aria-current="page"') == 1
    # A grid worker holds no administration permission: no such section at all.
    other = client.__class__(client.app)
    users.login(other, case_net.users["worker"].username)
    assert "系统管理" not in other.get("/cases/").text


def test_the_shell_speaks_english_when_asked(client: Any, case_net: Any, users: Any) -> None:
    users.login(client, case_net.users["station"].username)
    english = client.get("/cases/", headers={"Accept-Language": "en-GB,en;q=0.9"}).text
    assert '<html lang="en">' in english
    assert ">Case inbox</a>" in english and ">Log out</button>" in english
    # The page text not yet in the catalog stays Chinese rather than breaking.
    chinese = client.get("/cases/", headers={"Accept-Language": "zh-CN"}).text
    assert '<html lang="zh-CN">' in chinese and ">退出</button>" in chinese


def test_a_chosen_language_is_remembered_and_next_stays_on_site(client: Any, case_net: Any, users: Any) -> None:
    users.login(client, case_net.users["station"].username)
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/cases/").text).group(1)  # type: ignore[union-attr]
    answer = client.post("/locale", data={"csrf_token": token, "locale": "en", "next": "/cases/?tab=all"},
                         follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == "/cases/?tab=all"
    assert '<html lang="en">' in client.get("/cases/").text
    evil = client.post("/locale", data={"csrf_token": token, "locale": "en", "next": "//evil.example/"},
                       follow_redirects=False)  # fmt: skip
    assert evil.headers["location"] == "/"
    unknown = client.post("/locale", data={"csrf_token": token, "locale": "xx"}, follow_redirects=False)
    assert "yiwang_locale=xx" not in unknown.headers.get("set-cookie", "")
    # Without the CSRF token the switch is refused like any other unsafe request.
    assert client.post("/locale", data={"locale": "zh_CN"}, follow_redirects=False).status_code == 403


def test_search_finds_divisions_by_name_code_and_initials_in_scope(client: Any, case_net: Any, grid: Any, users: Any) -> None:
    grid.node("45010800100101")
    beside = grid.get(OTHER_COUNTY)  # outside the station's subtree
    users.login(client, case_net.users["station"].username)
    by_name = client.get("/search", params={"q": "第01"}).text
    assert "第01网格" in by_name and f"/grid/{GRID}" in by_name
    by_code = client.get("/search", params={"q": GRID}).text
    assert f"/grid/{GRID}" in by_code
    initials = pinyin_initials(case_net.nodes[GRID].name)[:3]
    assert f"/grid/{GRID}" in client.get("/search", params={"q": initials.upper()}).text
    # Above and beside the user's jurisdiction nothing is found.
    assert f"/grid/{OTHER_COUNTY}" not in client.get("/search", params={"q": beside.name}).text
    assert "/grid/450107\"" not in client.get("/search", params={"q": "450107"}).text


def test_search_finds_cases_the_user_may_see_and_no_others(client: Any, case_net: Any, users: Any, grid: Any) -> None:
    mine = case_net.report("worker", title="人民路井盖缺失")
    grid.node("45010800100101")
    outsider = users.make("community_staff", "450108001001")
    users.login(client, case_net.users["station"].username)
    hits = _post_search(client, "井盖")
    assert f"/cases/{mine.id}" in hits and "人民路井盖缺失" in hits
    assert f"/cases/{mine.id}" in client.get("/search", params={"q": mine.serial}).text
    assert f"/cases/{mine.id}" in client.get("/search", params={"q": "rml"}).text  # 人民路…
    other = client.__class__(client.app)
    users.login(other, outsider.username)
    assert f"/cases/{mine.id}" not in other.get("/search", params={"q": "井盖"}).text
    assert "没有找到" in _post_search(other, "井盖")


def test_search_needs_a_login_and_cuts_long_queries(client: Any, case_net: Any, users: Any) -> None:
    assert client.get("/search?q=x", follow_redirects=False).status_code == 303
    users.login(client, case_net.users["station"].username)
    assert client.get("/search", params={"q": "网" * 500}).status_code == 200


def test_the_search_box_posts_its_query_so_it_never_lands_in_a_url(client: Any, case_net: Any, users: Any) -> None:
    users.login(client, case_net.users["station"].username)
    page = client.get("/cases/").text
    assert re.search(r'<form class="topsearch" action="/search" method="post"', page)
    assert 'hx-post="/search/suggest"' in page
    found = _post_search(client, "第01", "/search")
    assert "第01网格" in found and "/search?q=" not in found
    # A search without the CSRF token is refused like any other POST.
    assert client.post("/search/suggest", data={"q": "第01"}).status_code == 403


class _People:
    @hookimpl
    def yiwang_search(self, request: Any, q: str, limit: int) -> list[Any]:
        return [SearchHit("人员", f"张* ({q})", "/p/people/1", "流动人口", 0)]


PEOPLE = PluginSpec(name="people", version="1.0", title="人员", api=">=1.0,<2", hooks=_People())


@pytest.mark.with_plugins(PEOPLE)
def test_a_plugin_answers_the_global_search(client: Any, case_net: Any, users: Any) -> None:
    users.login(client, case_net.users["station"].username)
    page = client.get("/search", params={"q": "张"}).text
    assert "人员（1）" in page and "/p/people/1" in page


def _post_search(client: Any, q: str, path: str = "/search/suggest") -> str:
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/search").text).group(1)  # type: ignore[union-attr]
    return str(client.post(path, data={"q": q, "csrf_token": token}).text)


def _todo(client: Any) -> str:
    return client.get("/cases/badge").text


def test_the_badge_counts_what_is_to_do(client: Any, case_net: Any, users: Any) -> None:
    users.login(client, case_net.users["station"].username)
    assert 'class="badge"' not in _todo(client)
    case_net.report("worker")
    case_net.report("worker")
    assert re.search(r'<span class="badge"[^>]*>2</span>', _todo(client))
    assert 'data-badge-poll="/cases/badge"' in client.get("/cases/").text


def test_a_background_poll_does_not_keep_an_idle_session_alive(client: Any, case_net: Any, users: Any) -> None:
    users.login(client, case_net.users["station"].username)
    kernel = client.app.state.kernel
    old = datetime.now(UTC) - timedelta(minutes=10)
    with kernel.db.write() as s:
        s.execute(update(AuthSession).values(last_seen_at=old))
    assert client.get("/cases/badge", headers={"X-Yiwang-Background": "1"}).status_code == 200
    with kernel.db.read() as s:
        seen = s.scalars(select(AuthSession.last_seen_at)).one()
    assert abs((seen.replace(tzinfo=UTC) if seen.tzinfo is None else seen) - old) < timedelta(seconds=1)
    client.get("/cases/")  # the user at work does touch it
    with kernel.db.read() as s:
        seen = s.scalars(select(AuthSession.last_seen_at)).one()
    assert (seen.replace(tzinfo=UTC) if seen.tzinfo is None else seen) > old + timedelta(minutes=5)


def test_the_badge_stream_sends_the_count_and_ends_with_the_session(client: Any, case_net: Any, users: Any) -> None:
    kernel = client.app.state.kernel
    kernel.settings = replace(kernel.settings, ui=UiSettings(badge_refresh_seconds=0.05))
    users.login(client, case_net.users["station"].username)
    case_net.report("worker")
    events: list[str] = []
    with client.stream("GET", "/cases/badge/stream", headers={"Accept": "text/event-stream"}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
                if line == "event: badge":
                    # The session goes idle: the stream says so and ends.
                    with kernel.db.write() as s:
                        s.execute(update(AuthSession).values(last_seen_at=datetime.now(UTC) - timedelta(hours=1)))
    assert events == ["badge", "expired"]


def test_a_client_that_is_not_an_event_source_gets_the_badge_once(client: Any, case_net: Any, users: Any) -> None:
    users.login(client, case_net.users["station"].username)
    case_net.report("worker")
    answer = client.get("/cases/badge/stream")
    assert answer.text.count("event: badge") == 1 and answer.text.startswith("retry: ")


@pytest.mark.parametrize("path", ["/cases/badge", "/cases/badge/stream"])
def test_the_badge_needs_a_login(client: Any, path: str) -> None:
    assert client.get(path, follow_redirects=False).status_code in (303, 401)

