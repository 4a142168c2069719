"""The request path's shortcuts keep their answers: the principal, its grants and its default node
come from one session, route paths are remembered per router, list statements are kept per tab,
user and reach — and a revoked grant or permission still takes effect at the very next request."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, event
from starlette.routing import NoMatchFound
from starlette.testclient import TestClient

from yiwang.audit import Actor
from yiwang.auth import service
from yiwang.cases import engine
from yiwang.cases.engine import Doer, NewCase
from yiwang.rbac.models import Assignment
from yiwang.web.templating import route_path

GRID = "45010700100101"
COMMUNITY = "450107001001"
OTHER_GRID = "45010700100201"


@pytest.fixture
def station(app: Any, kernel: Any, grid: Any, users: Any) -> Iterator[dict[str, Any]]:
    """A community station with three reported cases at its grid, one elsewhere, logged in."""
    here, there = grid.node(GRID), grid.node(OTHER_GRID)
    grid.org(grid.get(COMMUNITY), "人民社区网格工作站", kind="station")
    user = users.make("community_staff", COMMUNITY)
    with kernel.db.write() as s:
        for i, node in enumerate((here, here, here, there)):
            engine.report(kernel, s, Doer(Actor.system("test"), None, "测试"),
                          NewCase(case_type="public_facility", title=f"井盖缺失{i}", node_id=node.id, channel="platform"))  # fmt: skip
    with TestClient(app) as client:
        assert users.login(client, user.username).status_code in (200, 303)
        yield {"client": client, "user": user}


def _count_statements(kernel: Any) -> list[str]:
    seen: list[str] = []
    event.listen(kernel.db.engine, "before_cursor_execute", lambda _c, _u, sql, *_a: seen.append(sql))
    return seen


def test_a_principal_and_its_default_node_cost_two_statements_and_no_node_query(kernel: Any, users: Any, grid: Any) -> None:
    user = users.make("community_staff", COMMUNITY)
    token = service.issue_tokens(kernel.db, kernel.settings.auth, user, "phone-1").access_token
    seen = _count_statements(kernel)
    who = service.principal_for_token(kernel.db, token)
    assert who is not None and who.current is not None
    statements = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(statements) == 2, statements  # the token with its user; the grants with their nodes
    node = who.nodes[who.current.node_id]
    assert (node.code, node.path) == (COMMUNITY, who.current.node_path)
    assert node.child_count == grid.get(COMMUNITY).child_count


def test_route_paths_are_the_routers_answers(app: Any) -> None:
    for name, params in (("cases:inbox", {}), ("cases:detail", {"case_id": 7}), ("cases:detail", {"case_id": 8}),
                         ("static", {"path": "/vendor/htmx.min.js"}), ("api:case", {"case_id": 3})):  # fmt: skip
        assert route_path(app, name, **params) == str(app.url_path_for(name, **params))
    with pytest.raises(NoMatchFound):
        route_path(app, "cases:no-such-page")
    with pytest.raises(NoMatchFound):
        route_path(app, "cases:detail", serial="x")


def _serials(html: str) -> list[str]:
    return re.findall(r'<td class="mono"><a href="/cases/\d+">([^<]+)</a>', html)


def test_the_inbox_badge_counts_the_whole_tab_whatever_the_search(station: dict[str, Any]) -> None:
    client = station["client"]
    page = client.get("/cases/")
    assert len(_serials(page.text)) == 3
    assert re.search(r'aria-current="page">待办 <span class="badge">3</span>', page.text)
    narrowed = client.get("/cases/", params={"q": "井盖缺失1"})
    assert len(_serials(narrowed.text)) == 1
    assert re.search(r'aria-current="page">待办 <span class="badge">3</span>', narrowed.text)
    everything = client.get("/cases/", params={"tab": "all"})
    assert len(_serials(everything.text)) == 3
    assert re.search(r'aria-current="page">全部</a>', everything.text)  # no badge on 全部


def test_a_removed_assignment_empties_the_inbox_at_the_next_request(kernel: Any, station: dict[str, Any]) -> None:
    client = station["client"]
    assert len(_serials(client.get("/cases/").text)) == 3  # the statements are now kept
    with kernel.db.write() as s:
        s.execute(delete(Assignment).where(Assignment.user_id == station["user"].id))  # type: ignore[arg-type]
    page = client.get("/cases/")
    assert page.status_code == 403 and not _serials(page.text)


def test_a_revoked_permission_changes_the_to_do_tab_at_the_next_request(kernel: Any, station: dict[str, Any]) -> None:
    client = station["client"]
    assert len(_serials(client.get("/cases/").text)) == 3  # 待办: the station may accept them
    with kernel.db.write() as s:
        kernel.authz.revoke(s, "community_staff", "cases.accept")
    page = client.get("/cases/")
    assert page.status_code == 200 and not _serials(page.text) and "没有符合条件的事件" in page.text
    assert len(_serials(client.get("/cases/", params={"tab": "all"}).text)) == 3  # still visible
