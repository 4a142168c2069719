"""Benchmark: the full-stack case inbox (``GET /cases/``, 20 rows) against a hand-written raw page
serving the same rows, in the same run, behind the same server.

Sets up a site in a temporary home as ``cases_http.py`` does (``yiwang init``, ``db upgrade``, the
small demo net, a community staff member, ``--cases`` cases reported at one of its grids), logs
the staff member in through the login form (session cookie and CSRF, as a browser does), then
serves, one at a time and each with one uvicorn worker:

* **ours** — ``yiwang serve``: every middleware (request id, session, CSRF, security headers),
  the principal and its grants, the route guard, the scope filter in SQL, the plugin hooks of
  the page (menu), the inbox template extending the theme's ``base.html``;
* **raw** — a bare ASGI app (this file, ``--raw-app``): one ``sqlite3`` connection, the same
  page query (the user's subtree, the to-do states, newest change first, 20 rows, the holding
  unit's name) and its count, a Jinja2 template with the same table and a small page around it.

Each is driven by ``wrk`` (``--connections`` keep-alive connections, closed loop) for
``--seconds``, ``--repeat`` times alternating raw and ours. Prints requests per second, p50/p99
and the target check: ours ≥ 0.5 × raw, p99 ≤ 50 ms at 64 connections. SQLite only (the raw page
is sqlite3). Needs ``wrk`` on PATH (``apt-get install wrk``).

    .venv/bin/python bench/list_page.py [--connections 64] [--seconds 15] [--repeat 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
YIWANG = str(ROOT / ".venv" / "bin" / "yiwang")
PYTHON = str(ROOT / ".venv" / "bin" / "python")

# --- the raw page ---------------------------------------------------------------------------------

RAW_TEMPLATE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>事件办理</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/theme/base.css"></head>
<body><header><a href="/">一网</a> <span>{{ user }}</span></header><main id="main">
<h1>事件办理</h1>
<p class="hint">待办：共 {{ total }} 件</p>
<table class="table cases">
  <thead><tr>
    <th scope="col">编号</th><th scope="col">标题</th><th scope="col">类型</th><th scope="col">状态</th>
    <th scope="col">紧急程度</th><th scope="col">督办/亮牌</th><th scope="col">超期</th>
    <th scope="col">当前承办单位</th><th scope="col">期限</th><th scope="col">更新时间</th>
  </tr></thead>
  <tbody>
  {% for c in rows %}
    <tr>
      <td class="mono"><a href="/cases/{{ c.id }}">{{ c.serial }}</a></td>
      <td><a href="/cases/{{ c.id }}">{{ c.title }}</a></td>
      <td>{{ types.get(c.case_type, c.case_type) }}</td>
      <td><span class="tag state">{{ states.get(c.state, c.state) }}</span></td>
      <td>{{ urgency.get(c.urgency, c.urgency) }}</td>
      <td>{% if c.card %}<span class="tag">{{ c.card }}</span>{% endif %}</td>
      <td>{% if c.overdue %}<span class="tag late">超期</span>{% endif %}</td>
      <td>{{ c.org_name or "—" }}</td>
      <td>{{ local(c.due_at) }}</td>
      <td>{{ local(c.updated_at) }}</td>
    </tr>
  {% endfor %}
  </tbody>
</table></main></body></html>
"""

# The to-do tab of a community station: cases occurring or held in its subtree, in a state where
# it may take a main action. The path range is what the kernel's ``tree.within`` emits.
RAW_WHERE = (
    "((c.node_path >= :p AND c.node_path < :q) OR (c.org_path >= :p AND c.org_path < :q))"
    " AND c.state IN ('reported', 'accepted', 'feedback')"
)
RAW_PAGE = (
    "SELECT c.id, c.serial, c.title, c.case_type, c.state, c.urgency, c.card, c.overdue, c.due_at,"
    " c.updated_at, o.name AS org_name FROM case_case c LEFT JOIN grid_org o ON o.id = c.org_id"
    f" WHERE {RAW_WHERE} ORDER BY c.updated_at DESC, c.id DESC LIMIT 20"
)
RAW_COUNT = f"SELECT count(*) FROM case_case c WHERE {RAW_WHERE}"


def raw_app(db_path: str, path: str) -> Any:
    """The hand-written page: an ASGI callable over one sqlite3 connection."""
    from datetime import UTC, datetime, timedelta, timezone

    from jinja2 import Environment

    tz = timezone(timedelta(hours=8))

    def local(value: str | None) -> str:
        if not value:
            return ""
        return datetime.fromisoformat(value).replace(tzinfo=UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M")

    env = Environment(autoescape=True)
    template = env.from_string(RAW_TEMPLATE)
    conn = sqlite3.connect(db_path, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    params = {"p": path, "q": path[:-1] + "0"}  # "/1/2/" → "/1/20": the kernel's path_upper
    names = {
        "types": {"public_facility": "公共设施"},
        "states": {"reported": "已上报", "accepted": "已受理", "feedback": "已反馈"},
        "urgency": {"normal": "一般", "urgent": "紧急"},
    }

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        rows = conn.execute(RAW_PAGE, params).fetchall()
        total = conn.execute(RAW_COUNT, params).fetchone()[0]
        html = template.render(rows=rows, total=total, user="benchstation", local=local, **names)
        body = html.encode()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    return app


# --- driving ----------------------------------------------------------------------------------------


def wrk(url: str, connections: int, seconds: float, cookie: str = "") -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rate": float(rate.group(1)) if rate else 0.0, "requests": int(total.group(1)) if total else 0,
            "p50_ms": ms("50"), "p90_ms": ms("90"), "p99_ms": ms("99"), "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1).strip() if errors else ""}  # fmt: skip


def serve(cmd: list[str], env: dict[str, str], base: str, log: Path) -> subprocess.Popen[bytes]:
    from cases_http import wait_ready  # bench/cases_http.py (run as a script)

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    wait_ready(base, proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(30)


SERIAL = re.compile(r'<td class="mono"><a href="/cases/\d+">([^<]+)</a>')


def login(base: str) -> tuple[str, list[str]]:
    """Log the staff member in through the form; the session's Cookie header and the page's
    serials (the raw page must list the same cases)."""
    import httpx2 as httpx
    from cases_http import PASSWORD

    with httpx.Client(base_url=base, timeout=30) as c:
        c.get("/login").raise_for_status()
        csrf = c.cookies["yw_csrf"]
        r = c.post("/login", data={"username": "benchstation", "password": PASSWORD, "csrf_token": csrf, "next": "/"})
        if r.status_code not in (200, 303) or "yw_session" not in c.cookies:
            raise SystemExit(f"登录失败: {r.status_code} {r.text[:200]}")
        page = c.get("/cases/")
        serials = SERIAL.findall(page.text)
        if page.status_code != 200 or len(serials) != 20:
            raise SystemExit(f"事件列表异常: {page.status_code}，{len(serials)} 行")
        return f"yw_session={c.cookies['yw_session']}", serials


def check_raw(base: str, serials: list[str]) -> None:
    import httpx2 as httpx

    page = httpx.get(base + "/", timeout=30)
    if page.status_code != 200 or SERIAL.findall(page.text) != serials:
        raise SystemExit(f"对照页面与完整页面列出的事件不同: {page.status_code}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=0, help="server.threads for ours (0: the site default)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--raw-app", nargs=3, metavar=("DB", "PATH", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.raw_app:  # the comparator's server process
        import uvicorn

        db, path, port = args.raw_app
        uvicorn.run(raw_app(db, path), host="127.0.0.1", port=int(port), log_level="warning", access_log=False)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("需要 wrk（apt-get install wrk）")
    from cases_http import free_port, setup
    from machine import cpu_model, load_average  # bench/machine.py (run as a script)

    home = Path(tempfile.mkdtemp(prefix="yiwang-bench-list-"))
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, list[dict[str, Any]]] = {"raw": [], "ours": []}
    load_before = load_average()
    try:
        env, _ = setup("sqlite", home, args.cases)
        if args.threads:
            env["YIWANG_SERVER__THREADS"] = str(args.threads)
        db_path = home / "yiwang.db"
        with sqlite3.connect(db_path) as c:
            path = c.execute(
                "SELECT n.path FROM auth_user u JOIN rbac_assignment a ON a.user_id = u.id"
                " JOIN grid_node n ON n.id = a.node_id WHERE u.username = 'benchstation'"
            ).fetchone()[0]
        ours_port, raw_port = free_port(), free_port()
        ours_base, raw_base = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{raw_port}"
        ours_cmd = [YIWANG, "serve", "--port", str(ours_port), "--workers", "1"]
        raw_cmd = [PYTHON, str(Path(__file__).resolve()), "--raw-app", str(db_path), path, str(raw_port)]
        proc = serve(ours_cmd, env, ours_base, home / "ours.log")
        cookie, serials = login(ours_base)
        stop(proc)
        for rnd in range(args.repeat):
            for name in ("raw", "ours") if rnd % 2 == 0 else ("ours", "raw"):
                base = raw_base if name == "raw" else ours_base
                proc = serve(raw_cmd if name == "raw" else ours_cmd, env, base, home / f"{name}.log")
                procs.append(proc)
                if name == "raw":
                    check_raw(base, serials)
                url = base + ("/" if name == "raw" else "/cases/")
                wrk(url, args.connections, 2, cookie if name == "ours" else "")  # warm-up
                got = wrk(url, args.connections, args.seconds, cookie if name == "ours" else "")
                results[name].append(got)
                print(f"{name:5} {got['rate']:8.1f}/s  p50 {got['p50_ms']:7.1f} ms  p99 {got['p99_ms']:7.1f} ms"
                      f"  non-2xx {got['non_2xx']}", file=sys.stderr)  # fmt: skip
                stop(proc)
                procs.remove(proc)
    finally:
        for proc in procs:
            stop(proc)
        if os.environ.get("BENCH_KEEP"):
            print(f"站点保留在 {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)

    def best(name: str) -> dict[str, Any]:
        return max(results[name], key=lambda r: r["rate"])

    raw, ours = best("raw"), best("ours")
    ratio = ours["rate"] / raw["rate"] if raw["rate"] else 0.0
    met = ratio >= 0.5 and ours["p99_ms"] <= 50 and ours["non_2xx"] == 0
    result = {
        "connections": args.connections, "seconds": args.seconds, "repeat": args.repeat, "cases": args.cases,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version, "load": [load_before, load_average()]},
        "runs": results, "raw": raw, "ours": ours, "ratio": round(ratio, 3), "target_met": met,
    }  # fmt: skip
    print(json.dumps(result, ensure_ascii=False, indent=2))
    print(f"\n| raw | {raw['rate']:.0f}/s | {raw['p50_ms']:.1f} | {raw['p99_ms']:.1f} |")
    print(f"| ours | {ours['rate']:.0f}/s | {ours['p50_ms']:.1f} | {ours['p99_ms']:.1f} | ratio {ratio:.2f} |")
    print("目标（完整页面 ≥ 0.5 × 对照页面，p99 ≤ 50 ms）: " + ("达成" if met else "未达成"))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
