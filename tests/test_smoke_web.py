"""The web shell: the net browsed level by level, htmx fragments, errors, health."""

from __future__ import annotations

from typing import Any


def test_tree_page_lists_children_with_counts(client: Any, grid: Any, login: Any) -> None:
    login()
    grid.node("45010700100101")
    grid.node("45010700100102")
    page = client.get("/grid/450107001")
    assert page.status_code == 200
    assert "450107001001" in page.text
    assert page.headers["vary"] == "HX-Request"
    assert "<html" in page.text


def test_htmx_request_gets_only_the_content(client: Any, grid: Any, login: Any) -> None:
    login()
    grid.node("450107")
    page = client.get("/grid/4501", headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert "<html" not in page.text
    assert "450107" in page.text


def test_unknown_node_is_a_chinese_404(client: Any, login: Any) -> None:
    login()
    page = client.get("/grid/999999")
    assert page.status_code == 404
    assert "不存在" in page.text


def test_healthz(client: Any) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok"
