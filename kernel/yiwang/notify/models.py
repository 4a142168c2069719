"""The outbox table: one row per message per channel, from queueing to delivery."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from yiwang.grid.models import utcnow
from yiwang.privacy.fields import sensitive_field

#: ``status`` values: waiting, handed over, failed and to be retried, given up.
PENDING, SENT, FAILED, DEAD = "pending", "sent", "failed", "dead"
STATUS_LABELS = {PENDING: "待发送", SENT: "已发送", FAILED: "失败待重试", DEAD: "已放弃"}


class NotifyMessage(SQLModel, table=True):
    """A notification (通知) to one user — or one raw address — over one channel.

    Queued in the transaction of the change it reports, so only a committed change notifies;
    delivered afterwards by a worker that claims it (``lease_until``). Channel ``outbox`` rows
    are also the in-app messages (站内消息) of 我的消息 (``read_at``).
    """

    __tablename__ = "notify_message"
    __table_args__ = (
        Index("ix_notify_message_due", "status", "next_attempt_at"),
        Index("ix_notify_message_inbox", "user_id", "channel", "read_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: The recipient; None for a raw address (a citizen who is not a user).
    user_id: int | None = Field(default=None, foreign_key="auth_user.id")
    #: A raw e-mail address or mobile number when there is no user; encrypted at rest.
    address: str | None = sensitive_field("other", "通知收件地址", default=None)
    channel: str = Field(max_length=40)
    subject: str = Field(max_length=200)
    body: str = Field(default="", max_length=2000)
    #: Relative URL of the object the message is about.
    link: str = Field(default="", max_length=300)
    #: What caused it, e.g. ``cases.dispatch``.
    event: str = Field(default="", max_length=80)
    ref_type: str = Field(default="", max_length=60)
    ref_id: int | None = None
    status: str = Field(default=PENDING, max_length=10)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    #: Why the last attempt failed: short, and never an address.
    last_error: str = Field(default="", max_length=300)
    #: Claimed by a worker until then; doubles as the claim's token.
    lease_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    #: In-app messages: when the user marked it read.
    read_at: datetime | None = None
