"""Delivery drivers (通知通道): the contract, discovery, and the four shipped drivers.

A driver is a class registered in the entry-point group ``yiwang.notifiers`` (the entry-point
name is the channel name). It is built once per kernel with the deployment's ``Settings`` and
its ``send`` is called for each message from a delivery worker thread, outside any database
transaction. ``send`` returns when the message is handed over and raises on failure: any
exception means "failed, retry later"; ``PermanentFailure`` means "give up now".
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from yiwang.errors import SettingsError

if TYPE_CHECKING:
    from yiwang.settings import Settings

GROUP = "yiwang.notifiers"
log = logging.getLogger("yiwang.notify")


class DeliveryError(Exception):
    """An expected failure (server down, gateway refused), worth retrying. Its text is stored
    and shown to administrators as is: Chinese, short, without addresses (the kernel masks
    any that slip in). Any other exception is recorded as ``<class>: <text>``."""


class PermanentFailure(DeliveryError):
    """Retrying cannot help (address refused): the message becomes ``dead`` at once."""


@dataclass(frozen=True)
class OutboundMessage:
    """One message as a driver sees it; the address is resolved at send time.

    Parameters
    ----------
    id: the outbox row's id (stable across retries; usable as an idempotency key).
    channel: the driver's name.
    user_id: the recipient's account, or None for a raw address.
    subject, body: the text (Chinese); ``body`` is plain text.
    link: relative URL of the object (``/cases/42``); ``url`` is it made absolute with
        ``notify.base_url`` (equal to ``link`` when no base URL is set).
    event, ref_type, ref_id: what caused it (``cases.dispatch``, ``case``, 42).
    attempt: 1 for the first try, 2 for the first retry…
    address: the e-mail address or mobile number the driver asked for (``address_kind``),
        decrypted just now; "" for drivers that need none. Never log it.
    """

    id: int
    channel: str
    user_id: int | None
    subject: str
    body: str
    link: str = ""
    url: str = ""
    event: str = ""
    ref_type: str = ""
    ref_id: int | None = None
    attempt: int = 1
    address: str = field(default="", repr=False)


@runtime_checkable
class Notifier(Protocol):
    """What a driver class provides.

    ``name``: the channel name (equal to its entry-point name). ``title``: Chinese name shown
    to administrators. ``address_kind``: ``"email"``, ``"phone"`` or ``""`` — which address the
    kernel resolves into ``OutboundMessage.address`` (a user without one: the message is
    ``dead`` without calling ``send``). The constructor takes the ``Settings``.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    address_kind: ClassVar[str]

    def send(self, message: OutboundMessage) -> None:
        """Hand the message over; raise on failure (``PermanentFailure``: do not retry)."""


def installed_drivers() -> dict[str, str]:
    """Channel name → entry-point target of every installed driver (nothing imported)."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def load_drivers(settings: Settings) -> dict[str, Notifier]:
    """The drivers of ``settings.notify.channels``, built with ``settings``.

    Raises SettingsError naming the channel when one is not installed or fails to load.
    """
    from stevedore import ExtensionManager

    wanted = settings.notify.channels
    failures: dict[str, str] = {}

    def failed(_manager: Any, entrypoint: EntryPoint, exc: BaseException) -> None:
        failures[entrypoint.name] = f"{type(exc).__name__}: {exc}"

    manager: ExtensionManager[Any] = ExtensionManager(GROUP, on_load_failure_callback=failed)
    found = {ext.name: ext.plugin for ext in manager if ext.name in wanted}
    out: dict[str, Notifier] = {}
    for name in wanted:
        if name in failures:
            raise SettingsError(f"通知通道 {name} 加载失败: {failures[name]}")
        if name not in found:
            raise SettingsError(
                f"通知通道 {name} 未安装（已安装: {', '.join(sorted(manager.names())) or '无'}）"
            )
        driver = found[name](settings)
        if not isinstance(driver, Notifier) or driver.name != name:
            raise SettingsError(f"通知通道 {name} 的驱动不符合约定（name/title/address_kind/send）")
        out[name] = driver
    return out


# --- the shipped drivers -------------------------------------------------------------------------


class OutboxDriver:
    """站内消息: the row itself is the message, shown on 我的消息; sending only marks it sent."""

    name: ClassVar[str] = "outbox"
    title: ClassVar[str] = "站内消息"
    address_kind: ClassVar[str] = ""

    def __init__(self, settings: Settings) -> None:
        del settings

    def send(self, message: OutboundMessage) -> None:
        return None


class LogDriver:
    """One line on the ``yiwang.notify`` logger: user id, event and subject — never an address
    (identity and mobile numbers in the subject are masked)."""

    name: ClassVar[str] = "log"
    title: ClassVar[str] = "日志"
    address_kind: ClassVar[str] = ""

    def __init__(self, settings: Settings) -> None:
        del settings

    def send(self, message: OutboundMessage) -> None:
        from yiwang.privacy.masking import mask_text

        log.info(
            "通知 #%s 用户 %s 事件 %s: %s",
            message.id, message.user_id if message.user_id is not None else "-",
            message.event or "-", mask_text(message.subject),
        )  # fmt: skip


def _text(message: OutboundMessage) -> str:
    return message.body + (f"\n\n{message.url}" if message.url else "")


class SmtpDriver:
    """邮件: ``smtplib`` to the server of ``[notify.smtp]``, to the user's e-mail address."""

    name: ClassVar[str] = "smtp"
    title: ClassVar[str] = "电子邮件"
    address_kind: ClassVar[str] = "email"

    def __init__(self, settings: Settings) -> None:
        self.config = settings.notify.smtp
        self.site = settings.site_name

    def compose(self, message: OutboundMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.config.sender
        mail["To"] = message.address
        mail["Message-ID"] = make_msgid(f"yiwang-notify-{message.id}")
        mail.set_content(_text(message) + f"\n\n—— {self.site}\n")
        return mail

    def send(self, message: OutboundMessage) -> None:
        c = self.config
        mail = self.compose(message)
        context = ssl.create_default_context()
        try:
            smtp: smtplib.SMTP = (
                smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_seconds, context=context)
                if c.ssl
                else smtplib.SMTP(c.host, c.port, timeout=c.timeout_seconds)
            )
        except OSError as exc:
            raise DeliveryError(f"无法连接邮件服务器 {c.host}:{c.port}: {exc}") from None
        try:
            with smtp:
                if c.starttls:
                    smtp.starttls(context=context)
                if c.user:
                    smtp.login(c.user, c.password)
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused:
            raise PermanentFailure("邮件服务器拒收该收件地址") from None
        except smtplib.SMTPAuthenticationError:
            raise DeliveryError("邮件服务器拒绝登录（请检查 notify.smtp.user/password）") from None
        except TimeoutError:
            raise DeliveryError(f"邮件服务器 {c.timeout_seconds:g} 秒内未响应") from None
        except OSError as exc:  # SMTPException is an OSError too
            raise DeliveryError(f"邮件发送失败: {type(exc).__name__}: {exc}") from None


class SmsHttpDriver:
    """短信: POST ``{"phone", "text", "template"?}`` as JSON to the gateway of
    ``[notify.sms_http]`` with a bearer token; any 2xx is success."""

    name: ClassVar[str] = "sms_http"
    title: ClassVar[str] = "短信"
    address_kind: ClassVar[str] = "phone"

    def __init__(self, settings: Settings) -> None:
        self.config = settings.notify.sms_http

    def payload(self, message: OutboundMessage) -> dict[str, str]:
        body: dict[str, str] = {"phone": message.address, "text": f"{message.subject}：{_text(message)}"}
        if self.config.template:
            body["template"] = self.config.template
        return body

    def send(self, message: OutboundMessage) -> None:
        c = self.config
        request = urllib.request.Request(
            c.url,
            data=json.dumps(self.payload(message), ensure_ascii=False).encode("utf-8"),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Authorization": f"Bearer {c.token}",
                "Idempotency-Key": f"yiwang-notify-{message.id}",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=c.timeout_seconds) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except TimeoutError:
            raise DeliveryError(f"短信网关 {c.timeout_seconds:g} 秒内未响应") from None
        except urllib.error.URLError as exc:
            raise DeliveryError(f"短信网关不可达: {exc.reason}") from None
        except OSError as exc:  # the connection dropped mid-answer
            raise DeliveryError(f"短信网关连接中断: {type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"短信网关返回 HTTP {status}")


__all__ = [
    "GROUP",
    "DeliveryError",
    "LogDriver",
    "Notifier",
    "OutboundMessage",
    "OutboxDriver",
    "PermanentFailure",
    "SmsHttpDriver",
    "SmtpDriver",
    "installed_drivers",
    "load_drivers",
]
