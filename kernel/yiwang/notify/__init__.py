"""Notifications (通知): an outbox table and pluggable delivery drivers (docs/notifications.md).

Queue with ``queue(session, kernel, user_ids=…, subject=…, body=…)`` in the unit of work of the
change being reported: rows are written in that transaction and delivered after it commits,
in the background; a driver that fails never blocks or undoes the change. ``deliver_due`` is
the periodic job that retries failures (exponential backoff) and catches up after downtime.
Drivers are classes in the entry-point group ``yiwang.notifiers`` (``Notifier``).
"""

from __future__ import annotations

from yiwang.notify.drivers import (
    DeliveryError,
    Notifier,
    OutboundMessage,
    PermanentFailure,
    installed_drivers,
)
from yiwang.notify.models import DEAD, FAILED, PENDING, SENT, NotifyMessage
from yiwang.notify.outbox import (
    INBOX,
    DeliveryReport,
    deliver_due,
    deliver_ids,
    deliver_job,
    mark_all_read,
    mark_read,
    queue,
    queue_address,
    retry,
    unread_count,
)
from yiwang.notify.worker import stop

#: What a driver's ``send`` receives (the plugin API calls it ``Message``).
Message = OutboundMessage

__all__ = [
    "DEAD",
    "DeliveryError",
    "DeliveryReport",
    "FAILED",
    "INBOX",
    "Message",
    "Notifier",
    "NotifyMessage",
    "OutboundMessage",
    "PENDING",
    "PermanentFailure",
    "SENT",
    "deliver_due",
    "deliver_ids",
    "deliver_job",
    "installed_drivers",
    "mark_all_read",
    "mark_read",
    "queue",
    "queue_address",
    "retry",
    "stop",
    "unread_count",
]
