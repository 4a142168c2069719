"""The blob store: content-addressed files under ``<files path>/ab/cd/abcd…`` (the sha256).

Writes are atomic (a temporary file in the same folder, fsync, rename, fsync of the folder), so
a reader or a crash sees the whole blob or none. The same bytes are stored once, however often
they are uploaded. A blob nobody references any more (its transaction rolled back) is removed
by ``collect_garbage`` once it is older than a grace period; writing a blob that already exists
refreshes its time, so an upload in progress is never collected under it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_SHA = re.compile(r"[0-9a-f]{64}")
TEMP_PREFIX = ".tmp-"
LOCK_NAME = ".lock"
_CHUNK = 1024 * 1024


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Blobs under ``root``.

    Parameters
    ----------
    root: the files folder (``[files] path``); created on first write.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if not _SHA.fullmatch(sha256):  # a row's value never becomes an arbitrary path
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its sha256."""
        sha = sha256_of(data)
        path = self.path_for(sha)
        with self.lock(exclusive=False):  # garbage collection waits; stores run side by side
            if path.is_file() and path.stat().st_size == len(data) and self.digest(path) == sha:
                os.utime(path)  # restart the grace period: a row is about to reference it
                return sha
            self._write(path, data)
        return sha

    def _write(self, path: Path, data: bytes) -> None:
        for folder in (path.parent.parent, path.parent):  # each level 0750, not the umask's
            folder.mkdir(exist_ok=True, mode=0o750)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    @contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        """The store's lock (``flock`` on ``<root>/.lock``): stores share it, the collector's
        last look before removing a blob takes it alone."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # releases the lock

    @staticmethod
    def digest(path: Path) -> str:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        return h.hexdigest()

    def blobs(self) -> Iterator[Path]:
        """Every blob file (and leftover temporary file) in the store."""
        if not self.root.is_dir():
            return
        for first in sorted(self.root.iterdir()):
            if not first.is_dir() or len(first.name) != 2:
                continue
            for second in sorted(first.iterdir()):
                if second.is_dir() and len(second.name) == 2:
                    yield from sorted(p for p in second.iterdir() if p.is_file())


@dataclass
class GarbageReport:
    removed: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    #: Unreferenced but younger than the grace period (maybe an upload still in progress).
    young: int = 0
    kept: int = 0


def collect_garbage(
    store: BlobStore,
    referenced: Callable[[list[str]], set[str]],
    *,
    grace_seconds: float,
    dry_run: bool = False,
    now: float | None = None,
) -> GarbageReport:
    """Remove blobs (and stale temporary files) no row references, older than the grace period.

    ``referenced(shas)`` answers which of a batch of sha256 values some row still uses.
    """
    report = GarbageReport()
    cutoff = (time.time() if now is None else now) - grace_seconds
    for batch in _batches(store.blobs(), 500):
        shas = [p.name for p in batch if _SHA.fullmatch(p.name)]
        used = referenced(shas) if shas else set()
        for path in batch:
            if path.name in used:
                report.kept += 1
                continue
            if not (_SHA.fullmatch(path.name) or path.name.startswith(TEMP_PREFIX)):
                continue  # not ours: leave it
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if stat.st_mtime > cutoff:
                report.young += 1
                continue
            if not dry_run and not _remove_if_old(store, path, cutoff):
                report.young += 1
                continue
            report.removed.append(path.name)
            report.freed_bytes += stat.st_size
    return report


def _remove_if_old(store: BlobStore, path: Path, cutoff: float) -> bool:
    """Checked again under the lock: a store may have touched the blob since the first look."""
    with store.lock(exclusive=True):
        try:
            if path.stat().st_mtime > cutoff:
                return False
        except FileNotFoundError:
            return True
        path.unlink(missing_ok=True)
        return True


def _batches(paths: Iterable[Path], size: int) -> Iterator[list[Path]]:
    batch: list[Path] = []
    for p in paths:
        batch.append(p)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # platforms without directory handles
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
