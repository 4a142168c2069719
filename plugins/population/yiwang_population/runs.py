"""Import runs: the uploaded file kept under the site home, the checked plan in
``population_import``, and the confirmed import applied in a background thread.

The import is one unit of work. On SQLite a second writer would wait for it, so the live
progress is kept in memory (``progress``) while it runs and stored in the table when it ends.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from yiwang.api import Actor, Kernel, Node, audit

from yiwang_population import importer
from yiwang_population.models import ImportRun

log = logging.getLogger(__name__)
#: Uploaded files older than this are removed when a new one arrives.
KEEP_SECONDS = 24 * 3600

_live: dict[int, int] = {}
_lock = threading.Lock()


def folder(kernel: Kernel) -> Path:
    path = Path(kernel.settings.home) / "tmp" / "population-import"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_of(kernel: Kernel, run: ImportRun) -> Path:
    return folder(kernel) / f"{run.id}.{run.fmt}"


def clean_old(kernel: Kernel) -> None:
    cutoff = time.time() - KEEP_SECONDS
    for f in folder(kernel).iterdir():
        if f.is_file() and f.stat().st_mtime < cutoff:
            f.unlink(missing_ok=True)


def store_plan(run: ImportRun, plan: importer.Plan) -> None:
    run.total, run.error_count = plan.total, plan.error_count
    run.inserted, run.updated = plan.inserted, plan.updated
    run.unchanged, run.claimed = plan.unchanged, plan.claimed
    warnings = [e.as_dict() | {"warning": True} for e in plan.warnings]
    run.errors = json.dumps([e.as_dict() for e in plan.errors] + warnings, ensure_ascii=False)


def progress(run: ImportRun) -> int:
    """Rows written so far: live while running in this process, else as stored."""
    with _lock:
        return _live.get(run.id or 0, run.done)


def start(
    kernel: Kernel, run_id: int, actor: Actor, allowed: Callable[[str], bool]
) -> threading.Thread:
    """Apply the (already ``running``) import ``run_id`` in a background thread."""
    with _lock:
        _live[run_id] = 0
    t = threading.Thread(target=execute, args=(kernel, run_id, actor, allowed),
                         name=f"population-import-{run_id}", daemon=True)  # fmt: skip
    t.start()
    return t


def execute(kernel: Kernel, run_id: int, actor: Actor, allowed: Callable[[str], bool]) -> None:
    """Apply the import in one unit of work; record done or failed (nothing written)."""

    def report(done: int, total: int) -> None:
        with _lock:
            _live[run_id] = done

    with kernel.db.read() as s:
        run = s.get(ImportRun, run_id)
        assert run is not None
        path, fmt, mode, expected = file_of(kernel, run), run.fmt, run.mode, run.total
    plan: importer.Plan | None = None
    message = ""

    class _Refused(Exception):
        pass

    try:
        with kernel.db.write(bulk=True) as s:
            plan = importer.apply(s, path, fmt, mode=mode, allowed=allowed, actor=actor,
                                  progress=report, expected=expected)  # fmt: skip
            if plan.error_count:
                raise _Refused  # rolls back the rows written before the first failing batch
            audit(s, "population.import", actor=actor, object_type="population_import", object_id=str(run_id),
                  detail={"mode": mode, "format": fmt, "rows": plan.total, "inserted": plan.inserted,
                          "updated": plan.updated, "claimed": plan.claimed, "status": "done"})  # fmt: skip
    except _Refused:
        message = "文件中有错误的行，未导入任何数据"
    except Exception as exc:  # the unit of work rolled back: nothing was written
        plan = None
        message = "导入出错，未导入任何数据；请检查文件后重试"
        # The exception may quote row values: log its type only.
        log.error("population import %s failed: %s", run_id, type(exc).__name__)
    with kernel.db.write() as s:
        run = s.get(ImportRun, run_id)
        assert run is not None
        if plan is not None:
            store_plan(run, plan)
        run.status = "failed" if message else "done"
        run.message = message
        run.done = run.total if not message else 0
        run.finished_at = datetime.now(UTC)
        s.add(run)
        if message:
            audit(s, "population.import", actor=actor, object_type="population_import", object_id=str(run_id),
                  detail={"mode": mode, "format": fmt, "status": "failed",
                          "errors": run.error_count})  # fmt: skip
    with _lock:
        _live.pop(run_id, None)
    if not message:
        path.unlink(missing_ok=True)


def node_of(kernel: Kernel, run: ImportRun) -> Node:
    with kernel.db.read() as s:
        node = s.get(Node, run.node_id)
        assert node is not None
        return node
