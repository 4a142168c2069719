"""The table of stored files (附件): one row per attachment, the bytes in the blob store."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from yiwang.grid.models import PATH_TYPE


def utcnow() -> datetime:
    return datetime.now(UTC)


class StoredFile(SQLModel, table=True):
    """An attachment of some owner (``owner_type`` "case" and the case id; ``owner_ref`` e.g.
    the timeline step it came with).

    The bytes live in the blob store under ``sha256``, shared by every row with the same
    content. ``node_path`` is the owner's node, copied so callers can check scope without a
    join (moved with subtrees). No foreign keys: owners are of many kinds, and a row outlives
    the account that uploaded it.
    """

    __tablename__ = "kernel_file"
    __table_args__ = (
        Index("ix_kernel_file_owner", "owner_type", "owner_id"),
        Index("ix_kernel_file_sha256", "sha256"),
        Index("ix_kernel_file_node_path", "node_path"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64)
    size: int
    #: Decided from the content, never from the name or the client's Content-Type.
    mime: str = Field(max_length=100)
    #: image / document / audio / video
    kind: str = Field(max_length=10)
    original_name: str = Field(max_length=255)
    owner_type: str = Field(max_length=40)
    owner_id: int
    owner_ref: int | None = None
    node_path: str = Field(sa_column=Column(PATH_TYPE, nullable=False))
    #: The uploading user's id (None: the platform itself, an import).
    created_by: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
