"""Notices reach the posting node's whole subtree, follow moves, and respect activation."""

from __future__ import annotations

from typing import Any

import pytest

from yiwang.api import ValidationError

from yiwang_notice import service

pytestmark = pytest.mark.with_plugins("notice")


def test_a_notice_reaches_the_subtree_but_not_siblings(kernel: Any, grid: Any) -> None:
    city = grid.node("4501")
    inside = grid.node("45010700100101")
    sibling = grid.node("4502")
    with kernel.db.write() as s:
        service.post(s, city, "防汛通知", "各单位注意")
    with kernel.db.read() as s:
        assert [n.title for n in service.reaching(s, inside)] == ["防汛通知"]
        assert service.reaching(s, sibling) == []


def test_bad_notice_is_rejected_with_reasons(kernel: Any, grid: Any) -> None:
    node = grid.node("4501")
    with pytest.raises(ValidationError) as err, kernel.db.write() as s:
        service.post(s, node, "  ", "", urgency="whenever")
    assert "标题不能为空" in str(err.value) and "紧急程度" in str(err.value)


def test_list_page_and_slot_show_notices(client: Any, kernel: Any, grid: Any, login: Any) -> None:
    login()
    city = grid.node("4501")
    grid.node("450107")
    with kernel.db.write() as s:
        notice = service.post(s, city, "<b>禁毒宣传</b>", "正文")
    page = client.get("/p/notice/?node=450107")
    assert page.status_code == 200
    assert "&lt;b&gt;禁毒宣传&lt;/b&gt;" in page.text  # autoescaped
    assert client.get(f"/p/notice/{notice.id}?node=450107").status_code == 200
    node_page = client.get("/grid/450107")
    assert "&lt;b&gt;禁毒宣传" in node_page.text  # the node.detail slot


def test_a_notice_outside_the_jurisdiction_is_not_readable(client: Any, kernel: Any, grid: Any, login: Any) -> None:
    login()
    grid.node("4502")
    other = grid.node("4501")
    with kernel.db.write() as s:
        notice = service.post(s, other, "南宁内部通知", "")
    page = client.get(f"/p/notice/{notice.id}?node=4502")
    assert page.status_code == 404
    assert "南宁内部通知" not in page.text


def test_inactive_region_gets_404_and_the_slot_disappears(client: Any, kernel: Any, grid: Any, login: Any) -> None:
    login()
    city = grid.node("4501")
    grid.node("450107")
    with kernel.db.write() as s:
        service.post(s, city, "只在启用地区可见", "")
    kernel.activation.set("notice", city, False)
    page = client.get("/p/notice/?node=450107")
    assert page.status_code == 404 and "本地区未启用该模块" in page.text
    assert "只在启用地区可见" not in client.get("/grid/450107").text
    assert "通知公告" not in client.get("/grid/450107").text  # menu item hidden too
    kernel.activation.set("notice", grid.get("450107"), True)  # a county re-enables it
    assert client.get("/p/notice/?node=450107").status_code == 200


def test_moving_a_subtree_moves_its_notices(kernel: Any, grid: Any) -> None:
    county = grid.node("450107")
    grid.node("4502")
    with kernel.db.write() as s:
        service.post(s, county, "区级通知", "")
    moved = grid.move("450107", "4502", new_code="450207")
    with kernel.db.read() as s:
        assert [n.title for n in service.posted_within(s, grid.get("4502"))] == ["区级通知"]
        assert service.posted_within(s, grid.get("4501")) == []
        assert [n.node_path for n in service.reaching(s, moved)] == [moved.path]


def test_posting_is_recorded_in_the_audit_trail(kernel: Any, grid: Any) -> None:
    from yiwang.testing import audit_entries

    city = grid.node("4501")
    with kernel.db.write() as s:
        notice = service.post(s, city, "防汛通知", "")
    [entry] = audit_entries(kernel, action="notice.post")
    assert entry.object_id == str(notice.id) and "4501" in entry.detail
