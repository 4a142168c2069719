"""Reading the trail: filtered pages for the audit page and a streamed CSV export."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from yiwang.audit.records import EVENT, format_time

#: Largest page ``search`` returns.
MAX_LIMIT = 1000
#: CSV header (Chinese) and the columns it shows, in order.
CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "序号"), ("time", "时间(UTC)"), ("user_id", "用户ID"), ("username", "用户名"),
    ("role", "角色"), ("node_id", "节点ID"), ("action", "操作"), ("object_type", "对象类型"),
    ("object_id", "对象ID"), ("result", "结果"), ("client_ip", "客户端IP"),
    ("request_id", "请求ID"), ("purpose", "用途"), ("detail", "详情"),
    ("prev_hash", "前一哈希"), ("hash", "哈希"),
)  # fmt: skip
RESULT_LABELS = {"ok": "成功", "denied": "拒绝", "failed": "失败"}


@dataclass(frozen=True)
class AuditEntry:
    """One record as read back."""

    id: int
    time: datetime
    user_id: int | None
    username: str
    role: str
    node_id: int | None
    action: str
    object_type: str
    object_id: str
    result: str
    client_ip: str
    request_id: str
    purpose: str
    detail: str
    prev_hash: str
    hash: str

    @property
    def detail_data(self) -> Any:
        """``detail`` parsed (None when empty)."""
        return json.loads(self.detail) if self.detail else None

    @property
    def result_label(self) -> str:
        return RESULT_LABELS.get(self.result, self.result)


def _conditions(
    *,
    user: str | int | None = None,
    action: str | None = None,
    result: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    node_id: int | None = None,
) -> list[ColumnElement[bool]]:
    c = EVENT.c
    out: list[ColumnElement[bool]] = []
    if user is not None and user != "":
        out.append(c.user_id == user if isinstance(user, int) else c.username == user)
    if action:
        # "grid.*" (or "grid.") selects a family of actions.
        if action.endswith("*") or action.endswith("."):
            prefix = action.rstrip("*")
            out.append(c.action.startswith(prefix, autoescape=True))
        else:
            out.append(c.action == action)
    if result:
        out.append(c.result == result)
    if since is not None:
        out.append(c.time >= since)
    if until is not None:
        out.append(c.time < until)
    if object_type:
        out.append(c.object_type == object_type)
    if object_id:
        out.append(c.object_id == str(object_id))
    if node_id is not None:
        out.append(c.node_id == node_id)
    return out


def _select(scope: ColumnElement[bool] | None = None, **filters: Any) -> Select[Any]:
    """Filtered select; ``scope`` is an extra condition (the viewer's data scope)."""
    stmt = select(*(EVENT.c[name] for name, _ in CSV_COLUMNS)).where(*_conditions(**filters))
    return stmt if scope is None else stmt.where(scope)


def search(
    session: Session,
    *,
    user: str | int | None = None,
    action: str | None = None,
    result: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    node_id: int | None = None,
    scope: ColumnElement[bool] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[AuditEntry]:
    """Records matching every given filter, newest first.

    ``user``: a username (str) or user id (int); ``action``: exact, or ``"grid.*"`` for a
    family; ``since`` inclusive, ``until`` exclusive (UTC).
    """
    stmt = _select(
        scope=scope, user=user, action=action, result=result, since=since, until=until,
        object_type=object_type, object_id=object_id, node_id=node_id,
    )  # fmt: skip
    stmt = stmt.order_by(EVENT.c.id.desc()).limit(max(0, min(limit, MAX_LIMIT))).offset(max(0, offset))
    return [AuditEntry(**row._mapping) for row in session.connection().execute(stmt)]


def count(session: Session, scope: ColumnElement[bool] | None = None, **filters: Any) -> int:
    """How many records ``search`` would find without ``limit``/``offset``."""
    stmt = select(func.count()).select_from(EVENT).where(*_conditions(**filters))
    if scope is not None:
        stmt = stmt.where(scope)
    return int(session.connection().execute(stmt).scalar_one())


def iter_entries(
    session: Session, scope: ColumnElement[bool] | None = None, **filters: Any
) -> Iterator[AuditEntry]:
    """Every matching record, oldest first, streamed."""
    stmt = _select(scope=scope, **filters).order_by(EVENT.c.id).execution_options(yield_per=2000)
    for row in session.connection().execute(stmt):
        yield AuditEntry(**row._mapping)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_time(value)
    text = str(value)
    # A spreadsheet must not run a cell as a formula (CSV injection).
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def export_csv(session: Session, out: TextIO, **filters: Any) -> int:
    """Write matching records to ``out`` as CSV (Chinese header, oldest first, hashes
    included so the export can be checked against the chain); returns the number of rows.
    Open ``out`` with ``encoding="utf-8-sig", newline=""`` for spreadsheets."""
    writer = csv.writer(out)
    writer.writerow([label for _, label in CSV_COLUMNS])
    n = 0
    for entry in iter_entries(session, **filters):
        writer.writerow([_cell(getattr(entry, name)) for name, _ in CSV_COLUMNS])
        n += 1
    return n
