"""Benchmark: the subtree dashboard of the population — counts by kind for every child of a node
— over the 10-million-person demo.

Builds the full demo net and fills it with ``--persons`` generated persons through the plugin's
bulk demo loader (``yiwang_population.demo.bulk_persons``, what ``yiwang demo --scale full``
runs), reporting the load time, rate and peak memory, and checks the rollups against a full
recount. Then, per level from province to community, it times ``stats.children`` (the kept
rollups: two indexed reads) for ``--samples`` seeded nodes, and at city level the comparator: a
live ``GROUP BY kind`` over each child's subtree of ``population_person`` (a range scan of the
``node_path`` index), in the same run on the same database. Every answer of ours at city level is
compared with the live one. Finally a random mix of registrations, moves and kind changes goes
through the plugin's service and the rollups must again equal a full recount. Any difference
prints ``CORRECTNESS FAILURE`` and exits with status 2.

    .venv/bin/python bench/population_dashboard.py                  # 10 M persons, SQLite
    .venv/bin/python bench/population_dashboard.py --persons 20000 --net-scale small
    .venv/bin/python bench/population_dashboard.py --backend postgresql --json out.json
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from population_site import analyze, machine, pct, peak_rss_mb, site
from sqlalchemy import func, select

from yiwang.api import Actor, Level, Node, ValidationError, stats, subtree_filter
from yiwang.stats.recount import recount

LEVELS = (Level.PROVINCE, Level.CITY, Level.COUNTY, Level.TOWNSHIP, Level.COMMUNITY)
TARGET_P95_MS = 2.0
TARGET_RATIO = 20.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--persons", type=int, default=10_000_000)
    ap.add_argument("--net-scale", choices=["small", "full"], default="full")
    ap.add_argument("--samples", type=int, default=300, help="draws per level for ours")
    ap.add_argument("--live-samples", type=int, default=28, help="draws at city level for the live GROUP BY")
    ap.add_argument("--mix", type=int, default=3000, help="registrations + moves + kind changes")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--home", type=Path, help="site home (default: a temp dir, removed)")
    ap.add_argument("--reuse", action="store_true",
                    help="time an existing site in --home (built by an earlier run) instead of building one")
    ap.add_argument("--pg-url")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with site(args.backend, home=args.home, pg_url=args.pg_url, net_scale=args.net_scale, seed=args.seed,
              build=not args.reuse) as k:  # fmt: skip
        result = run(k, args)
    result["machine"] = machine()
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(report(result))
    if not result["correct"]:
        print("CORRECTNESS FAILURE")
        sys.exit(2)


def run(kernel: Any, args: argparse.Namespace) -> dict[str, Any]:
    from yiwang_population import demo
    from yiwang_population.models import INDICATOR, KINDS

    out: dict[str, Any] = {"backend": kernel.db.backend, "persons": args.persons, "net_scale": args.net_scale,
                           "net_seconds": round(kernel.net_seconds, 1)}  # fmt: skip
    last = [time.perf_counter()]

    def progress(n: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"  {n:,} 人 …", flush=True)

    rss_before = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    with kernel.db.write() as s:
        if args.reuse:
            from yiwang_population.models import Person

            loaded = int(s.scalar(select(func.count()).select_from(Person)) or 0)
            args.persons = loaded
        else:
            loaded = demo.bulk_persons(s, args.persons, args.seed, progress=progress)
    load = time.perf_counter() - t0
    out |= {"loaded": loaded, "load_seconds": round(load, 1), "load_rate": round(loaded / load),
            "load_cpu_seconds": round(time.process_time() - c0, 1),
            "peak_rss_mb_before_load": round(rss_before), "peak_rss_mb_after_load": round(peak_rss_mb())}  # fmt: skip
    print(f"载入 {loaded:,} 人：{load:.1f} 秒，{loaded / load:,.0f} 人/秒，峰值内存 {peak_rss_mb():.0f} MB", flush=True)
    analyze(kernel)
    t0 = time.perf_counter()
    with kernel.db.write() as s:
        wrong = recount(kernel, s, check=True, indicators=[INDICATOR])
    out["recount_seconds"] = round(time.perf_counter() - t0, 1)
    out["recount_after_load"] = len(wrong)
    keys = tuple(KINDS)
    rng = random.Random(args.seed)
    out["levels"] = {}
    mismatches = 0
    with kernel.db.read() as s:
        by_level = {lv: list(s.execute(select(Node.id, Node.path).where(Node.level == int(lv)))) for lv in LEVELS}  # type: ignore[call-overload]
        for lv in LEVELS:
            nodes = by_level[lv]
            draws = [nodes[i % len(nodes)] if len(nodes) < args.samples else rng.choice(nodes)
                     for i in range(args.samples)]  # fmt: skip
            for node_id, _ in draws[:20]:  # warm-up
                stats.children(s, INDICATOR, node_id, keys)
            times, cpu = [], []
            gc.collect()
            gc.disable()  # a collection mid-read is the interpreter's pause, not the database's
            for node_id, _ in draws:
                t, c = time.perf_counter_ns(), time.thread_time_ns()
                stats.children(s, INDICATOR, node_id, keys)
                times.append((time.perf_counter_ns() - t) / 1e6)
                cpu.append((time.thread_time_ns() - c) / 1e6)
            gc.enable()
            # CPU time of the reading thread: what a loaded machine's preemption leaves out
            row: dict[str, Any] = {"nodes": len(nodes), "p50_ms": round(pct(times, 50), 3),
                                   "p95_ms": round(pct(times, 95), 3), "p99_ms": round(pct(times, 99), 3),
                                   "cpu_p50_ms": round(pct(cpu, 50), 3), "cpu_p95_ms": round(pct(cpu, 95), 3)}  # fmt: skip
            if lv == Level.CITY:
                live_times = []
                for i in range(args.live_samples):
                    node_id, _ = nodes[i % len(nodes)]
                    t = time.perf_counter_ns()
                    live = live_children(s, node_id, keys)
                    live_times.append((time.perf_counter_ns() - t) / 1e6)
                    ours = {r.id: c for r, c in stats.children(s, INDICATOR, node_id, keys)}
                    mismatches += ours != live
                row |= {"live_p50_ms": round(pct(live_times, 50), 1), "live_p95_ms": round(pct(live_times, 95), 1),
                        "ratio_p50": round(pct(live_times, 50) / row["p50_ms"]),
                        "ratio_p95": round(pct(live_times, 95) / row["p95_ms"])}  # fmt: skip
            out["levels"][lv.name.lower()] = row
            print(f"  {lv.name.lower()}: {row}", flush=True)
    out["city_mismatches"] = mismatches
    out["mix"] = mix(kernel, args.mix, rng)
    with kernel.db.write() as s:
        out["recount_after_mix"] = len(recount(kernel, s, check=True, indicators=[INDICATOR]))
    worst = max(r["p95_ms"] for r in out["levels"].values())
    city = out["levels"]["city"]
    out["worst_p95_ms"] = worst
    out["targets"] = {"p95_le_2ms": worst <= TARGET_P95_MS, "city_ratio_ge_20": city["ratio_p95"] >= TARGET_RATIO}
    out["correct"] = not (out["recount_after_load"] or mismatches or out["recount_after_mix"]) and loaded == args.persons
    return out


def live_children(session: Any, parent_id: int, keys: tuple[str, ...]) -> dict[int, dict[str, int]]:
    """The comparator: each child's counts by kind counted now from ``population_person``."""
    from yiwang_population.models import Person

    out: dict[int, dict[str, int]] = {}
    for child_id, path in session.execute(select(Node.id, Node.path).where(Node.parent_id == parent_id)):
        counts = dict.fromkeys(keys, 0)
        rows = session.execute(select(Person.kind, func.count()).where(subtree_filter(Person.node_path, path))
                               .group_by(Person.kind))  # fmt: skip
        for kind, n in rows:
            counts[kind] = int(n)
        out[int(child_id)] = counts
    return out


def mix(kernel: Any, n: int, rng: random.Random) -> dict[str, int]:
    """``n`` random writes through the service in units of 100: a third registrations, a third
    moves to another grid, a third kind changes."""
    from yiwang_population import service
    from yiwang_population.hooks import checksum
    from yiwang_population.models import KINDS, Person

    actor = Actor.system("bench")
    done = {"register": 0, "move": 0, "kind": 0, "refused": 0}
    with kernel.db.read() as s:
        grids = [g for (g,) in s.execute(select(Node.id).where(Node.level == int(Level.GRID)))]  # type: ignore[call-overload]
        top = int(s.scalar(select(func.max(Person.id))) or 0)
    t0 = time.perf_counter()
    for start in range(0, n, 100):
        with kernel.db.write() as s:
            for _ in range(min(100, n - start)):
                op = rng.choice(("register", "move", "kind"))
                try:
                    if op == "register":
                        body = f"450103{1950 + rng.randrange(60)}0{rng.randrange(1, 10)}1{rng.randrange(10)}{rng.randrange(1000):03d}"
                        service.register(s, s.get(Node, rng.choice(grids)), name="测试", id_number=body + checksum(body),
                                         kind=rng.choice(list(KINDS)), actor=actor)  # fmt: skip
                    else:
                        p = s.get(Person, rng.randint(1, top))
                        if p is None:
                            continue
                        if op == "move":
                            service.move_person(s, p, s.get(Node, rng.choice(grids)), actor=actor)
                        else:
                            service.change_kind(s, p, rng.choice([k for k in KINDS if k != p.kind]), "基准", actor=actor)
                    done[op] += 1
                except ValidationError:
                    done["refused"] += 1
    done["seconds"] = round(time.perf_counter() - t0, 1)  # type: ignore[assignment]
    return done


def report(r: dict[str, Any]) -> str:
    lines = [f"### 实有人口看板（{r['backend']}，{r['persons']:,} 人）", "",
             f"载入 {r['load_seconds']} 秒（{r['load_rate']:,} 人/秒，CPU {r['load_cpu_seconds']} 秒），峰值内存 {r['peak_rss_mb_after_load']} MB"
             f"（载入前 {r['peak_rss_mb_before_load']} MB）；重算 {r['recount_seconds']} 秒；负载 {r['machine']['load']}", "",
             "| 层级 | 节点数 | p50 ms | p95 ms | p99 ms | CPU p50/p95 ms | 实时 GROUP BY p50/p95 ms | 倍数 p50/p95 |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, row in r["levels"].items():
        live = f"{row['live_p50_ms']} / {row['live_p95_ms']}" if "live_p50_ms" in row else "—"
        ratio = f"{row['ratio_p50']}× / {row['ratio_p95']}×" if "ratio_p50" in row else "—"
        lines.append(f"| {name} | {row['nodes']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
                     f"{row['cpu_p50_ms']} / {row['cpu_p95_ms']} | {live} | {ratio} |")
    t = r["targets"]
    lines += ["", f"p95 ≤ {TARGET_P95_MS} ms（最差 {r['worst_p95_ms']} ms）：{'MET' if t['p95_le_2ms'] else 'NOT MET'}；"
              f"市级 ≥ {TARGET_RATIO:.0f}× 实时：{'MET' if t['city_ratio_ge_20'] else 'NOT MET'}；"
              f"混合写入 {r['mix']} 后重算差异 {r['recount_after_mix']}，载入后 {r['recount_after_load']}，"
              f"市级答案不一致 {r['city_mismatches']}"]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
