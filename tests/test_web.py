"""The web shell as a browser, htmx and a load balancer see it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from yiwang.app import create_app
from yiwang.errors import SettingsError
from yiwang.settings import Settings, load_settings, package_root

HTMX = package_root() / "static" / "vendor" / "htmx.min.js"
XSS = "<img src=x onerror=alert(1)>"


def site_settings(tmp_path: Path, url: str, secret: str = "s" * 40) -> Settings:
    return load_settings(
        {"YIWANG_HOME": str(tmp_path / "home")},
        overrides={"database": {"url": url}, "security": {"secret_key": secret}},
    )


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Any]:
    """``standalone(url)``: a client for an app of its own on that database URL."""
    apps: list[Starlette] = []

    def make(url: str) -> TestClient:
        app = create_app(site_settings(tmp_path, url))
        apps.append(app)
        return TestClient(app, raise_server_exceptions=False)

    yield make
    for app in apps:
        app.state.kernel.db.dispose()


# --- health ---------------------------------------------------------------------------------------


def test_healthz_is_json_with_the_database_ok(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["version"]


@pytest.mark.parametrize(
    "url", ["postgresql://gx:s3cret-pw@127.0.0.1:1/yiwang", "sqlite:////nonexistent-yiwang-dir/y.db"]
)
def test_healthz_is_503_when_the_database_is_unreachable(standalone: Any, url: str) -> None:
    response = standalone(url).get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"] == "无法连接数据库"
    assert "s3cret-pw" not in response.text and "127.0.0.1" not in response.text


def test_healthz_is_503_when_the_database_is_not_migrated(standalone: Any, tmp_path: Path) -> None:
    response = standalone(f"sqlite:///{tmp_path / 'empty.db'}").get("/healthz")
    assert response.status_code == 503
    assert "yiwang db upgrade" in response.json()["database"]


# --- pages and htmx -------------------------------------------------------------------------------


def test_pages_vary_on_hx_request(client: Any, grid: Any) -> None:
    grid.node("4501")
    for path in ("/grid/45", "/grid/", "/grid/search?q=45", "/grid/999999"):
        assert client.get(path).headers["vary"] == "HX-Request", path


def test_htmx_request_gets_the_content_and_a_title_only(client: Any, grid: Any, login: Any) -> None:
    login()
    grid.node("4501", name="南宁市")
    fragment = client.get("/grid/4501", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<body" not in fragment.text
    [title] = re.findall(r"<title>(.*?)</title>", fragment.text)
    assert title.startswith("南宁市 · ")
    assert 'aria-current="page"' in fragment.text
    full = client.get("/grid/4501")
    assert "<html" in full.text and "<title>南宁市 · " in full.text


def test_history_restore_gets_the_whole_page(client: Any, grid: Any) -> None:
    grid.node("4501")
    page = client.get("/grid/4501", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in page.text


def test_home_redirects_to_the_dashboard_or_the_net(client: Any, login: Any) -> None:
    login()  # province staff: may see cases
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"].endswith("/dashboard")
    login("system_admin", "45")  # no cases.view
    response = client.get("/", follow_redirects=False)
    assert response.headers["location"].endswith("/grid/")


# --- errors ---------------------------------------------------------------------------------------


def test_unknown_node_is_a_chinese_404_page(client: Any, login: Any) -> None:
    login()
    page = client.get("/grid/999999")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in page.text
    assert "编码为 999999 的节点不存在" in page.text


def test_unknown_path_is_a_chinese_404_page(client: Any) -> None:
    page = client.get("/no/such/page")
    assert page.status_code == 404
    assert "页面不存在" in page.text
    assert "Not Found" not in page.text


def test_404_under_api_is_json(client: Any) -> None:
    response = client.get("/api/nothing")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == 404 and error["message"] == "页面不存在"
    assert error["request_id"] == response.headers["x-request-id"]


def test_404_is_json_when_json_is_asked_for(client: Any, login: Any) -> None:
    login()
    response = client.get("/grid/999999", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "编码为 999999 的节点不存在"
    browser = client.get("/grid/999999", headers={"Accept": "text/html,application/json;q=0.9"})
    assert browser.headers["content-type"].startswith("text/html")


def test_every_response_has_its_own_request_id(client: Any) -> None:
    ids = [client.get(path).headers.get("x-request-id") for path in ("/healthz", "/grid/", "/nope")]
    assert all(i and re.fullmatch(r"[0-9a-f]{16}", i) for i in ids), ids
    assert len(set(ids)) == 3


def test_server_error_shows_the_request_id_of_its_header(standalone: Any, tmp_path: Path) -> None:
    # A database without tables makes the page fail: a 500 whose page and header agree.
    response = standalone(f"sqlite:///{tmp_path / 'empty.db'}").get("/grid/")
    assert response.status_code == 500
    assert "系统内部错误" in response.text
    request_id = response.headers.get("x-request-id")
    assert request_id and request_id in response.text
    assert "OperationalError" not in response.text  # no internals shown


# --- assets and safety ----------------------------------------------------------------------------


def test_htmx_is_served_from_static_vendor(client: Any) -> None:
    if not HTMX.is_file():
        pytest.fail(f"{HTMX} 不存在：前端库未复制。请运行 ./dev setup（npm ci 与 scripts/copy_assets.py）")
    response = client.get("/static/vendor/htmx.min.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.content == HTMX.read_bytes()
    assert '<script src="/static/vendor/htmx.min.js"' in client.get("/grid/").text


def test_theme_stylesheet_is_served(client: Any) -> None:
    page = client.get("/grid/").text
    [href] = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert client.get(href).status_code == 200


def test_node_names_are_escaped(client: Any, grid: Any, login: Any) -> None:
    login()
    grid.node("4501", name=XSS)
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    for path, headers in (("/grid/45", {}), ("/grid/4501", {}), ("/grid/4501", {"HX-Request": "true"})):
        page = client.get(path, headers=headers)
        assert XSS not in page.text, path
        assert escaped in page.text, path
    search = client.get("/grid/search", params={"q": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in search.text


def test_create_app_without_a_secret_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="secret_key"):
        create_app(site_settings(tmp_path, f"sqlite:///{tmp_path / 'y.db'}", secret=""))
