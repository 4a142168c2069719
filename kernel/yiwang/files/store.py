"""Storing and finding attachments: ``store_file``, ``files_of``, ``get_file``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlmodel import Session

from yiwang.errors import NotFound
from yiwang.files import errors as why
from yiwang.files.blobs import BlobStore
from yiwang.files.errors import FileRejected, Refused
from yiwang.files.images import clean_image
from yiwang.files.models import StoredFile
from yiwang.files.names import clean_name, extension_of
from yiwang.files.sniff import detect
from yiwang.files.types import KNOWN_EXTENSIONS, FileType

if TYPE_CHECKING:
    from yiwang.kernel import Kernel


def blob_store(kernel: Kernel) -> BlobStore:
    """The deployment's blob store (``[files] path``)."""
    return BlobStore(kernel.settings.files.path)


@dataclass(frozen=True)
class PreparedFile:
    """A file checked and in the blob store, not yet attached to anything (``prepare_file``)."""

    name: str
    type: FileType
    sha256: str
    size: int


def prepare_file(kernel: Kernel, *, data: bytes, filename: str) -> PreparedFile:
    """Check ``data`` by content, re-encode an image without metadata and write the bytes to
    the blob store; raises ``FileRejected`` (nothing written) when the file is refused.

    Call it before opening the unit of work that attaches the file: decoding a large photo
    then does not hold the database's write lock (SQLite). Attach within the gc grace period.
    """
    name = clean_name(filename)
    try:
        ftype, stored = _checked(kernel, data, name)
    except Refused as refused:
        raise FileRejected(name or "未命名文件", refused.reason, refused.detail) from None
    if not extension_of(name):
        name = f"{name or 'file'}.{ftype.extensions[0]}"
    sha = blob_store(kernel).put(stored)
    return PreparedFile(name=name, type=ftype, sha256=sha, size=len(stored))


def attach_file(
    session: Session,
    prepared: PreparedFile,
    *,
    owner_type: str,
    owner_id: int,
    node_path: str,
    created_by: int | None,
    owner_ref: int | None = None,
) -> StoredFile:
    """Add the row of a prepared file to ``session`` (flushed, so it has an id)."""
    row = StoredFile(
        sha256=prepared.sha256,
        size=prepared.size,
        mime=prepared.type.mime,
        kind=prepared.type.kind,
        original_name=prepared.name,
        owner_type=owner_type,
        owner_id=owner_id,
        owner_ref=owner_ref,
        node_path=node_path,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return row


def store_file(
    kernel: Kernel,
    session: Session,
    *,
    data: bytes,
    filename: str,
    owner_type: str,
    owner_id: int,
    node_path: str,
    created_by: int | None,
    owner_ref: int | None = None,
) -> StoredFile:
    """Check ``data``, store its bytes and add its row to ``session`` (flushed, so it has an id):
    ``prepare_file`` then ``attach_file``.

    The type is decided by content; images are re-encoded upright without metadata (no GPS);
    the bytes are written to the blob store before the row, so a rolled-back transaction
    leaves only an unreferenced blob (``yiwang files gc`` removes it later). Raises
    ``FileRejected`` (a ValidationError, message in Chinese naming the file) and writes nothing
    when the file is refused.
    """
    prepared = prepare_file(kernel, data=data, filename=filename)
    return attach_file(
        session, prepared, owner_type=owner_type, owner_id=owner_id, node_path=node_path,
        created_by=created_by, owner_ref=owner_ref,
    )  # fmt: skip


def _checked(kernel: Kernel, data: bytes, name: str) -> tuple[FileType, bytes]:
    """The type of ``data`` and the bytes to store; raises ``Refused``. Cheap checks first:
    nothing is decoded beyond the size limits."""
    settings = kernel.settings.files
    if not data:
        raise Refused(why.EMPTY)
    largest = max(settings.max_bytes(kind) for kind in settings.max_mb)
    if len(data) > largest:
        raise Refused(why.TOO_LARGE, f"上限 {max(settings.max_mb.values()):g} MB")
    ext = extension_of(name)
    try:
        ftype = detect(data)
    except Refused as refused:
        if (
            refused.reason == why.TYPE_NOT_ALLOWED
            and ext in KNOWN_EXTENSIONS
            and ext not in refused.extensions
        ):
            # Disguised: named like an accepted type, but the bytes are something else.
            raise Refused(why.MISMATCH, f"扩展名 .{ext}，实际内容：{refused.detail}") from None
        raise
    if ftype.name not in settings.allowed:
        raise Refused(why.TYPE_NOT_ALLOWED, ftype.label)
    if ext and ext not in ftype.extensions:
        raise Refused(why.MISMATCH, f"扩展名 .{ext}，实际内容：{ftype.label}")
    if len(data) > settings.max_bytes(ftype.kind):
        raise Refused(why.TOO_LARGE, f"上限 {settings.max_mb[ftype.kind]:g} MB")
    if ftype.kind == "image":
        return ftype, clean_image(data, ftype)
    return ftype, data


_FILES_OF = (
    select(StoredFile)
    .where(StoredFile.owner_type == bindparam("owner_type"), StoredFile.owner_id == bindparam("owner_id"))  # type: ignore[arg-type]
    .order_by(StoredFile.id)  # type: ignore[arg-type]
)  # built once: every case answer asks


def files_of(session: Session, owner_type: str, owner_id: int) -> list[StoredFile]:
    """The attachments of one owner, oldest first."""
    return list(session.execute(_FILES_OF, {"owner_type": owner_type, "owner_id": owner_id}).scalars())


def get_file(session: Session, file_id: int) -> StoredFile:
    """One attachment by id; ``NotFound`` (附件不存在) otherwise."""
    row = session.get(StoredFile, file_id)
    if row is None:
        raise NotFound(f"附件不存在（编号 {file_id}）")
    return row
