"""Stored files (附件): photos, documents and voice notes attached to cases and module records
(docs/files.md).

``store_file`` checks a file by its content, re-encodes images without metadata, writes the
bytes to the content-addressed blob store and adds a ``StoredFile`` row to the caller's session
(or in two steps: ``prepare_file`` before the transaction, ``attach_file`` inside it);
``file_response`` serves one (after the caller's permission check); ``files_of``/``get_file``
find them; ``yiwang files gc|check`` keep the store tidy and verified.
"""

from __future__ import annotations

from yiwang.files.errors import FileRejected
from yiwang.files.models import StoredFile
from yiwang.files.serve import file_response
from yiwang.files.store import (
    PreparedFile,
    attach_file,
    files_of,
    get_file,
    prepare_file,
    store_file,
)
from yiwang.files.types import TYPES, FileType

__all__ = [
    "FileRejected",
    "FileType",
    "PreparedFile",
    "StoredFile",
    "TYPES",
    "attach_file",
    "file_response",
    "files_of",
    "get_file",
    "prepare_file",
    "store_file",
]
