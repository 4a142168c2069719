"""A scratch site with the population plugin for bench/population_*.py: a kernel on a fresh
SQLite file or PostgreSQL database, the demo net built, torn down afterwards."""

from __future__ import annotations

import math
import os
import platform
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from machine import cpu_model, load_average  # bench/machine.py (run as a script)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PssSampler:
    """The peak, over a run, of the proportional set size of this process and its children
    (``/proc/*/smaps_rollup``: shared pages split between the processes sharing them), sampled
    every ``interval`` seconds on a thread — the memory of an import that runs a worker process,
    without counting the libraries both map twice. ``peak_mb`` is 0 where /proc has no PSS."""

    def __init__(self, interval: float = 0.2) -> None:
        import threading

        self.interval, self.peak_mb = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _pss_kb(pid: int | str) -> int:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    @staticmethod
    def _children(pid: int) -> list[str]:
        out: list[str] = []
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                out += (task / "children").read_text().split()
            except OSError:
                continue
        return out

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            total = self._pss_kb(me) + sum(self._pss_kb(c) for c in self._children(me))
            self.peak_mb = max(self.peak_mb, total / 1024)


def rss_mb() -> float:
    """Current resident memory (MB), from /proc (0 where unknown)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def machine() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "load": load_average()}  # fmt: skip


@contextmanager
def site(backend: str, *, home: Path | None = None, pg_url: str | None = None,
         net_scale: str = "full", seed: int = 2026, build: bool = True) -> Iterator[Any]:  # fmt: skip
    """A kernel with the population plugin and the demo net (``net_scale``); removed on exit
    unless ``home`` is given. ``build=False`` opens the site already in ``home``."""
    from yiwang.db import migrate
    from yiwang.grid.demo import build_demo_net
    from yiwang.kernel import Kernel
    from yiwang.keys import ensure_keys
    from yiwang.settings import load_settings

    own_home = home is None
    home = Path(tempfile.mkdtemp(prefix="yiwang-pop-")) if home is None else home
    home.mkdir(parents=True, exist_ok=True)
    admin = make_url(pg_url or os.environ.get("YIWANG_BENCH_POSTGRESQL", DEFAULT_PG))
    dbname = f"yiwang_pop_{os.getpid()}"
    overrides: dict[str, Any] = {"security": {"secret_key": "bench-" + "x" * 40},
                                 "notify": {"deliver_on_commit": False}, "jobs": {"run_in_app": False},
                                 "plugins": {"enabled": ["population"]}}  # fmt: skip
    if backend == "postgresql":
        eng = create_engine(admin, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{dbname}"'))
            c.execute(text(f'CREATE DATABASE "{dbname}"'))
        eng.dispose()
        overrides["database"] = {"url": admin.set(database=dbname).render_as_string(hide_password=False)}
    kernel = None
    try:
        settings = load_settings({"YIWANG_HOME": str(home)}, overrides=overrides)
        ensure_keys(settings)
        kernel = Kernel(settings)
        t0 = time.perf_counter()
        if build:
            migrate.upgrade(kernel.db, kernel.host)
            kernel.sync_declarations()
            with kernel.db.write() as s:
                build_demo_net(kernel, s, scale=net_scale, seed=seed)
        kernel.net_seconds = time.perf_counter() - t0  # type: ignore[attr-defined]
        yield kernel
    finally:
        if kernel is not None:
            kernel.close()
            kernel.db.dispose()
        if own_home:
            shutil.rmtree(home, ignore_errors=True)
        if backend == "postgresql":
            eng = create_engine(admin, isolation_level="AUTOCOMMIT")
            with eng.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            eng.dispose()


def analyze(kernel: Any) -> None:
    """``VACUUM ANALYZE`` on PostgreSQL (what autovacuum does soon after a bulk load); nothing
    on SQLite, as a deployment runs nothing."""
    if kernel.db.backend != "postgresql":
        return
    with kernel.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE"))
