"""Tables of the audit trail: the chained records, the signed checkpoints and the chain head.

``audit_event.id`` is assigned by the chain (last id + 1 under the head lock), not by a
sequence, so ids are gapless and id order is chain order. Nothing here references other tables:
an audit record outlives the user, node or object it names.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, Text
from sqlmodel import Field, SQLModel

#: 64-bit ids on PostgreSQL; SQLite keeps its rowid alias (INTEGER PRIMARY KEY is 64-bit there).
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")

#: ``prev_hash`` of the first record of a fresh chain.
GENESIS_HASH = "0" * 64


class AuditEvent(SQLModel, table=True):
    """One audited act. ``hash`` chains it to the previous record (see ``docs/audit.md``)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_time", "time"),
        Index("ix_audit_event_username", "username"),
        Index("ix_audit_event_action", "action"),
        Index("ix_audit_event_object", "object_type", "object_id"),
    )

    id: int = Field(sa_column=Column(ID_TYPE, primary_key=True, autoincrement=False))
    time: datetime
    user_id: int | None = None
    username: str = Field(default="", max_length=150)
    role: str = Field(default="", max_length=60)
    node_id: int | None = None
    action: str = Field(max_length=80)
    object_type: str = Field(default="", max_length=60)
    object_id: str = Field(default="", max_length=100)
    result: str = Field(default="ok", max_length=10)
    client_ip: str = Field(default="", max_length=45)
    request_id: str = Field(default="", max_length=64)
    purpose: str = Field(default="", max_length=200)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement "the chain had ``count`` records, ``first_id``…``last_id``, ending in
    ``last_hash``, at ``time``". Also appended to the checkpoint log outside the database.

    ``kind``: ``auto`` / ``manual``, or ``purge`` — the boundary of a purge, the new genesis.
    """

    __tablename__ = "audit_checkpoint"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    kind: str = Field(max_length=10)
    time: datetime
    first_id: int = Field(sa_column=Column(ID_TYPE, nullable=False))
    last_id: int = Field(sa_column=Column(ID_TYPE, nullable=False))
    last_hash: str = Field(max_length=64)
    count: int = Field(sa_column=Column(ID_TYPE, nullable=False))
    key_id: str = Field(max_length=16)
    signature: str = Field(max_length=100)


class AuditHead(SQLModel, table=True):
    """The one-row head of the chain (``id`` = 1): the row locked to append, and a cache of the
    last record. Recreated from the last record when missing."""

    __tablename__ = "audit_head"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    last_id: int = Field(sa_column=Column(ID_TYPE, nullable=False))
    last_hash: str = Field(max_length=64)
