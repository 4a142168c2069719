"""Per-request cost of the request path, in counts that do not depend on the machine's load.

Sets up a site as ``cases_http.py`` does (small demo net, a community station and a grid worker,
``--cases`` reported cases), then calls the ASGI app directly in this process — every middleware,
the guard and the endpoint, with thread-pool work run inline so it is counted — for three
requests: ``GET /api/cases/{id}`` (phone token), a transition ``POST /api/cases/{id}/actions/…``
(the accept → … → close walk) and ``GET /cases/`` (the inbox, session cookie). For each it prints
Python function calls per request (a ``sys.setprofile`` counter), SQL statements per request and
the lowest CPU time per request (``time.process_time``) over ``--rounds`` rounds without the
counter. On a shared machine the first two are the figures to compare between commits.

    .venv/bin/python bench/request_cpu.py [--requests 60] [--rounds 3] [--cases 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cases_http import FLOW, PASSWORD, setup  # bench/cases_http.py (run as a script)


async def call(app: Any, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"") -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.encode(), v.encode()) for k, v in headers], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "state": {}}  # fmt: skip
    sent = False
    out: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return int(out["status"]), bytes(out["body"])


async def measure(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    import anyio.to_thread
    from sqlalchemy import event, select

    from yiwang.app import from_environment
    from yiwang.auth import service
    from yiwang.auth.models import User

    async def inline(func: Callable[..., Any], *a: Any, **_kw: Any) -> Any:
        return func(*a)

    anyio.to_thread.run_sync = inline  # thread-pool work runs here, where it is counted
    app = from_environment()
    kernel = app.state.kernel
    kernel.sync_declarations()
    statements = [0]
    event.listen(kernel.db.engine, "before_cursor_execute", lambda *_a, **_k: statements.__setitem__(0, statements[0] + 1))
    tokens = {}
    for who, device in (("benchstation", "s"), ("benchworker", "w")):
        status, body = await call(app, "POST", "/api/auth/login", [("content-type", "application/json")],
                                  json.dumps({"username": who, "password": PASSWORD, "device_id": device}).encode())  # fmt: skip
        assert status == 200, body
        tokens[who] = [("authorization", "Bearer " + json.loads(body)["access_token"])]
    _, me = await call(app, "GET", "/api/me", tokens["benchworker"])
    worker_id = int(json.loads(me)["id"])
    with kernel.db.read() as s:
        user = s.execute(select(User).where(User.username == "benchstation")).scalar_one()  # type: ignore[arg-type]
    cookie = [("cookie", "yw_session=" + service.start_session(kernel.db, kernel.settings.auth, user, client_ip="", user_agent="").token)]
    next_case = [1]

    async def read(i: int) -> None:
        status, _ = await call(app, "GET", f"/api/cases/{1 + i % args.cases}", tokens["benchstation"])
        assert status == 200

    async def inbox(_i: int) -> None:
        status, _ = await call(app, "GET", "/cases/", cookie)
        assert status == 200

    walk: list[tuple[int, int, str]] = []  # (case, version, action) still to send

    async def transition(_i: int) -> None:
        if not walk:
            case_id = next_case[0]
            next_case[0] += 1
            walk.extend((case_id, v + 1, action) for v, (_, action) in enumerate(FLOW))
        case_id, version, action = walk.pop(0)
        who = next(w for w, a in FLOW if a == action)
        body: dict[str, Any] = {"version": version, "opinion": "压测处理意见"}
        if action == "dispatch":
            body["assignee"] = worker_id
        status, answer = await call(app, "POST", f"/api/cases/{case_id}/actions/{action}",
                                    [*tokens["benchstation" if who == "station" else "benchworker"],
                                     ("content-type", "application/json")], json.dumps(body).encode())  # fmt: skip
        assert status == 200, answer[:300]

    results: dict[str, dict[str, float]] = {}
    runs: tuple[tuple[str, Callable[[int], Awaitable[None]]], ...] = (
        ("GET /api/cases/{id}", read), ("POST /api/cases/{id}/actions/{action}", transition), ("GET /cases/", inbox))  # fmt: skip
    for name, one in runs:
        for i in range(6):  # warm: caches, compiled statements, templates
            await one(i)
        calls = [0]

        def counter(_frame: Any, kind: str, _arg: Any, calls: list[int] = calls) -> None:
            if kind in ("call", "c_call"):
                calls[0] += 1

        s0 = statements[0]
        sys.setprofile(counter)
        for i in range(args.requests):
            await one(i)
        sys.setprofile(None)
        per_calls, per_statements = calls[0] / args.requests, (statements[0] - s0) / args.requests
        best = float("inf")
        for _ in range(args.rounds):
            c0 = time.process_time()
            for i in range(args.requests):
                await one(i)
            best = min(best, (time.process_time() - c0) / args.requests * 1000)
        results[name] = {"calls": round(per_calls), "statements": round(per_statements, 1), "cpu_ms": round(best, 2)}
        print(f"{name:42} calls {per_calls:8.0f}  statements {per_statements:5.1f}  cpu {best:6.2f} ms", file=sys.stderr)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", type=int, default=1500)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    needed = (args.requests * (2 * args.rounds + 1) + 6) // len(FLOW) + 2
    if needed > args.cases:
        raise SystemExit(f"--cases 至少需要 {needed}（每个事件走完 {len(FLOW)} 步）")
    home = Path(tempfile.mkdtemp(prefix="yiwang-bench-cpu-"))
    try:
        setup("sqlite", home, args.cases)
        results = asyncio.run(measure(args))
    finally:
        shutil.rmtree(home, ignore_errors=True) if not os.environ.get("BENCH_KEEP") else None
    print(json.dumps(results, ensure_ascii=False, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
