"""Per-user preferences (个人偏好) and saved queries (常用查询) of pages.

A page or plugin remembers a user's choices with ``get_pref(session, user_id, key)`` /
``set_pref(session, user_id, key, value)`` (any JSON value; keys are namespaced by the caller,
e.g. ``"cases.inbox.columns"``). A saved filter is just a page's query string under a name: it
is opened as a URL and the page applies its own scope, so a saved filter can never show more
than the user may see. See docs/plugins/api.md ("Preferences").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Text, UniqueConstraint, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from yiwang.errors import ValidationError
from yiwang.grid.models import utcnow

#: Saved filters one user may keep per page, and the limits of a name and a query.
MAX_SAVED_FILTERS = 20
MAX_FILTER_NAME = 30
MAX_FILTER_QUERY = 1000
#: A value is small (a column list, a page size): a larger one is a bug or an attack.
MAX_VALUE_BYTES = 8000


class UiPref(SQLModel, table=True):
    """One remembered choice of one user (``value`` is JSON)."""

    __tablename__ = "ui_pref"

    user_id: int = Field(foreign_key="auth_user.id", primary_key=True)
    key: str = Field(max_length=80, primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class UiSavedFilter(SQLModel, table=True):
    """A named query string of a page, saved by a user (常用查询)."""

    __tablename__ = "ui_saved_filter"
    __table_args__ = (UniqueConstraint("user_id", "page", "name", name="uq_ui_saved_filter"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="auth_user.id", index=True)
    page: str = Field(max_length=80)
    name: str = Field(max_length=MAX_FILTER_NAME)
    query: str = Field(max_length=MAX_FILTER_QUERY)
    created_at: datetime = Field(default_factory=utcnow)


PREF = UiPref.__table__  # type: ignore[attr-defined]
SAVED = UiSavedFilter.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SavedFilter:
    id: int
    name: str
    query: str
    created_at: datetime


# Read on every page that shows a list: built once (building a select and its cache key costs
# more than running it).
_GET = select(PREF.c.value).where(PREF.c.user_id == bindparam("user_id"), PREF.c.key == bindparam("key"))
_SAVED = (
    select(SAVED.c.id, SAVED.c.name, SAVED.c.query, SAVED.c.created_at)
    .where(SAVED.c.user_id == bindparam("user_id"), SAVED.c.page == bindparam("page"))
    .order_by(SAVED.c.id)
)  # fmt: skip


def get_pref(session: Session, user_id: int, key: str, default: Any = None) -> Any:
    """The value ``user_id`` last set for ``key``, or ``default``."""
    raw = session.execute(_GET, {"user_id": user_id, "key": key}).scalar()
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return default


def set_pref(session: Session, user_id: int, key: str, value: Any) -> None:
    """Remember ``value`` (JSON-serialisable) for ``user_id`` under ``key``; ``None`` forgets it."""
    if not key or len(key) > 80:
        raise ValueError(f"偏好键长度应为 1–80: {key!r}")
    if value is None:
        session.execute(delete(PREF).where(PREF.c.user_id == user_id, PREF.c.key == key))
        return
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) > MAX_VALUE_BYTES:
        raise ValidationError("偏好设置过大")
    now = utcnow()
    changed = session.execute(
        update(PREF).where(PREF.c.user_id == user_id, PREF.c.key == key)
        .values(value=text, updated_at=now)
    )  # fmt: skip
    if changed.rowcount:  # type: ignore[attr-defined]
        return
    try:
        with session.begin_nested():
            session.execute(
                PREF.insert().values(user_id=user_id, key=key, value=text, updated_at=now)
            )
    except IntegrityError:  # set concurrently: the later write wins
        session.execute(
            update(PREF).where(PREF.c.user_id == user_id, PREF.c.key == key)
            .values(value=text, updated_at=now)
        )  # fmt: skip


def saved_filters(session: Session, user_id: int, page: str) -> list[SavedFilter]:
    """The user's saved filters of ``page``, oldest first (the order they were made)."""
    rows = session.execute(_SAVED, {"user_id": user_id, "page": page}).all()
    return [SavedFilter(r.id, r.name, r.query, r.created_at) for r in rows]


def save_filter(session: Session, user_id: int, page: str, name: str, query: str) -> SavedFilter:
    """Save ``query`` under ``name`` for ``user_id`` on ``page``.

    Raises ValidationError (in Chinese) for an empty or long name, a name the user already
    uses on the page, a long query, or more than ``MAX_SAVED_FILTERS`` filters.
    """
    name = " ".join(name.split())
    query = query.strip().lstrip("?")
    problems: list[str] = []
    if not name:
        problems.append("请填写查询名称")
    elif len(name) > MAX_FILTER_NAME:
        problems.append(f"查询名称不能超过 {MAX_FILTER_NAME} 个字")
    if len(query) > MAX_FILTER_QUERY:
        problems.append("查询条件过长，无法保存")
    mine = SAVED.c.user_id == user_id, SAVED.c.page == page
    if name and not problems:
        if session.execute(select(SAVED.c.id).where(*mine, SAVED.c.name == name)).first():
            problems.append(f"已有名为「{name}」的常用查询，请换一个名称")
    count = int(session.execute(select(func.count()).select_from(SAVED).where(*mine)).scalar_one())
    if count >= MAX_SAVED_FILTERS:
        problems.append(f"常用查询最多保存 {MAX_SAVED_FILTERS} 个，请先删除不用的")
    if problems:
        raise ValidationError("无法保存常用查询", problems)
    now = utcnow()
    try:
        with session.begin_nested():
            new_id = session.execute(
                SAVED.insert().values(user_id=user_id, page=page, name=name, query=query, created_at=now)
                .returning(SAVED.c.id)
            ).scalar_one()  # fmt: skip
    except IntegrityError:  # the same name saved concurrently (a double submit)
        raise ValidationError(
            "无法保存常用查询", [f"已有名为「{name}」的常用查询，请换一个名称"]
        ) from None
    return SavedFilter(int(new_id), name, query, now)


def delete_filter(session: Session, user_id: int, filter_id: int) -> SavedFilter | None:
    """Delete the user's own saved filter; ``None`` when they have none with that id (another
    user's filter is not theirs to delete, and is not told apart from a missing one)."""
    row = session.execute(
        select(SAVED.c.id, SAVED.c.name, SAVED.c.query, SAVED.c.created_at)
        .where(SAVED.c.id == filter_id, SAVED.c.user_id == user_id)
    ).first()  # fmt: skip
    if row is None:
        return None
    session.execute(delete(SAVED).where(SAVED.c.id == filter_id, SAVED.c.user_id == user_id))
    return SavedFilter(row.id, row.name, row.query, row.created_at)


__all__ = [
    "MAX_SAVED_FILTERS",
    "SavedFilter",
    "UiPref",
    "UiSavedFilter",
    "delete_filter",
    "get_pref",
    "save_filter",
    "saved_filters",
    "set_pref",
]
