"""Housekeeping: collect unreferenced blobs, verify every row's blob, follow subtree moves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import Session

from yiwang.audit.records import Actor
from yiwang.files.blobs import BlobStore, GarbageReport, collect_garbage
from yiwang.files.models import StoredFile
from yiwang.files.store import blob_store

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

FILE = StoredFile.__table__  # type: ignore[attr-defined]


def gc(
    kernel: Kernel, *, grace_hours: float = 24, dry_run: bool = False, actor: Actor | None = None
) -> GarbageReport:
    """Remove blobs no row references that are older than ``grace_hours`` (a transaction may
    still be about to commit a younger one). Removals are audited (``files.gc``)."""
    from yiwang.audit.records import record_now

    def referenced(shas: list[str]) -> set[str]:
        with kernel.db.read() as s:
            return set(s.execute(select(FILE.c.sha256).where(FILE.c.sha256.in_(shas))).scalars())

    report = collect_garbage(
        blob_store(kernel), referenced, grace_seconds=grace_hours * 3600, dry_run=dry_run
    )
    if report.removed and not dry_run:
        record_now(
            kernel.db, "files.gc", actor=actor or Actor.system(), object_type="file",
            detail={"removed": len(report.removed), "bytes": report.freed_bytes,
                    "grace_hours": grace_hours},
        )  # fmt: skip
    return report


def gc_job(kernel: Kernel, now: datetime) -> int:
    """The periodic job ``files.gc`` (``run(kernel, now)``): gc with the default grace."""
    return len(gc(kernel, actor=Actor.system("job:files.gc")).removed)


@dataclass(frozen=True)
class BadBlob:
    file_id: int
    name: str
    problem: str

    def describe(self) -> str:
        return f"附件 #{self.file_id}（{self.name}）: {self.problem}"


def verify(kernel: Kernel) -> tuple[int, list[BadBlob]]:
    """Check that every row's blob exists with its size and sha256; returns (rows, problems).
    Each blob is read once however many rows share it."""
    store = blob_store(kernel)
    verdict: dict[str, str] = {}
    bad: list[BadBlob] = []
    rows = 0
    with kernel.db.read() as s:
        query = select(FILE.c.id, FILE.c.sha256, FILE.c.size, FILE.c.original_name).order_by(FILE.c.id)
        for file_id, sha, size, name in s.execute(query.execution_options(yield_per=1000)):
            rows += 1
            if sha not in verdict:
                verdict[sha] = _problem(store, sha, size)
            if verdict[sha]:
                bad.append(BadBlob(file_id, name, verdict[sha]))
    return rows, bad


def _problem(store: BlobStore, sha: str, size: int) -> str:
    try:
        path = store.path_for(sha)
    except ValueError:
        return f"sha256 值无效: {sha!r}"
    if not path.is_file():
        return f"文件缺失（{path}）"
    if path.stat().st_size != size:
        return f"大小不符（记录 {size} 字节，实际 {path.stat().st_size} 字节）"
    if store.digest(path) != sha:
        return "内容已损坏（sha256 不符）"
    return ""


def node_moved(session: Session, old_path: str, new_path: str) -> None:
    """Re-path the files of a moved subtree (the kernel's ``yiwang_node_moved``)."""
    from yiwang.grid.tree import move_paths

    move_paths(session, FILE.c.node_path, old_path, new_path)
