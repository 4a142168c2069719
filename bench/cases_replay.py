"""Benchmark: replay a year of Guangxi's case volume through the engine.

≈ 88,000 cases a year (≈ 240 a day across the province), each with ~10 steps: report, accept,
escalate to the township, accept, dispatch back to the station, take, feedback, verify, close,
rate. Every step goes through ``engine.report`` / ``engine.act`` exactly as a request does
(permission, workflow, routing, clock on the working-day calendar, timeline step, audit record
in the hash chain, rollups, notifications), one unit of work per step, spread over a year of
simulated time so the calendar and the clock see real dates; the ``cases.clock`` job runs once a
simulated hour. The comparator is the raw driver: the same number of rows inserted into a table
of the same width, one transaction per step, in the same run on the same database.

Prints the wall time, steps per second, the raw-insert rate and the ratio, then verifies the
result: every case closed, 10 steps and 10 audit records per case, rollups equal a recount.

    .venv/bin/python bench/cases_replay.py [--backend sqlite|postgresql] [--cases 88000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from machine import cpu_model, load_average  # bench/machine.py (run as a script)
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
STEPS = 10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--cases", type=int, default=88_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="yiwang-replay-"))
    admin = make_url(os.environ.get("YIWANG_TEST_POSTGRESQL", DEFAULT_PG))
    dbname = f"yiwang_replay_{os.getpid()}"
    url = ""
    if args.backend == "postgresql":
        eng = create_engine(admin, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{dbname}"'))
            c.execute(text(f'CREATE DATABASE "{dbname}"'))
        eng.dispose()
        url = admin.set(database=dbname).render_as_string(hide_password=False)
    try:
        result = replay(home, url, args.cases)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if url:
            eng = create_engine(admin, isolation_level="AUTOCOMMIT")
            with eng.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{dbname}"'))
            eng.dispose()
    result |= {"backend": args.backend, "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
               "python": platform.python_version(), "load": load_average()}}  # fmt: skip
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2))


def replay(home: Path, url: str, n: int) -> dict[str, object]:
    from yiwang.audit import Actor
    from yiwang.audit.models import AuditEvent
    from yiwang.cases import clock, engine
    from yiwang.cases.engine import ActionInput, Doer, NewCase
    from yiwang.cases.models import Case
    from yiwang.cases.routing import holder_at, parent_holder
    from yiwang.db import migrate
    from yiwang.grid.demo import build_demo_net
    from yiwang.grid.levels import Level
    from yiwang.grid.models import Node
    from yiwang.kernel import Kernel
    from yiwang.keys import ensure_keys
    from yiwang.settings import load_settings
    from yiwang.stats.recount import recount

    overrides: dict[str, object] = {"security": {"secret_key": "bench-" + "x" * 40},
                                    "notify": {"deliver_on_commit": False}, "jobs": {"run_in_app": False}}  # fmt: skip
    if url:
        overrides["database"] = {"url": url}
    settings = load_settings({"YIWANG_HOME": str(home)}, overrides=overrides)
    ensure_keys(settings)
    kernel = Kernel(settings)
    migrate.upgrade(kernel.db, kernel.host)
    kernel.sync_declarations()
    with kernel.db.write() as s:
        build_demo_net(kernel, s, scale="small", seed=2026)
    with kernel.db.read() as s:
        grids = [(gid, path) for gid, path in s.execute(select(Node.id, Node.path).where(Node.level == Level.GRID))]  # type: ignore[call-overload]
        plans = {}
        for gid, path in grids:
            station = holder_at(s, path, Level.COMMUNITY)
            centre = parent_holder(s, station) if station else None
            if station and centre and station.level == Level.COMMUNITY:
                plans[gid] = station.id
    usable = [g for g in grids if g[0] in plans]
    doer = Doer(Actor.system("replay"), None, "回放")
    rng = random.Random(2026)
    start = datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
    gap = timedelta(days=365) / n
    flow = [("accept", {}), ("escalate", {"opinion": "上报街道"}), ("accept", {}), ("dispatch", None),
            ("take", {}), ("feedback", {"opinion": "已处置"}), ("verify_pass", {}), ("close", {}),
            ("rate", {"fields": {"rating": "5"}})]  # fmt: skip
    steps = 0
    next_tick = start
    t0 = time.perf_counter()
    for i in range(n):
        at = start + gap * i
        gid, _ = usable[rng.randrange(len(usable))]
        with kernel.db.write() as s:
            case, _ = engine.report(kernel, s, doer, NewCase(case_type="public_facility", title=f"回放事件{i}",
                                                             node_id=gid, channel="phone"), now=at)  # fmt: skip
            case_id = int(case.id or 0)
        steps += 1
        for k, (action, given) in enumerate(flow):
            when = at + timedelta(hours=2 * (k + 1))
            payload = given if given is not None else {"target_org": plans[gid]}
            with kernel.db.write() as s:
                engine.act(kernel, s, doer, case_id, action, ActionInput(**payload), version=None, now=when)
            steps += 1
        if at >= next_tick:
            clock.run_clock(kernel, at)
            next_tick = at + timedelta(hours=1)
        if i and i % 5000 == 0:
            rate = steps / (time.perf_counter() - t0)
            print(f"  {i} 件, {steps} 步, {rate:.0f} 步/秒", flush=True)
    elapsed = time.perf_counter() - t0
    # Raw driver comparator: the same number of one-row transactions into a table of a step's width.
    raw_rate = _raw_rate(kernel, min(steps, 20_000))
    with kernel.db.read() as s:
        closed = s.execute(select(func.count()).select_from(Case).where(Case.state == "closed")).scalar_one()  # type: ignore[arg-type]
        audited = s.execute(select(func.count()).select_from(AuditEvent).where(AuditEvent.object_type == "case")).scalar_one()  # type: ignore[arg-type]
    with kernel.db.write() as s:
        wrong = recount(kernel, s, check=True, indicators=["cases.state"])
    kernel.close()
    kernel.db.dispose()
    return {
        "cases": n, "steps": steps, "seconds": round(elapsed, 1), "steps_per_s": round(steps / elapsed, 1),
        "raw_one_row_tx_per_s": round(raw_rate, 1), "ratio_to_raw": round(steps / elapsed / raw_rate, 3),
        "closed": closed, "audit_records": audited, "rollup_differences": len(wrong),
        "ok": closed == n and audited >= n * STEPS and not wrong,
    }  # fmt: skip


def _raw_rate(kernel: object, rows: int) -> float:
    db = kernel.db  # type: ignore[attr-defined]
    key = "INTEGER PRIMARY KEY" if db.backend == "sqlite" else "SERIAL PRIMARY KEY"
    with db.engine.begin() as c:
        c.execute(text(f"CREATE TABLE bench_raw (id {key}, case_id INTEGER, seq INTEGER, "
                       "action VARCHAR(40), opinion TEXT, data TEXT, at VARCHAR(40))"))  # fmt: skip
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        sqlite = db.backend == "sqlite"
        mark = "?" if sqlite else "%s"
        sql = f"INSERT INTO bench_raw (case_id, seq, action, opinion, data, at) VALUES ({', '.join([mark] * 6)})"
        t0 = time.perf_counter()
        for i in range(rows):
            if sqlite:
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(sql, (i // 10, i % 10, "accept", "已处置", "{}", "2025-01-01T00:00:00Z"))
            raw.commit()
        return rows / (time.perf_counter() - t0)
    finally:
        raw.close()


if __name__ == "__main__":
    main()
