"""Benchmark: bulk import of person rows through the population plugin's importer, against the
raw driver inserting the same rows in the same run.

For each size in ``--sizes`` (default 100,000 and 1,000,000; each in its own process, so peak
memory is that size's own) it builds the full demo net, writes a CSV of that many generated
persons in the import template's columns (valid unique ID numbers, phones, grid codes spread over
the province; not timed) and runs the import exactly as the confirm button does:
``runs.execute`` on an ``ImportRun`` in ``upsert`` mode — streamed parsing, validation of every
row (GB 11643, phone, lengths, 类别), grid resolution and scope, duplicate detection in the file,
the lookup of registered persons by blind index, then the write (ciphertexts, blind indexes,
rollups, audit) in one transaction. The preview (``importer.check``, what the upload runs) is
timed too. The comparator is the raw driver (``sqlite3`` ``executemany``; PostgreSQL ``COPY``)
inserting the same stored rows (sealed beforehand, untimed, in chunks) into a table with the
same columns, indexes and constraints, in one transaction. Peak memory is the process's peak
resident set after the import plus its worker's (a file of ``importer.PARALLEL_ROWS`` rows or
more is checked in a worker process). Then it checks: every row imported, rollups equal a recount, a
sample of persons decrypts to the CSV's values. Any failure prints ``CORRECTNESS FAILURE`` and
exits with status 2.

    .venv/bin/python bench/population_import.py                        # 100k and 1M, SQLite
    .venv/bin/python bench/population_import.py --sizes 20000 --net-scale small
    .venv/bin/python bench/population_import.py --backend postgresql --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from population_site import PssSampler, analyze, machine, peak_rss_mb, site
from sqlalchemy import MetaData, func, select

from yiwang.api import Actor, Level, Node, is_within, stats
from yiwang.stats.recount import recount

TARGET_RATIO = 0.5
TARGET_RSS_MB = 500
CHUNK = 5000
_DAYS = 365 * 70
_SLOTS = _DAYS * 1000
_STEP = 15_485_863  # coprime with _SLOTS: row i gets a distinct (birth date, sequence)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated row counts")
    ap.add_argument("--net-scale", choices=["small", "full"], default="full")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--home", type=Path, help="parent of the site homes (default: temp dirs, removed)")
    ap.add_argument("--pg-url")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one size, JSON on stdout
    args = ap.parse_args()
    if args.one:
        home = args.home / f"import-{args.one}" if args.home else None
        with site(args.backend, home=home, pg_url=args.pg_url, net_scale=args.net_scale, seed=args.seed) as k:
            print("RESULT " + json.dumps(run(k, args.one, args.seed)), flush=True)
        return
    results = []
    for n in [int(x) for x in args.sizes.split(",")]:
        cmd = [sys.executable, __file__, "--one", str(n), "--backend", args.backend, "--net-scale", args.net_scale,
               "--seed", str(args.seed)] + (["--home", str(args.home)] if args.home else []) + (
               ["--pg-url", args.pg_url] if args.pg_url else [])  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        sys.stderr.write(proc.stderr[-4000:])
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(proc.stdout[-4000:])
            print("CORRECTNESS FAILURE: the run did not finish")
            sys.exit(2)
        results.append(json.loads(line[len("RESULT "):]))
        print(f"  {n:,} 行: {results[-1]}", flush=True)
    out = {"backend": args.backend, "net_scale": args.net_scale, "runs": results, "machine": machine()}
    print(json.dumps(out, ensure_ascii=False, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=2))
    print(report(out))
    if not all(r["correct"] for r in results):
        print("CORRECTNESS FAILURE")
        sys.exit(2)


# --- the rows ------------------------------------------------------------------------------------

HEADER = ["姓名", "公民身份号码", "类别", "性别", "民族", "联系电话", "户籍地址", "现住址", "职业", "所属网格编码", "标签"]
KIND_LABELS = ("户籍", "户籍", "户籍", "户籍", "户籍", "户籍", "户籍", "流动", "流动", "未落户")


def checksum(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


def source_rows(grids: list[str], n: int, seed: int) -> Any:
    """``n`` CSV rows (template columns) over the grid codes ``grids``; the same for a seed."""
    rng = random.Random(seed)
    start = rng.randrange(_SLOTS)
    for i in range(n):
        code = grids[i * len(grids) // n]
        days, seq = divmod(((start + i) * _STEP) % _SLOTS, 1000)
        born = date(1940, 1, 1) + timedelta(days=days)
        body = f"{code[:6]}{born:%Y%m%d}{seq:03d}"
        yield [f"{rng.choice('李王张刘陈杨黄赵吴周')}{rng.choice('建国秀英丽华志强海燕桂芳明辉')}{i % 97}",
               body + checksum(body), rng.choice(KIND_LABELS), "", rng.choice(("汉族", "壮族", "瑶族")),
               f"1{rng.choice('3578')}{rng.randrange(10**9):09d}", f"广西南宁市{rng.randrange(1, 999)}号",
               f"民族大道{rng.randrange(1, 999)}号", rng.choice(("务农", "教师", "企业职工", "")), code, ""]  # fmt: skip


# --- one size ------------------------------------------------------------------------------------


def run(kernel: Any, n: int, seed: int) -> dict[str, Any]:
    from yiwang_population import importer, runs
    from yiwang_population.models import INDICATOR, ImportRun, Person

    with kernel.db.read() as s:
        grids = [c for (c,) in s.execute(select(Node.code).where(Node.level == int(Level.GRID)).order_by(Node.code))]  # type: ignore[call-overload]
        root = s.scalars(select(Node).where(Node.level == int(Level.PROVINCE))).one()
    with kernel.db.write() as s:
        run_row = ImportRun(node_id=root.id or 0, filename="bench.csv", fmt="csv", mode="upsert", status="running", total=n)
        s.add(run_row)
        s.flush()
        run_id = int(run_row.id or 0)
        target = runs.file_of(kernel, run_row)
    with target.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(source_rows(grids, n, seed))
    allowed = lambda path: is_within(path, root.path)  # noqa: E731 — the province's staff
    actor = Actor.system("bench")
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    with kernel.db.read() as s:
        plan = importer.check(s, target, "csv", mode="upsert", allowed=allowed)
    preview = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    with PssSampler() as pss:
        runs.execute(kernel, run_id, actor, allowed)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = peak_rss_mb()
    # A large file is checked in a worker process (importer.PARALLEL_ROWS): its peak counts too.
    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with kernel.db.read() as s:
        state = s.get(ImportRun, run_id)
        status, message = state.status, state.message
        count = int(s.scalar(select(func.count()).select_from(Person)) or 0)
    raw, raw_cpu, seal = raw_insert_seconds(kernel, grids, n, seed)
    analyze(kernel)
    with kernel.db.write() as s:
        wrong = recount(kernel, s, check=True, indicators=[INDICATOR])
    sample_ok = check_sample(kernel, grids, n, seed)
    with kernel.db.read() as s:
        total = sum(stats.by_key(s, INDICATOR, root.id or 0).values())
    return {
        "rows": n, "preview_s": round(preview, 1), "preview_rows_per_s": round(n / preview),
        "import_s": round(elapsed, 1), "import_rows_per_s": round(n / elapsed),
        "raw_s": round(raw, 1), "raw_rows_per_s": round(n / raw), "ratio_to_raw": round(raw / elapsed, 3),
        "seal_s": round(seal, 1), "ratio_to_raw_with_sealing": round((raw + seal) / elapsed, 3),
        "import_cpu_s": round(cpu, 1), "raw_cpu_s": round(raw_cpu, 1), "cpu_ratio_to_raw": round(raw_cpu / cpu, 3),
        "peak_rss_mb": round(rss + worker_rss), "peak_rss_mb_main": round(rss), "peak_rss_mb_worker": round(worker_rss),
        "peak_pss_mb": round(pss.peak_mb),
        "peak_rss_mb_before": round(rss0), "status": status, "message": message,
        "planned_inserts": plan.inserted, "persons": count, "rollup_total": total, "recount_differences": len(wrong),
        "sample_ok": sample_ok,
        "correct": status == "done" and count == n == plan.inserted == total and not wrong and sample_ok,
    }  # fmt: skip


def raw_insert_seconds(kernel: Any, grids: list[str], n: int, seed: int) -> tuple[float, float, float]:
    """The comparator: the same stored rows, sealed in chunks (timed apart: ``validate_id`` and
    ``Codec`` per row), inserted by the driver into a copy of ``population_person`` (same columns,
    indexes, constraints) in one transaction. Returns (insert wall s, insert CPU s, sealing s)."""
    from yiwang.api import validate_id

    from yiwang_population import bulk
    from yiwang_population.importer import KIND_VALUES

    meta = MetaData()
    Node.__table__.to_metadata(meta)  # type: ignore[attr-defined]  # for the foreign key
    copy = bulk.TABLE.to_metadata(meta, name="bench_person_raw")
    for ix in copy.indexes:
        ix.name = (ix.name or "").replace("population_person", "bench_person_raw")
    for c in copy.constraints:
        if c.name and "population_person" in str(c.name):
            c.name = str(c.name).replace("population_person", "bench_person_raw")
    with kernel.db.read() as s:
        node_of = {code: (int(i), str(p)) for i, code, p in s.execute(select(Node.id, Node.code, Node.path).where(Node.level == int(Level.GRID)))}  # type: ignore[call-overload]
    spent = cpu = seal = 0.0
    with kernel.db.write() as s:
        copy.create(s.connection())
        sealer = bulk.Sealer(s)
        raw = s.connection().connection.driver_connection
        sqlite = kernel.db.backend == "sqlite"
        sql = f"INSERT INTO bench_person_raw ({', '.join(bulk.COLUMNS)}) VALUES ({', '.join('?' * len(bulk.COLUMNS))})"
        chunk: list[tuple[Any, ...]] = []

        def send() -> tuple[float, float]:
            cur = raw.cursor()
            t, c = time.perf_counter(), time.process_time()
            if sqlite:
                cur.executemany(sql, chunk)
            else:
                with cur.copy(f"COPY bench_person_raw ({', '.join(bulk.COLUMNS)}) FROM STDIN") as cp:
                    for row in chunk:
                        cp.write_row(row)
            took = time.perf_counter() - t, time.process_time() - c
            cur.close()
            return took

        for i, r in enumerate(source_rows(grids, n, seed)):
            t = time.perf_counter()
            info = validate_id(r[1])
            node_id, path = node_of[r[9]]
            chunk.append(sealer.row(node_id=node_id, node_path=path, name=r[0], id_number=info.number, sex=info.sex,
                                    birth_date=info.birth_date, kind=KIND_VALUES[r[2]], phone=r[5], ethnicity=r[4],
                                    address=r[7], hukou_address=r[6], occupation=r[8], tags=r[10]))  # fmt: skip
            seal += time.perf_counter() - t
            if len(chunk) >= CHUNK or i == n - 1:
                w, c = send()
                spent, cpu, chunk = spent + w, cpu + c, []
        t, c = time.perf_counter(), time.process_time()
    spent, cpu = spent + time.perf_counter() - t, cpu + time.process_time() - c  # the commit
    with kernel.db.write() as s:
        copy.drop(s.connection())
    return spent, cpu, seal


def check_sample(kernel: Any, grids: list[str], n: int, seed: int) -> bool:
    """200 rows of the CSV, found by blind index, decrypt to the file's values."""
    from yiwang.api import blind_equals

    from yiwang_population.models import Person

    picks = set(random.Random(seed + 1).sample(range(n), min(200, n)))
    with kernel.db.read() as s:
        for i, r in enumerate(source_rows(grids, n, seed)):
            if i not in picks:
                continue
            p = s.scalars(select(Person).where(blind_equals(Person.id_number, r[1]))).one_or_none()
            if p is None or (p.name, p.phone, p.address) != (r[0], r[5], r[7]):
                return False
    return True


def _memory(x: dict[str, Any]) -> str:
    """The combined peak: PSS of the import and its worker (shared pages counted once), and the
    two processes' own peak RSS beside it."""
    return f"{x.get('peak_pss_mb', 0)}（RSS {x.get('peak_rss_mb_main', x['peak_rss_mb'])} + {x.get('peak_rss_mb_worker', 0)}）"


def report(r: dict[str, Any]) -> str:
    lines = [f"### 实有人口批量导入（{r['backend']}，网格 {r['net_scale']}）", "",
             "| 行数 | 预览 行/秒 | 导入 秒 | 导入 行/秒 | 原始驱动 行/秒 | 导入/原始 | CPU 秒 导入/原始 | CPU 比 | 导入/(加密+原始) | 峰值内存 MB：PSS（RSS 主进程 + 检查进程）|",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for x in r["runs"]:
        lines.append(f"| {x['rows']:,} | {x['preview_rows_per_s']:,} | {x['import_s']} | {x['import_rows_per_s']:,} | "
                     f"{x['raw_rows_per_s']:,} | {x['ratio_to_raw']} | {x['import_cpu_s']} / {x['raw_cpu_s']} | "
                     f"{x['cpu_ratio_to_raw']} | {x['ratio_to_raw_with_sealing']} | {_memory(x)} |")  # fmt: skip
    big = r["runs"][-1]
    rss = [x.get("peak_pss_mb") or x["peak_rss_mb"] for x in r["runs"]]
    lines += ["", f"导入/原始 ≥ {TARGET_RATIO}：{'MET' if big['ratio_to_raw'] >= TARGET_RATIO else 'NOT MET'}"
              f"（{big['ratio_to_raw']}）；峰值内存 ≤ {TARGET_RSS_MB} MB：{'MET' if max(rss) <= TARGET_RSS_MB else 'NOT MET'}"
              f"（{' → '.join(map(str, rss))} MB）；负载 {r['machine']['load']}"]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
