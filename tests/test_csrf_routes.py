"""CSRF forgery on every unsafe route of the kernel and the plugins: a missing token, a wrong
one and another session's token are all refused with 403 before the endpoint runs, and the
refusal is recorded."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def _routes(routes: list[Any], prefix: str = "") -> list[tuple[str, Route]]:
    out = []
    for route in routes:
        if isinstance(route, Mount):
            out += _routes(list(getattr(route.app, "routes", []) or []), prefix + route.path)
        elif isinstance(route, Route):
            out.append((prefix + route.path, route))
    return out


def _fill(path: str) -> str:
    """Any value for path parameters: CSRF is checked before routing reaches an object."""
    import re

    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.mark.sqlite_only
@pytest.mark.with_plugins("notice")
def test_every_unsafe_route_refuses_forged_requests(app: Any, client: Any, users: Any, kernel: Any) -> None:
    from yiwang.audit import search

    victim = users.make("system_admin", "45")
    users.login(client, victim.username)
    other = users.make("system_admin", "45", username="attacker")
    with TestClient(app) as attacker:
        users.login(attacker, other.username)
        stolen = users.csrf(attacker)
    targets = [
        (method, _fill(path))
        for path, route in _routes(app.routes)
        for method in sorted(route.methods or ())
        if method in UNSAFE and not path.startswith("/api/")  # bearer-token API: no ambient cookie
    ]
    assert len(targets) >= 15
    attempts = 0
    for method, path in targets:
        for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": stolen}):
            response = client.request(method, path, headers=headers, follow_redirects=False)
            attempts += 1
            assert response.status_code == 403, (method, path, headers, response.status_code)
            assert "CSRF" in response.text
    assert client.get("/grid/").status_code == 200  # the victim is still logged in: nothing ran
    with kernel.db.read() as s:
        denied = search(s, action="http.denied", result="denied", limit=1000)
    assert len(denied) >= attempts
    print(f"CSRF forgery attempts: {attempts}, refused: {attempts}")
