"""Notifications: an outbox written with the change, delivered afterwards by drivers — real SMTP
(aiosmtpd) and a real HTTP gateway — with retries, give-up, claims that never send twice, the
in-app inbox, the administrators' retry page, and no address in any log or stored error."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import func, select, text, update

from yiwang import notify
from yiwang.api import Message, Notifier
from yiwang.audit import search
from yiwang.auth.models import User
from yiwang.cli.main import Context, cli
from yiwang.errors import SettingsError, ValidationError
from yiwang.grid.models import utcnow
from yiwang.kernel import Kernel
from yiwang.notify.models import NotifyMessage
from yiwang.notify.outbox import M
from yiwang.notify.worker import runtime
from yiwang.settings import load_settings

EMAIL = "zhang.wei@example.gov.cn"
MOBILE = "13812345678"
TOKEN = "gw-secret-token"


# --- real servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """aiosmtpd handler keeping every mail it receives."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.mails.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@dataclass
class Gateway:
    """An SMS gateway answering with ``statuses`` in turn (the last one repeats)."""

    url: str = ""
    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[dict[str, Any]] = field(default_factory=list)
    drop: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def texts(self) -> list[str]:
        return [r["json"]["text"] for r in self.requests]


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if gw.drop:  # hang up without an answer
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            with gw.lock:
                gw.requests.append(
                    {"path": self.path, "auth": self.headers["Authorization"], "json": json.loads(body)}
                )
            status = gw.answer()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    gw.url = f"http://127.0.0.1:{server.server_address[1]}/sms/send"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gw
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- kernels with notification settings ----------------------------------------------------------


@pytest.fixture
def make_kernel(settings: Any, yiwang_db: Any) -> Iterator[Any]:
    """``make_kernel(channels=[...], smtp={...}, sms_http={...}, ...)``: a kernel on the test
    database with those ``[notify]`` settings (delivery on commit off unless asked for)."""
    made: list[Kernel] = []

    def make(**changes: Any) -> Kernel:
        n = settings.notify
        smtp = replace(n.smtp, **changes.pop("smtp", {}))
        sms = replace(n.sms_http, **changes.pop("sms_http", {}))
        changes.setdefault("deliver_on_commit", False)
        changes["channels"] = tuple(changes.get("channels", n.channels))
        k = Kernel(replace(settings, notify=replace(n, smtp=smtp, sms_http=sms, **changes)), db=yiwang_db)
        made.append(k)
        return k

    yield make
    for k in made:
        notify.stop(k)


@pytest.fixture(autouse=True)
def _stop_fixture_kernel(request: pytest.FixtureRequest) -> Iterator[None]:
    """No delivery thread outlives its test (the next one empties the database)."""
    k = request.getfixturevalue("kernel") if "kernel" in request.fixturenames else None
    yield
    if k is not None:
        notify.stop(k)


def sms_kernel(make_kernel: Any, gw: Gateway, **changes: Any) -> Kernel:
    return make_kernel(  # type: ignore[no-any-return]
        channels=["sms_http"], sms_http={"url": gw.url, "token": TOKEN, "template": "SMS_001"},
        **changes,
    )  # fmt: skip


def contact(kernel: Kernel, user: User, *, email: str | None = None, mobile: str | None = None) -> None:
    with kernel.db.write() as s:
        u = s.get(User, user.id)
        assert u is not None
        u.email, u.mobile = email, mobile


def send(kernel: Kernel, user_ids: list[int], subject: str = "事件已派遣：路灯不亮", **kw: Any) -> int:
    with kernel.db.write() as s:
        return notify.queue(
            s, kernel, user_ids=user_ids, subject=subject, body=kw.pop("body", "事件 2026-0001 已派遣。"),
            link=kw.pop("link", "/cases/1"), event="cases.dispatch", ref_type="case", ref_id=1, **kw,
        )  # fmt: skip


def rows(kernel: Kernel) -> list[NotifyMessage]:
    with kernel.db.read() as s:
        return list(s.scalars(select(NotifyMessage).order_by(NotifyMessage.id)))  # type: ignore[arg-type]


def aware(value: Any) -> Any:
    return value if value is None or value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


# --- settings and drivers ------------------------------------------------------------------------


def test_an_unknown_channel_stops_start_up_naming_the_installed_ones(tmp_path: Any) -> None:
    env = {"YIWANG_HOME": str(tmp_path)}
    with pytest.raises(SettingsError) as err:
        load_settings(env, overrides={"notify": {"channels": ["outbox", "wechat"]}})
    assert "wechat" in str(err.value)
    for name in ("outbox", "log", "smtp", "sms_http"):
        assert name in str(err.value)
    with pytest.raises(SettingsError, match="notify.smtp.host"):
        load_settings(env, overrides={"notify": {"channels": ["smtp"]}})
    with pytest.raises(SettingsError, match="notify.sms_http.url"):
        load_settings(env, overrides={"notify": {"channels": ["sms_http"]}})
    ok = load_settings(env, overrides={"notify": {"channels": ["outbox", "log"]}})
    assert ok.notify.channels == ("outbox", "log")
    assert TOKEN not in repr(load_settings(env, overrides={"notify": {"sms_http": {"token": TOKEN}}}))


def test_the_shipped_drivers_keep_the_plugin_contract(make_kernel: Any, gateway: Gateway) -> None:
    k = make_kernel(
        channels=["outbox", "log", "smtp", "sms_http"],
        smtp={"host": "127.0.0.1", "sender": "yiwang@example.gov.cn"}, sms_http={"url": gateway.url},
    )  # fmt: skip
    drivers = runtime(k).drivers
    assert list(drivers) == ["outbox", "log", "smtp", "sms_http"]
    for name, d in drivers.items():
        assert isinstance(d, Notifier) and d.name == name and d.title
    assert {n: d.address_kind for n, d in drivers.items()} == {
        "outbox": "", "log": "", "smtp": "email", "sms_http": "phone"
    }  # fmt: skip
    assert "13812345678" not in repr(Message(id=1, channel="x", user_id=1, subject="s", body="b", address=MOBILE))


# --- queueing ------------------------------------------------------------------------------------


def test_queue_writes_one_row_per_user_and_channel_in_the_callers_transaction(
    make_kernel: Any, users: Any
) -> None:
    k = make_kernel(channels=["outbox", "log"])
    a, b = users.make("grid_worker", "450107"), users.make("grid_worker", "450107")
    assert send(k, [a.id, b.id, a.id]) == 4
    got = rows(k)
    assert sorted((r.user_id, r.channel) for r in got) == sorted(
        [(a.id, "outbox"), (a.id, "log"), (b.id, "outbox"), (b.id, "log")]
    )
    # An in-app message is delivered by being written; other channels wait for their driver.
    assert {(r.channel, r.status, r.attempts, r.event, r.ref_type, r.ref_id, r.link) for r in got} == {
        ("outbox", "sent", 1, "cases.dispatch", "case", 1, "/cases/1"),
        ("log", "pending", 0, "cases.dispatch", "case", 1, "/cases/1"),
    }
    with k.db.write() as s:
        for link in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
            with pytest.raises(ValidationError, match="相对地址"):
                notify.queue(s, k, user_ids=[a.id], subject="x", body="", link=link)
        with pytest.raises(ValidationError, match="未启用"):
            notify.queue(s, k, user_ids=[a.id], subject="x", body="", channels=["smtp"])
    assert send(k, [a.id], channels=["log"]) == 1


def test_a_message_queued_in_a_transaction_that_rolls_back_is_never_delivered(
    make_kernel: Any, users: Any, gateway: Gateway
) -> None:
    k = sms_kernel(make_kernel, gateway, deliver_on_commit=True)
    u = users.make("grid_worker", "450107")
    contact(k, u, mobile=MOBILE)
    with pytest.raises(RuntimeError):
        with k.db.write() as s:
            notify.queue(s, k, user_ids=[u.id], subject="回滚的通知", body="不应发出")
            raise RuntimeError("the change failed")
    with k.db.write() as s:  # a savepoint rolled back inside a committed transaction
        savepoint = s.begin_nested()
        notify.queue(s, k, user_ids=[u.id], subject="回滚的通知", body="不应发出")
        savepoint.rollback()
        notify.queue(s, k, user_ids=[u.id], subject="提交的通知", body="应发出")
    assert runtime(k).dispatcher.wait_idle(10)
    assert [r.subject for r in rows(k)] == ["提交的通知"]
    assert notify.deliver_due(k, now=utcnow() + timedelta(days=1)).claimed == 0
    assert [t.startswith("提交的通知") for t in gateway.texts()] == [True]


def test_a_committed_change_is_delivered_in_the_background_without_a_job(
    make_kernel: Any, users: Any, gateway: Gateway
) -> None:
    k = sms_kernel(make_kernel, gateway, deliver_on_commit=True)
    u = users.make("grid_worker", "450107")
    contact(k, u, mobile=MOBILE)
    send(k, [u.id])
    assert runtime(k).dispatcher.wait_idle(10)
    assert len(gateway.requests) == 1
    [row] = rows(k)
    assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None


# --- real SMTP and HTTP gateway --------------------------------------------------------------------


def test_smtp_driver_sends_a_real_mail_to_the_users_address(
    make_kernel: Any, users: Any, smtp_server: tuple[int, Inbox]
) -> None:
    port, inbox = smtp_server
    k = make_kernel(
        channels=["smtp"], base_url="https://yiwang.example.gov.cn",
        smtp={"host": "127.0.0.1", "port": port, "sender": "yiwang@example.gov.cn"},
    )  # fmt: skip
    u = users.make("grid_worker", "450107")
    nobody = users.make("grid_worker", "450107")
    contact(k, u, email=EMAIL)
    send(k, [u.id, nobody.id], body="事件 2026-0001「路灯不亮」已派遣，请处置。")
    report = notify.deliver_due(k)
    assert (report.claimed, report.sent, report.dead) == (2, 1, 1)
    [(recipients, mail)] = inbox.mails
    assert recipients == [EMAIL]
    assert mail["Subject"] == "事件已派遣：路灯不亮"
    assert mail["From"] == "yiwang@example.gov.cn"
    content = mail.get_content()
    assert "「路灯不亮」已派遣" in content and "https://yiwang.example.gov.cn/cases/1" in content
    by_user = {r.user_id: r for r in rows(k)}
    assert by_user[u.id].status == "sent"
    # No address: dead at once with the reason, never retried.
    assert (by_user[nobody.id].status, by_user[nobody.id].last_error) == ("dead", "用户未登记邮箱")
    assert notify.deliver_due(k, now=utcnow() + timedelta(days=30)).claimed == 0
    assert len(inbox.mails) == 1


def test_sms_gateway_receives_the_decrypted_phone_with_the_bearer_token(
    make_kernel: Any, users: Any, gateway: Gateway
) -> None:
    k = sms_kernel(make_kernel, gateway)
    u = users.make("grid_worker", "450107")
    contact(k, u, mobile=MOBILE)
    with k.db.read() as s:  # stored encrypted: the digits are not in the column
        raw = s.execute(text("SELECT mobile FROM auth_user WHERE id = :i"), {"i": u.id}).scalar_one()
    assert MOBILE not in raw
    send(k, [u.id])
    assert notify.deliver_due(k).sent == 1
    [req] = gateway.requests
    assert req["path"] == "/sms/send" and req["auth"] == f"Bearer {TOKEN}"
    assert req["json"]["phone"] == MOBILE and req["json"]["template"] == "SMS_001"
    assert req["json"]["text"].startswith("事件已派遣：路灯不亮：事件 2026-0001 已派遣。")


def test_a_raw_address_is_stored_encrypted_and_reached_by_the_delivery_job(
    make_kernel: Any, gateway: Gateway
) -> None:
    k = sms_kernel(make_kernel, gateway)
    with k.db.write() as s:
        assert notify.queue_address(
            s, k, channel="sms_http", address="+86 138-1234-5678", subject="您反映的问题已受理",
            body="事件 2026-0002 已受理。", event="cases.accept",
        ) == 1  # fmt: skip
        with pytest.raises(ValidationError, match="手机号码"):
            notify.queue_address(s, k, channel="sms_http", address="12345", subject="x", body="")
        with pytest.raises(ValidationError, match="未启用"):
            notify.queue_address(s, k, channel="smtp", address=EMAIL, subject="x", body="")
    with k.db.read() as s:
        stored = s.execute(text("SELECT address FROM notify_message")).scalar_one()
    assert MOBILE not in stored
    assert notify.deliver_job(k, utcnow()) == 1
    [req] = gateway.requests
    assert req["json"]["phone"] == MOBILE
    [row] = rows(k)
    assert (row.user_id, row.status) == (None, "sent")


def test_a_failing_gateway_is_retried_with_backoff_until_it_recovers(
    make_kernel: Any, users: Any, gateway: Gateway
) -> None:
    k = sms_kernel(make_kernel, gateway, backoff_seconds=60, backoff_max_seconds=600)
    u = users.make("grid_worker", "450107")
    contact(k, u, mobile=MOBILE)
    gateway.statuses = [500, 503, 200]
    send(k, [u.id])
    t0 = utcnow()
    first = notify.deliver_due(k, now=t0)
    assert (first.claimed, first.failed) == (1, 1)
    [row] = rows(k)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "短信网关返回 HTTP 500")
    assert aware(row.next_attempt_at) == t0 + timedelta(seconds=60)
    assert notify.deliver_due(k, now=t0 + timedelta(seconds=59)).claimed == 0  # not yet due
    assert notify.deliver_due(k, now=t0 + timedelta(seconds=61)).failed == 1
    [row] = rows(k)
    assert row.attempts == 2 and aware(row.next_attempt_at) == t0 + timedelta(seconds=61 + 120)
    assert notify.deliver_due(k, now=t0 + timedelta(seconds=200)).sent == 1  # gateway recovered
    [row] = rows(k)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, "")
    assert len(gateway.requests) == 3
    assert notify.deliver_due(k, now=t0 + timedelta(days=1)).claimed == 0  # sent once, never again


def test_after_max_attempts_a_message_is_dead_and_shown_to_administrators(
    make_kernel: Any, users: Any, gateway: Gateway, client: Any, login: Any
) -> None:
    k = sms_kernel(make_kernel, gateway, max_attempts=2, backoff_seconds=1)
    u = users.make("grid_worker", "450107")
    contact(k, u, mobile=MOBILE)
    gateway.statuses = [500]
    send(k, [u.id])
    t0 = utcnow()
    assert notify.deliver_due(k, now=t0).failed == 1
    assert notify.deliver_due(k, now=t0 + timedelta(seconds=5)).dead == 1
    assert notify.deliver_due(k, now=t0 + timedelta(days=1)).claimed == 0
    [row] = rows(k)
    assert (row.status, row.attempts) == ("dead", 2)
    login(role="system_admin", node="45")
    page = client.get("/admin/notifications")
    assert page.status_code == 200
    assert "已放弃" in page.text and "短信网关返回 HTTP 500" in page.text and "重新发送" in page.text


def test_drivers_that_raise_never_raise_from_deliver_due(
    make_kernel: Any, users: Any, gateway: Gateway
) -> None:
    closed = free_port()
    u = users.make("grid_worker", "450107")
    cases = [
        (make_kernel(channels=["sms_http"], sms_http={"url": f"http://127.0.0.1:{closed}/x"}), "短信网关不可达"),
        (sms_kernel(make_kernel, gateway), "短信网关连接中断"),
        (make_kernel(channels=["smtp"], smtp={"host": "127.0.0.1", "port": closed, "sender": "a@b.cn"}),
         "无法连接邮件服务器"),
    ]  # fmt: skip
    contact(cases[0][0], u, email=EMAIL, mobile=MOBILE)
    gateway.drop = True
    for k, reason in cases:
        with k.db.write() as s:
            s.execute(update(M).values(status="sent"))  # only this kernel's message is due
        send(k, [u.id])
        report = notify.deliver_due(k)
        assert (report.claimed, report.failed) == (1, 1)
        last = rows(k)[-1]
        assert last.status == "failed" and last.last_error.startswith(reason), last.last_error


@pytest.mark.parametrize("workers", [2])
def test_concurrent_deliveries_send_each_message_exactly_once(
    make_kernel: Any, users: Any, gateway: Gateway, workers: int
) -> None:
    k = sms_kernel(make_kernel, gateway)
    u = users.make("grid_worker", "450107")
    contact(k, u, mobile=MOBILE)
    n = 40
    for i in range(n):
        send(k, [u.id], subject=f"通知{i:03d}")
    start = threading.Barrier(workers)
    reports: list[notify.DeliveryReport] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            start.wait()
            total = notify.DeliveryReport()
            while True:
                report = notify.deliver_due(k, limit=3)
                total += report
                if not report.claimed:
                    break
            reports.append(total)
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    subjects = [t.split("：")[0] for t in gateway.texts()]
    assert sorted(subjects) == [f"通知{i:03d}" for i in range(n)]  # each exactly once
    assert sum(r.sent for r in reports) == n
    assert {r.status for r in rows(k)} == {"sent"}


# --- privacy ---------------------------------------------------------------------------------------


def test_no_address_in_any_log_line_or_stored_error(
    make_kernel: Any, users: Any, gateway: Gateway, smtp_server: tuple[int, Inbox],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    u = users.make("grid_worker", "450107")
    port, _ = smtp_server
    k = make_kernel(
        channels=["log", "smtp", "sms_http"], smtp={"host": "127.0.0.1", "port": port, "sender": "a@b.cn"},
        sms_http={"url": gateway.url, "token": TOKEN},
    )  # fmt: skip
    contact(k, u, email=EMAIL, mobile=MOBILE)
    gateway.statuses = [500]
    send(k, [u.id], subject=f"来电 {MOBILE} 反映路灯不亮")
    report = notify.deliver_due(k)
    assert (report.sent, report.failed) == (2, 1)
    # Every record but the test SMTP server's own (aiosmtpd logs envelopes).
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail."))
    assert f"用户 {u.id} 事件 cases.dispatch" in logged  # the log driver's line
    for secret in (EMAIL, MOBILE, TOKEN):
        assert secret not in logged
        assert all(secret not in r.last_error for r in rows(k))
    # A server's error text that repeats the address is scrubbed before it is stored.
    from yiwang.notify.outbox import _short

    stored = _short(RuntimeError(f"550 <{EMAIL}> unknown; sms to {MOBILE} refused"), EMAIL)
    assert EMAIL not in stored and MOBILE not in stored and "z***@example.gov.cn" in stored


# --- in-app messages --------------------------------------------------------------------------------


def test_the_inbox_shows_only_ones_own_messages_and_marking_read_lowers_the_count(
    kernel: Any, users: Any, client: Any, login: Any
) -> None:
    me = login(role="grid_worker", node="450107")
    other = users.make("grid_worker", "450107")
    send(kernel, [me.id], subject="给我的第一条")
    send(kernel, [me.id], subject="给我的第二条")
    send(kernel, [other.id], subject="别人的通知")
    page = client.get("/notifications")
    assert page.status_code == 200
    assert "给我的第一条" in page.text and "给我的第二条" in page.text and "别人的通知" not in page.text
    assert page.text.index("给我的第二条") < page.text.index("给我的第一条")  # newest first
    assert "<strong>给我的第二条</strong>" in page.text  # unread in bold
    assert client.get("/api/notifications/unread").json() == {"unread": 2}
    token = users.csrf(client, "/notifications")
    by_subject = {r.subject: r.id for r in rows(kernel)}
    headers = {"X-CSRF-Token": token}
    assert client.post(f"/notifications/{by_subject['给我的第一条']}/read", headers=headers).status_code == 200
    assert client.get("/api/notifications/unread").json() == {"unread": 1}
    assert "<strong>给我的第一条</strong>" not in client.get("/notifications").text
    # Someone else's message: as if it did not exist, and it stays unread.
    assert client.post(f"/notifications/{by_subject['别人的通知']}/read", headers=headers).status_code == 404
    with kernel.db.read() as s:
        assert notify.unread_count(s, other.id) == 1
    assert client.post("/notifications/read-all", headers=headers).status_code == 200
    assert client.get("/api/notifications/unread").json() == {"unread": 0}
    assert "我的消息" in client.get("/grid/").text  # in every user's menu


def test_unread_count_api_needs_a_login(client: Any) -> None:
    response = client.get("/api/notifications/unread")
    assert response.status_code == 401


# --- administrators ---------------------------------------------------------------------------------


def _dead_message(kernel: Kernel, user_id: int) -> int:
    send(kernel, [user_id])
    assert runtime(kernel).dispatcher.wait_idle(10)  # the in-app delivery has run
    with kernel.db.write() as s:
        s.execute(update(M).values(status="dead", attempts=8, last_error="短信网关返回 HTTP 500"))
        return int(s.execute(select(func.max(M.c.id))).scalar_one())


def test_admin_retry_needs_notify_manage_in_the_jurisdiction_and_is_audited(
    kernel: Any, users: Any, client: Any, app: Any, login: Any
) -> None:
    from starlette.testclient import TestClient

    worker = users.make("grid_worker", "450107")
    mid = _dead_message(kernel, worker.id)
    # No notify.manage: refused.
    login(role="county_staff", node="450107")
    assert client.get("/admin/notifications").status_code == 403
    token = users.csrf(client)
    assert client.post(f"/admin/notifications/{mid}/retry", headers={"X-CSRF-Token": token}).status_code == 403
    # An administrator of another city neither sees nor retries it.
    with TestClient(app) as elsewhere:
        users.login(elsewhere, users.make("system_admin", "4502").username)
        assert "没有未送达的通知" in elsewhere.get("/admin/notifications").text
        other_token = users.csrf(elsewhere)
        refused = elsewhere.post(f"/admin/notifications/{mid}/retry", headers={"X-CSRF-Token": other_token})
        assert refused.status_code == 403
    assert rows(kernel)[-1].status == "dead"
    # The administrator of the worker's city does.
    with TestClient(app) as admin:
        users.login(admin, users.make("system_admin", "4501").username)
        page = admin.get("/admin/notifications?status=dead")
        assert f">{mid}<" in page.text and worker.username in page.text
        assert "通知投递" in admin.get("/grid/").text  # in the administrator's menu
        done = admin.post(f"/admin/notifications/{mid}/retry", headers={"X-CSRF-Token": users.csrf(admin)})
        assert done.status_code == 200
        assert "没有未送达的通知" in done.text
    # Back to pending with a fresh count, and delivered at once (the in-app channel).
    assert runtime(kernel).dispatcher.wait_idle(10)
    row = rows(kernel)[-1]
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, "")
    with kernel.db.read() as s:
        [entry] = search(s, action="notify.retry")
    assert entry.object_id == str(mid) and entry.object_type == "notify_message"
    assert "通知投递" not in client.get("/grid/").text  # not in the county staff's menu


# --- CLI ---------------------------------------------------------------------------------------------


def test_cli_delivers_lists_retries_and_sends_a_test_message(
    make_kernel: Any, users: Any, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    k = sms_kernel(make_kernel, gateway, max_attempts=1)
    obj = Context()
    obj.__dict__["kernel"] = k
    monkeypatch.setattr("yiwang.cli.main._ready", lambda kernel: None)
    runner = CliRunner()
    u = users.make("grid_worker", "450107")
    contact(k, u, mobile=MOBILE)
    gateway.statuses = [500, 200]
    send(k, [u.id])
    result = runner.invoke(cli, ["notify", "deliver"], obj=obj)
    assert result.exit_code == 0 and "放弃 1" in result.output, result.output
    listed = runner.invoke(cli, ["notify", "list", "--failed"], obj=obj)
    assert "已放弃" in listed.output and u.username in listed.output and MOBILE not in listed.output
    assert isinstance(runner.invoke(cli, ["notify", "retry"], obj=obj).exception, ValidationError)
    retried = runner.invoke(cli, ["notify", "retry", "--all-failed"], obj=obj)
    assert "已将 1 条通知恢复为待发送" in retried.output, retried.output
    assert "已发送 1" in runner.invoke(cli, ["notify", "deliver"], obj=obj).output
    tested = runner.invoke(cli, ["notify", "test", "--user", u.username, "--channel", "sms_http"], obj=obj)
    assert tested.exit_code == 0 and "已发送" in tested.output, tested.output
    assert gateway.texts()[-1].startswith("一网测试消息")
    refused = runner.invoke(cli, ["notify", "test", "--user", u.username, "--channel", "smtp"], obj=obj)
    assert isinstance(refused.exception, ValidationError) and "未启用" in str(refused.exception)
    with k.db.read() as s:
        assert [e.action for e in search(s, action="notify.*")] == ["notify.test", "notify.retry"]


# --- user addresses ------------------------------------------------------------------------------------


def test_user_form_validates_and_stores_the_notification_addresses(
    kernel: Any, users: Any, client: Any, login: Any
) -> None:
    login(role="system_admin", node="45")
    token = users.csrf(client, "/admin/users/new")
    form = {"username": "lisi", "display_name": "李四", "role": "grid_worker", "node": "450107",
            "email": "not-an-address", "mobile": "12345", "csrf_token": token}  # fmt: skip
    users.grid.node("450107")
    bad = client.post("/admin/users/new", data=form)
    assert bad.status_code == 400
    assert "电子邮箱格式不正确" in bad.text and "手机号码应为 11 位" in bad.text
    good = client.post("/admin/users/new", data={**form, "email": "Li.Si@Example.GOV.cn", "mobile": "138 1234 5678"})
    assert good.status_code == 200, good.text[:500]
    with kernel.db.read() as s:
        user = s.execute(select(User).where(User.username == "lisi")).scalar_one()  # type: ignore[arg-type]
    assert (user.email, user.mobile) == ("Li.Si@example.gov.cn", MOBILE)
    detail = client.get(f"/admin/users/{user.id}")
    assert "138****5678" in detail.text and MOBILE not in detail.text and "L***@example.gov.cn" in detail.text
    changed = client.post(
        f"/admin/users/{user.id}/contact", data={"clear_email": "1", "mobile": "", "csrf_token": token}
    )
    assert changed.status_code == 200 and "联系方式已更新" in changed.text
    with kernel.db.read() as s:
        again = s.get(User, user.id)
    assert again is not None and (again.email, again.mobile) == (None, MOBILE)
    with kernel.db.read() as s:
        [entry] = search(s, action="admin.user.contact")
    assert json.loads(entry.detail) == {"changed": ["email"]} and "example" not in entry.detail
    assert re.search(r"手机号码应为", client.post(
        f"/admin/users/{user.id}/contact", data={"mobile": "10000000000", "csrf_token": token}
    ).text)  # fmt: skip
