"""The audit page: the audit administrator searches and exports; nobody else sees it."""

from __future__ import annotations

from typing import Any


def test_audit_admin_finds_logins_and_exports_them(client: Any, login: Any, users: Any) -> None:
    someone = users.make("county_staff", "450107")
    from starlette.testclient import TestClient

    with TestClient(client.app) as other:
        assert users.login(other, someone.username, "Wrong#Passw0rd-x").status_code == 400
    login("audit_admin", "45")
    page = client.get("/audit/", params={"user": someone.username, "result": "failed"})
    assert page.status_code == 200
    assert "auth.login" in page.text and "失败" in page.text
    export = client.get("/audit/export.csv", params={"action": "auth.*"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.content.startswith("\ufeff序号".encode())
    assert someone.username in export.text
    again = client.get("/audit/", params={"action": "audit.export"})
    assert "audit.export" in again.text  # the export itself was recorded


def test_other_roles_cannot_read_the_trail(client: Any, login: Any) -> None:
    login("system_admin", "45")
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403


def test_bad_filters_are_explained(client: Any, login: Any) -> None:
    login("audit_admin", "45")
    page = client.get("/audit/", params={"since": "2026-13-40"})
    assert page.status_code == 422 and "YYYY-MM-DD" in page.text
