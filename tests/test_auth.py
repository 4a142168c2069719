"""Identity: passwords, login, lockout, sessions, timeouts, CSRF, second factor, phone tokens."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from sqlalchemy import update

from yiwang.auth import passwords
from yiwang.auth.models import AuthSession, User
from yiwang.grid.models import utcnow
from yiwang.settings import load_settings
from yiwang.testing.users import PASSWORD

POLICY = load_settings({"YIWANG_HOME": "/nonexistent"}).auth


# --- password policy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Short#1a", "至少 12 位"),
        ("alllowercaseletters", "至少 3 类"),
        ("Admin#2026xyzw", "常见词"),
        ("Zhangsan#2026x", "常见词或用户名"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, problem: str) -> None:
    found = passwords.problems(password, POLICY, username="zhangsan")
    assert any(problem in p for p in found), found


def test_a_strong_password_passes_and_hashes_with_argon2id() -> None:
    assert passwords.problems(PASSWORD, POLICY, username="someone") == []
    hashed = passwords.hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$")
    assert passwords.verify_password(hashed, PASSWORD)
    assert not passwords.verify_password(hashed, PASSWORD + "x")


def test_rotation_expires_old_passwords() -> None:
    now = utcnow()
    assert passwords.expired(now - timedelta(days=91), now, POLICY)
    assert not passwords.expired(now - timedelta(days=89), now, POLICY)


# --- login ----------------------------------------------------------------------------------------


def _form_token(client: Any, path: str = "/login") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def _login(client: Any, username: str, password: str) -> Any:
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": _form_token(client)},
        follow_redirects=False,
    )


def test_login_sets_a_safe_session_cookie_and_shows_the_net(client: Any, users: Any) -> None:
    user = users.make("county_staff", "450107")
    response = _login(client, user.username, PASSWORD)
    assert response.status_code == 303
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("yw_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = client.get("/")
    assert page.status_code == 200 and "450107" in page.text


def test_every_set_cookie_has_httponly_and_samesite(client: Any, users: Any) -> None:
    user = users.make()
    responses = [client.get("/login"), _login(client, user.username, PASSWORD)]
    cookies = [v for r in responses for k, v in r.headers.multi_items() if k == "set-cookie"]
    assert cookies
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie


def test_cookie_is_secure_over_https(app: Any, users: Any) -> None:
    from starlette.testclient import TestClient

    user = users.make()
    with TestClient(app, base_url="https://yiwang.example") as secure:
        response = _login(secure, user.username, PASSWORD)
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("yw_session="))
    assert "Secure" in cookie


def test_unknown_user_and_wrong_password_look_alike(client: Any, users: Any) -> None:
    user = users.make()
    wrong = _login(client, user.username, "Wrong#Passw0rd-x")
    unknown = _login(client, "nobody-here", "Wrong#Passw0rd-x")
    assert wrong.status_code == unknown.status_code == 400
    assert "用户名或密码错误" in wrong.text and "用户名或密码错误" in unknown.text
    strip = lambda t: re.sub(r'value="[^"]*"', "", t)  # noqa: E731 - the typed username differs
    assert strip(wrong.text) == strip(unknown.text)


def test_five_failures_lock_the_account_even_for_the_right_password(client: Any, users: Any, kernel: Any) -> None:
    user = users.make()
    for _ in range(5):
        assert _login(client, user.username, "Wrong#Passw0rd-x").status_code == 400
    locked = _login(client, user.username, PASSWORD)
    assert locked.status_code == 400 and "用户名或密码错误" in locked.text
    with kernel.db.write() as s:  # fifteen minutes pass
        s.execute(update(User).where(User.id == user.id).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert _login(client, user.username, PASSWORD).status_code == 303


def test_lockout_is_the_same_on_the_phone_api(client: Any, users: Any) -> None:
    user = users.make()
    body = {"username": user.username, "password": "Wrong#Passw0rd-x", "device_id": "phone-1"}
    for _ in range(5):
        assert client.post("/api/auth/login", json=body).status_code == 401
    ok_body = {**body, "password": PASSWORD}
    response = client.post("/api/auth/login", json=ok_body)
    assert response.status_code == 401 and response.json()["error"]["message"] == "用户名或密码错误"
    assert _login(client, user.username, PASSWORD).status_code == 400  # the web form agrees


def test_too_many_failures_from_one_address_are_throttled(client: Any, users: Any, kernel: Any) -> None:
    limit = kernel.settings.auth.ip_failures_per_minute
    for i in range(limit):
        _login(client, f"someone{i}", "Wrong#Passw0rd-x")
    user = users.make()
    response = _login(client, user.username, PASSWORD)
    assert response.status_code == 400 and "过于频繁" in response.text


def test_login_issues_a_new_session_id(client: Any, users: Any) -> None:
    user = users.make()
    token = _form_token(client)
    anon = client.cookies.get("yw_csrf")
    response = client.post(
        "/login",
        content=f"username={user.username}&password={PASSWORD.replace('#', '%23')}&csrf_token={token}",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "cookie": f"yw_csrf={anon}; yw_session=attacker-chosen-value",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    issued = [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("yw_session=")]
    assert issued and not issued[-1].startswith("yw_session=attacker-chosen-value")


def test_next_only_redirects_within_the_site(client: Any, users: Any) -> None:
    user = users.make()
    token = _form_token(client)
    response = client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


# --- sessions ---------------------------------------------------------------------------------------


def test_logout_ends_the_session(client: Any, users: Any) -> None:
    user = users.make()
    users.login(client, user.username)
    stolen = client.cookies.get("yw_session")
    token = users.csrf(client)
    assert client.post("/logout", headers={"X-CSRF-Token": token}, follow_redirects=False).status_code == 303
    client.cookies.set("yw_session", stolen)
    assert client.get("/grid/", follow_redirects=False).status_code == 303  # back to the login page


def test_disabling_a_user_ends_their_sessions_at_once(client: Any, users: Any, kernel: Any) -> None:
    from yiwang.auth import service

    user = users.make()
    users.login(client, user.username)
    assert client.get("/grid/").status_code == 200
    with kernel.db.write() as s:
        service.disable_user(s, s.get(User, user.id))
    assert client.get("/grid/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("column", ["last_seen_at", "expires_at"])
def test_idle_and_absolute_timeouts_end_sessions(client: Any, users: Any, kernel: Any, column: str) -> None:
    user = users.make()
    users.login(client, user.username)
    past = utcnow() - timedelta(minutes=kernel.settings.auth.session_idle_minutes + 1)
    with kernel.db.write() as s:
        s.execute(update(AuthSession).where(AuthSession.user_id == user.id).values({column: past}))
    response = client.get("/grid/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_guessing_the_current_password_locks_the_account(client: Any, users: Any, kernel: Any) -> None:
    user = users.make()
    users.login(client, user.username)
    token = users.csrf(client, "/account/password")
    for _ in range(kernel.settings.auth.lockout_threshold):
        bad = client.post("/account/password", data={"current": "Guess#Wr0ng-x", "new": "Nw8$kLq3@zRt",
                                                     "confirm": "Nw8$kLq3@zRt", "csrf_token": token})  # fmt: skip
    assert bad.status_code == 400 and "当前密码不正确" in bad.text
    assert client.get("/grid/", follow_redirects=False).status_code == 303  # sessions ended
    assert _login(client, user.username, PASSWORD).status_code == 400  # locked


def test_first_login_forces_a_password_change(client: Any, users: Any) -> None:
    user = users.make(must_change_password=True)
    users.login(client, user.username)
    response = client.get("/grid/", follow_redirects=False)
    assert response.headers["location"] == "/account/password"
    token = users.csrf(client, "/account/password")
    weak = client.post("/account/password", data={"current": PASSWORD, "new": "short", "confirm": "short", "csrf_token": token})
    assert weak.status_code == 400 and "至少 12 位" in weak.text
    new = "Nw8$kLq3@zRt"
    done = client.post("/account/password", data={"current": PASSWORD, "new": new, "confirm": new, "csrf_token": token})
    assert done.status_code == 200 and "密码已修改" in done.text
    assert client.get("/grid/").status_code == 200


# --- CSRF -------------------------------------------------------------------------------------------


def test_unsafe_requests_need_the_sessions_csrf_token(client: Any, users: Any, app: Any) -> None:
    from starlette.testclient import TestClient

    user = users.make()
    users.login(client, user.username)
    missing = client.post("/logout", follow_redirects=False)
    wrong = client.post("/logout", headers={"X-CSRF-Token": "forged"}, follow_redirects=False)
    assert missing.status_code == wrong.status_code == 403
    other = users.make()
    with TestClient(app) as second:
        users.login(second, other.username)
        others_token = users.csrf(second)
    assert client.post("/logout", headers={"X-CSRF-Token": others_token}, follow_redirects=False).status_code == 403
    assert client.get("/grid/").status_code == 200  # still logged in: nothing happened
    good = client.post("/logout", data={"csrf_token": users.csrf(client)}, follow_redirects=False)
    assert good.status_code == 303


def test_the_login_form_itself_needs_its_token(client: Any, users: Any) -> None:
    user = users.make()
    client.get("/login")
    response = client.post("/login", data={"username": user.username, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403


# --- second factor ------------------------------------------------------------------------------------


def test_totp_is_required_when_enabled(client: Any, users: Any, kernel: Any) -> None:
    user = users.make()
    secret = pyotp.random_base32()
    with kernel.db.write() as s:
        row = s.get(User, user.id)
        row.totp_secret, row.totp_enabled = secret, True
    response = users.login(client, user.username)
    assert "/login/totp" in str(response.url)
    assert client.get("/grid/", follow_redirects=False).headers["location"] == "/login/totp"
    token = _form_token(client, "/login/totp")
    bad = client.post("/login/totp", data={"code": "000000", "csrf_token": token})
    assert bad.status_code == 400
    good = client.post("/login/totp", data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
    assert good.status_code == 200
    assert client.get("/grid/").status_code == 200


# --- phone tokens ---------------------------------------------------------------------------------------


def test_phone_tokens_work_rotate_and_revoke(client: Any, users: Any) -> None:
    user = users.make("grid_worker", "45010700100101")
    login = client.post("/api/auth/login", json={"username": user.username, "password": PASSWORD, "device_id": "phone-7"})
    assert login.status_code == 200
    tokens = login.json()
    me = client.get("/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200 and me.json()["grants"][0]["node"] == "45010700100101"
    refreshed = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"], "device_id": "phone-7"})
    assert refreshed.status_code == 200
    again = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"], "device_id": "phone-7"})
    assert again.status_code == 401  # a refresh token is spent once
    new = refreshed.json()
    auth = {"Authorization": f"Bearer {new['access_token']}"}
    assert client.post("/api/auth/logout", headers=auth).status_code == 200  # no CSRF for bearer tokens
    assert client.get("/api/me", headers=auth).status_code == 401


def test_api_without_a_token_is_401_json(client: Any) -> None:
    response = client.get("/api/me")
    assert response.status_code == 401 and response.json()["error"]["message"] == "请先登录"


def test_a_user_sets_up_totp_and_then_needs_it(client: Any, users: Any, app: Any) -> None:
    from starlette.testclient import TestClient

    user = users.make()
    users.login(client, user.username)
    assert "开始设置" in client.get("/account/totp").text  # GET changes nothing
    client.post("/account/totp/start", data={"csrf_token": users.csrf(client, "/account/totp")})
    page = client.get("/account/totp")
    assert page.status_code == 200 and "data:image/svg+xml;base64," in page.text
    secret = re.search(r'密钥：<span class="mono">([A-Z2-7]+)</span>', page.text).group(1)
    token = users.csrf(client, "/account/totp")
    assert client.post("/account/totp", data={"code": "123456", "csrf_token": token}).status_code in (400, 200)
    enabled = client.post("/account/totp", data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
    assert enabled.status_code == 200 and "已启用" in enabled.text
    with TestClient(app) as fresh:
        assert "/login/totp" in str(users.login(fresh, user.username).url)


def test_roles_can_require_totp(kernel: Any, users: Any, settings: Any, yiwang_db: Any) -> None:
    from dataclasses import replace

    from starlette.testclient import TestClient

    from yiwang.app import create_app
    from yiwang.kernel import Kernel

    strict = replace(settings, auth=replace(settings.auth, totp_required_roles=("system_admin",)))
    app = create_app(strict, kernel=Kernel(strict, db=yiwang_db))
    admin = users.make("system_admin", "45")
    with TestClient(app) as client:
        users.login(client, admin.username)
        response = client.get("/grid/", follow_redirects=False)
        assert response.headers["location"] == "/account/totp"
        assert "您的角色要求使用动态口令" in client.get("/account/totp").text
