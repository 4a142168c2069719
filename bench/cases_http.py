"""Benchmark: case transitions over HTTP with concurrent clients, against a read-only page rate
measured in the same run on the same server.

Sets up a site in a temporary home (``yiwang init``, ``yiwang db upgrade``, the small demo net,
one community's staff member and grid worker), reports the cases to work on through the engine,
then starts ``yiwang serve`` and drives it with ``--clients`` concurrent HTTP clients (phone
tokens, ``Authorization: Bearer``):

* read phase — ``GET /api/cases/{id}`` (case detail with its available actions) on random cases;
* write phase — each client walks its own cases through accept → dispatch (to the grid worker)
  → take → feedback → verify → close, one ``POST /api/cases/{id}/actions/{action}`` per
  transition, each carrying the version it saw (so a lost update would be a 409).

Prints requests per second and p50/p95/p99 latency of both phases, the ratio write/read, every
non-2xx answer by status, and whether the target holds: transitions ≥ 0.4 × the read rate,
p99 ≤ 100 ms, no "database is locked" reaching a client.

    .venv/bin/python bench/cases_http.py [--backend sqlite|postgresql] [--clients 32]
        [--seconds 20] [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
from machine import cpu_model, load_average  # bench/machine.py (run as a script)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
YIWANG = str(ROOT / ".venv" / "bin" / "yiwang")
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "Bench#Grid-2026!"
FLOW = (("station", "accept"), ("station", "dispatch"), ("worker", "take"), ("worker", "feedback"),
        ("station", "verify_pass"), ("station", "close"))  # fmt: skip


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")

    def summary(self) -> dict[str, Any]:
        return {"phase": self.name, "ok": self.ok, "rate": round(self.rate, 1), "p50_ms": round(self.pct(0.5), 2),
                "p95_ms": round(self.pct(0.95), 2), "p99_ms": round(self.pct(0.99), 2),
                "statuses": dict(self.statuses), "errors": dict(self.errors)}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(cmd: list[str], env: dict[str, str]) -> None:
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def setup(backend: str, home: Path, cases: int) -> tuple[dict[str, str], str]:
    env = {**os.environ, "YIWANG_HOME": str(home), "YIWANG_JOBS__RUN_IN_APP": "false"}
    url = ""
    if backend == "postgresql":
        admin = make_url(os.environ.get("YIWANG_TEST_POSTGRESQL", DEFAULT_PG))
        name = f"yiwang_bench_{os.getpid()}"
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        url = admin.set(database=name).render_as_string(hide_password=False)
    run([YIWANG, "init", *(["--database-url", url] if url else []), "--plugins", ""], env)
    run([YIWANG, "db", "upgrade"], env)
    os.environ.update(env)
    from sqlalchemy import select

    from yiwang.audit import Actor
    from yiwang.auth import service
    from yiwang.cases import engine as case_engine
    from yiwang.grid.demo import build_demo_net
    from yiwang.grid.models import Node
    from yiwang.kernel import Kernel
    from yiwang.rbac.models import Assignment
    from yiwang.settings import load_settings

    kernel = Kernel(load_settings(require_site=True))
    kernel.sync_declarations()
    with kernel.db.write() as s:
        build_demo_net(kernel, s, scale="small", seed=2026)
        grid = s.execute(select(Node).where(Node.level == 6).order_by(Node.code).limit(1)).scalar_one()  # type: ignore[arg-type]
        community = s.get(Node, grid.parent_id)
        for name, role, node in (("benchstation", "community_staff", community), ("benchworker", "grid_worker", grid)):
            user = service.create_user(s, kernel.settings.auth, username=name, password=PASSWORD,
                                       display_name=name, must_change_password=False)  # fmt: skip
            s.add(Assignment(user_id=user.id or 0, role=role, node_id=node.id or 0))
        grid_id = grid.id
    doer = case_engine.Doer(Actor.system("bench"), None, "压测")
    for start in range(0, cases, 500):
        with kernel.db.write() as s:
            for i in range(start, min(cases, start + 500)):
                case_engine.report(kernel, s, doer, case_engine.NewCase(
                    case_type="public_facility", title=f"压测事件{i}", node_id=grid_id, channel="platform"))  # fmt: skip
    kernel.close()
    kernel.db.dispose()
    return env, url


async def login(client: httpx.AsyncClient, user: str, device: str) -> dict[str, str]:
    r = await client.post("/api/auth/login", json={"username": user, "password": PASSWORD, "device_id": device})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def note(phase: Phase, r: httpx.Response, started: float) -> None:
    phase.latencies.append(time.perf_counter() - started)
    phase.statuses[r.status_code] += 1
    if r.status_code >= 300:
        text_ = r.text
        phase.errors["database is locked" if "locked" in text_ else text_[:80]] += 1


async def read_phase(base: str, tokens: list[dict[str, str]], ids: list[int], seconds: float) -> Phase:
    phase = Phase("read GET /api/cases/{id}")
    stop = time.perf_counter() + seconds

    async def client_loop(headers: dict[str, str]) -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as c:
            rng = random.Random(headers["Authorization"])
            while time.perf_counter() < stop:
                t = time.perf_counter()
                note(phase, await c.get(f"/api/cases/{rng.choice(ids)}"), t)

    t0 = time.perf_counter()
    await asyncio.gather(*(client_loop(h) for h in tokens))
    phase.seconds = time.perf_counter() - t0
    return phase


async def write_phase(base: str, pairs: list[tuple[dict[str, str], dict[str, str]]], shares: list[list[int]],
                      worker_id: int, seconds: float, rate: float = 0.0) -> Phase:  # fmt: skip
    """Closed loop (each client sends as soon as its answer came), or with ``rate`` an open loop:
    the clients together send ``rate`` transitions a second on a fixed schedule, and latency is
    counted from the scheduled time (so a stalled server cannot hide its queue)."""
    phase = Phase("write POST /api/cases/{id}/actions/{action}" + (f" @ {rate:g}/s" if rate else ""))
    stop = time.perf_counter() + seconds
    interval = len(pairs) / rate if rate else 0.0

    async def client_loop(headers: tuple[dict[str, str], dict[str, str]], mine: list[int]) -> None:
        due = time.perf_counter() + random.random() * interval
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            for case_id in mine:
                version = 1
                for who, action in FLOW:
                    if time.perf_counter() >= stop:
                        return
                    body: dict[str, Any] = {"version": version, "opinion": "压测处理意见"}
                    if action == "dispatch":
                        body["assignee"] = worker_id
                    t = time.perf_counter()
                    if interval:
                        if due > t:
                            await asyncio.sleep(due - t)
                        t, due = due, due + interval
                    r = await c.post(f"/api/cases/{case_id}/actions/{action}", json=body,
                                     headers=headers[0] if who == "station" else headers[1])  # fmt: skip
                    note(phase, r, t)
                    if r.status_code != 200:
                        break
                    version = r.json()["case"]["version"]

    t0 = time.perf_counter()
    await asyncio.gather(*(client_loop(p, s) for p, s in zip(pairs, shares, strict=True)))
    phase.seconds = time.perf_counter() - t0
    return phase


async def drive(base: str, clients: int, seconds: float, cases: int, rate: float) -> tuple[Phase, Phase, Phase | None]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        station = [await login(c, "benchstation", f"s{i}") for i in range(clients)]
        worker = [await login(c, "benchworker", f"w{i}") for i in range(clients)]
        me = (await c.get("/api/me", headers=worker[0])).json()
        first = await c.get("/api/cases", headers=station[0], params={"tab": "all"})
        assert first.status_code == 200, first.text
    ids = list(range(1, cases + 1))
    read = await read_phase(base, station, ids, seconds)
    shares = [ids[i::clients] for i in range(clients)]
    pairs = list(zip(station, worker, strict=True))
    write = await write_phase(base, pairs, [s[: len(s) // 2] for s in shares], int(me["id"]), seconds)
    paced = None
    if rate:
        paced = await write_phase(base, pairs, [s[len(s) // 2 :] for s in shares], int(me["id"]), seconds, rate)
    return read, write, paced


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit("服务进程已退出")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("服务未能启动")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cases", type=int, default=6000)
    ap.add_argument("--rate", type=float, default=50.0,
                    help="open-loop phase: transitions per second on a fixed schedule (0: skip)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="yiwang-bench-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        env, url = setup(args.backend, home, args.cases)
        port = free_port()
        proc = subprocess.Popen([YIWANG, "serve", "--port", str(port), "--workers", str(args.workers)],
                                env=env, stdout=subprocess.DEVNULL, stderr=open(home / "serve.log", "wb"))  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc)
        read, write, paced = asyncio.run(drive(base, args.clients, args.seconds, args.cases, args.rate))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        if os.environ.get("BENCH_KEEP"):
            print(f"站点保留在 {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    ratio = write.rate / read.rate if read.rate else 0.0
    locked = sum(ph.errors.get("database is locked", 0) for ph in (read, write, paced) if ph)
    met = ratio >= 0.4 and write.pct(0.99) <= 100 and locked == 0
    result = {
        "backend": args.backend, "clients": args.clients, "workers": args.workers, "seconds": args.seconds,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "load": load_average()},
        "read": read.summary(), "write": write.summary(), "ratio": round(ratio, 3),
        "paced": paced.summary() if paced else None,
        "locked": locked, "target_met": met,
    }  # fmt: skip
    print(json.dumps(result, ensure_ascii=False, indent=2))
    print(f"\n| {args.backend} | {read.rate:.0f}/s p99 {read.pct(0.99):.1f} ms | {write.rate:.0f}/s "
          f"p50 {write.pct(0.5):.1f} p95 {write.pct(0.95):.1f} p99 {write.pct(0.99):.1f} ms | {ratio:.2f} | {locked} |")  # fmt: skip
    if paced:
        print(f"| {args.backend} open loop {args.rate:g}/s | {paced.rate:.0f}/s p50 {paced.pct(0.5):.1f} "
              f"p95 {paced.pct(0.95):.1f} p99 {paced.pct(0.99):.1f} ms |")  # fmt: skip
    print("目标（写 ≥ 0.4 × 读，p99 ≤ 100 ms，无锁错误）: " + ("达成" if met else "未达成"))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    if url:
        engine = create_engine(make_url(os.environ.get("YIWANG_TEST_POSTGRESQL", DEFAULT_PG)), isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}"'))
        engine.dispose()
    sys.exit(0)


if __name__ == "__main__":
    main()
