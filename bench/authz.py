"""Benchmark: authorisation decisions — the kernel's ``Authz`` (casbin for *what*, a cached
(role, permission) answer, the grid path prefix for *where*) versus stock ``casbin.Enforcer``
and ``casbin.FastEnforcer`` deciding the same question with a domain model.

Builds the provincial-size demo net (``yiwang.grid.demo``, ``--scale full``) in a fresh SQLite
database through the kernel, declares 40 module objects × 5 actions (``m01.view`` …
``m40.export``) as policy lines with ``kernel.authz.grant`` / ``inherit`` on top of the kernel's
own default grants, and inserts ``--users`` users (default 21,776) with role assignments spread
like the field (mostly grid workers at grids; community, township, county, city and a few
province staff; dispatchers, handlers, mediators, leaders, administrators). Users and
assignments are bulk Core inserts with a placeholder password hash (no argon2).

Measured, in one run:

* **policy load at start** — ``Authz.reload()`` (casbin enforcer built from ``rbac_policy``);
* **decision** — ``authz.allowed(grants, permission, node_path)`` for random (user,
  permission, target node) triples, the user's grants loaded beforehand with ``grants_of`` as a
  request has them: *uncached* (the (role, permission) cache emptied before every decision: the
  state right after a policy change) and *cached* (after a warm-up pass over the same triples);
  also ``grants_of`` and ``check_epoch``, the two reads each request does once;
* **comparators** — ``casbin.Enforcer`` (``r = sub, dom, obj, act``; ``g = _, _, _`` with
  domains = node paths and a prefix domain-matching function) and ``casbin.FastEnforcer`` (the
  same model with the object first, ``cache_key_order=[0]``), loading the same policy lines plus
  every assignment as a ``g, user, role, node_path`` line: load time and decision time on a
  prefix of the same triples, a first pass (cold per-domain role managers) and a second pass
  (warm). Every answer of theirs must equal ours, or the run aborts with status 2;
* **flatness** — the cached decision with 1k, 10k and 100k assignments (the net and policy
  unchanged), on triples over the same number of distinct users at every scale (so that only
  the population changes), timed in interleaved rounds; target p50(100k) / p50(1k) ≤ 1.5. The
  same with users drawn over the whole population is shown too (the benchmark then holds more
  users' grants, and timing also measures CPU cache misses on them), and ``FastEnforcer``'s load
  and decisions at each scale for contrast.

Only the call is timed (``time.perf_counter_ns`` around it; arguments resolved beforehand);
percentiles are nearest-rank.

Targets (issue 3): policy load ≤ 1 s; cached decision ≤ 10 µs at p50; flatness ratio ≤ 1.5.

    .venv/bin/python bench/authz.py [--users 21776] [--json out.json]
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import math
import os
import platform
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import casbin  # type: ignore[import-untyped]
from casbin import persist
from machine import cpu_model, load_average  # bench/machine.py (run as a script)
from sqlalchemy import delete, func, select

from yiwang.auth.models import User
from yiwang.auth.service import grants_of
from yiwang.db import Database, migrate
from yiwang.grid import tree
from yiwang.grid.demo import build_demo_net
from yiwang.grid.levels import Level
from yiwang.kernel import Kernel
from yiwang.keys import ensure_keys
from yiwang.rbac.authz import Authz, Grant, split
from yiwang.rbac.models import Assignment, PolicyLine
from yiwang.settings import load_settings

T = tree.T
USER_T = User.__table__  # type: ignore[attr-defined]
ASSIGN_T = Assignment.__table__  # type: ignore[attr-defined]
POLICY_T = PolicyLine.__table__  # type: ignore[attr-defined]
OBJECTS = tuple(f"m{i:02d}" for i in range(1, 41))
ACTIONS = ("view", "create", "edit", "approve", "export")
TARGET_LOAD_S = 1.0
TARGET_CACHED_P50_US = 10.0
TARGET_FLAT_RATIO = 1.5
FLAT_SCALES = (1_000, 10_000, 100_000)
FLAT_USERS = 900  # distinct users per scale in the fixed-working-set flatness set
PLACEHOLDER_HASH = "$bench$not-a-password-hash"  # never verified: nobody logs in here
INSIDE_SHARE = 0.7  # share of triples whose target lies in one of the user's subtrees
SECOND_SHARE = 0.06  # share of users holding a second assignment

# Role mix of the first assignment of each user: (role, levels it is held at, weight).
ROLE_MIX: tuple[tuple[str, tuple[Level, ...], float], ...] = (
    ("grid_worker", (Level.GRID,), 0.600),
    ("community_staff", (Level.COMMUNITY,), 0.190),
    ("township_staff", (Level.TOWNSHIP,), 0.070),
    ("county_staff", (Level.COUNTY,), 0.035),
    ("city_staff", (Level.CITY,), 0.008),
    ("province_staff", (Level.PROVINCE,), 0.002),
    ("dispatcher", (Level.COUNTY, Level.TOWNSHIP), 0.030),
    ("dept_handler", (Level.COUNTY, Level.TOWNSHIP), 0.030),
    ("mediator", (Level.TOWNSHIP, Level.COMMUNITY), 0.020),
    ("leader", (Level.CITY, Level.COUNTY, Level.TOWNSHIP), 0.010),
    ("system_admin", (Level.PROVINCE, Level.CITY, Level.COUNTY), 0.003),
    ("security_admin", (Level.PROVINCE, Level.CITY), 0.001),
    ("audit_admin", (Level.PROVINCE, Level.CITY), 0.001),
)
ADMIN_ROLES = {"system_admin", "security_admin", "audit_admin"}


class Mismatch(AssertionError):
    pass


# --- the benchmark's policy: 40 objects × 5 actions ---------------------------------------------


def module_policy() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(role, permission) grants and (role, parent) inheritance for m01 … m40, shaped like a
    deployment: field modules for grid workers, more actions and approval higher up, exports
    from the county, read-only leaders, a few ``*`` grants."""
    mods = list(OBJECTS)
    grants: list[tuple[str, str]] = []

    def add(role: str, objs: Sequence[str], acts: Sequence[str]) -> None:
        grants.extend((role, f"{o}.{a}") for o in objs for a in acts)

    add("grid_worker", mods[:20], ("view", "create"))
    add("grid_worker", mods[:10], ("edit",))
    add("community_staff", mods[:30], ("view", "create", "edit"))
    add("township_staff", mods[:30], ("approve",))
    add("county_staff", mods[30:], ("view",))
    add("county_staff", mods, ("export",))
    add("province_staff", mods, ("view", "export"))
    add("dispatcher", mods[:20], ("view", "edit", "approve"))
    add("dispatcher", mods[10:15], ("*",))
    add("dept_handler", mods[20:30], ("view", "edit"))
    add("mediator", mods[4:6], ("view", "create", "edit"))
    add("leader", mods, ("view",))
    add("system_admin", mods[39:], ("*",))
    add("security_admin", mods[38:39], ("view",))
    add("audit_admin", mods[38:39], ("view", "export"))
    inherit = [
        ("township_staff", "community_staff"),
        ("county_staff", "township_staff"),
        ("city_staff", "county_staff"),
        ("province_staff", "city_staff"),
    ]
    return grants, inherit


def all_permissions(kernel_perms: Sequence[str]) -> list[str]:
    return [f"{o}.{a}" for o in OBJECTS for a in ACTIONS] + list(kernel_perms)


# --- results -------------------------------------------------------------------------------------


@dataclass
class Stat:
    """Percentiles in microseconds."""

    n: int
    p50: float
    p95: float
    p99: float


def stat(samples_ns: Sequence[int]) -> Stat:
    """Nearest-rank percentiles in microseconds."""
    xs = sorted(samples_ns)

    def pct(p: float) -> float:
        return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)] / 1e3

    return Stat(len(xs), pct(50), pct(95), pct(99))


@dataclass
class Report:
    scale: str
    seed: int
    sample_seed: int
    users: int
    machine: dict[str, Any]
    casbin_version: str
    migrate_s: float = 0.0
    build_s: float = 0.0
    nodes: int = 0
    policy: dict[str, int] = field(default_factory=dict)
    population: dict[str, int] = field(default_factory=dict)
    load_s: dict[str, float] = field(default_factory=dict)  # ours first/median, casbin …
    stats: dict[str, Stat] = field(default_factory=dict)  # µs
    allow_share: float = 0.0
    flat: dict[str, dict[str, Any]] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    flat_rounds: int = 0
    load_avg: dict[str, float] = field(default_factory=dict)
    total_s: float = 0.0






def _casbin_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("casbin", "pycasbin"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "?"


# --- database ------------------------------------------------------------------------------------


@contextmanager
def fresh_kernel() -> Iterator[Kernel]:
    """A kernel on a new SQLite file in a temp dir (keys there too); removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="yiwang-bench-authz-") as tmp:
        settings = load_settings(
            {"YIWANG_HOME": str(Path(tmp) / "home")},  # no site file, no YIWANG_* leaking in
            overrides={
                "database": {"url": f"sqlite:///{Path(tmp) / 'bench.db'}"},
                "security": {"secret_key": secrets.token_urlsafe(32)},
                "plugins": {"enabled": []},
            },
        )
        ensure_keys(settings)
        kernel = Kernel(settings)
        try:
            yield kernel
        finally:
            kernel.db.dispose()


def build(kernel: Kernel, report: Report) -> None:
    """Migrate, sync the kernel's roles and default grants, build the net, add the modules."""
    t0 = time.perf_counter()
    migrate.upgrade(kernel.db, kernel.host)
    kernel.sync_declarations()
    report.migrate_s = time.perf_counter() - t0
    print(f"migrate + sync: {report.migrate_s:.2f} s; building demo net '{report.scale}' …",
          flush=True)  # fmt: skip
    t0 = time.perf_counter()
    with kernel.db.write() as s:
        report.nodes = build_demo_net(kernel, s, scale=report.scale, seed=report.seed)
    report.build_s = time.perf_counter() - t0
    print(f"build: {report.build_s:.1f} s for {report.nodes:,} nodes", flush=True)
    grants, inherit = module_policy()
    with kernel.db.write() as s:
        for role, parent in inherit:
            kernel.authz.inherit(s, role, parent)
        for role, perm in grants:
            kernel.authz.grant(s, role, perm)
    with kernel.db.read() as s:
        pt = POLICY_T
        rows = s.connection().execute(select(pt.c.ptype, func.count()).group_by(pt.c.ptype)).all()
    report.policy = {str(k): int(n) for k, n in rows}
    print(f"policy lines: {report.policy}", flush=True)


@dataclass
class Net:
    """Node ids and paths, by level and sorted by path (for drawing targets in a subtree)."""

    by_level: dict[int, list[int]]
    path_of: dict[int, str]
    sorted_paths: list[str]

    @classmethod
    def load(cls, db: Database) -> Net:
        by_level: dict[int, list[int]] = {}
        path_of: dict[int, str] = {}
        with db.read() as s:
            for nid, level, path in s.connection().execute(
                select(T.c.id, T.c.level, T.c.path).order_by(T.c.id)
            ):
                by_level.setdefault(int(level), []).append(int(nid))
                path_of[int(nid)] = str(path)
        return cls(by_level, path_of, sorted(path_of.values()))

    def random_in(self, path: str, rng: random.Random) -> str:
        lo = bisect.bisect_left(self.sorted_paths, path)
        hi = bisect.bisect_left(self.sorted_paths, tree.path_upper(path))
        return self.sorted_paths[rng.randrange(lo, hi)]


def populate(db: Database, net: Net, n_assign: int, rng: random.Random) -> dict[str, int]:
    """Replace every user and assignment by a population holding ``n_assign`` assignments.

    Users are ``n_assign / (1 + SECOND_SHARE)``; each gets one assignment by ``ROLE_MIX`` (grid
    workers over distinct grids while they last), and users are given a second one — the same
    role at a sibling node (a neighbouring grid, the next community) — until the count is
    reached. Administrators hold one assignment. Bulk Core inserts, one transaction.
    """
    n_users = max(1, round(n_assign / (1 + SECOND_SHARE)))
    roles = [r for r, _, _ in ROLE_MIX]
    weights = [w for _, _, w in ROLE_MIX]
    levels = {r: lv for r, lv, _ in ROLE_MIX}
    grid_pool = net.by_level[int(Level.GRID)][:]
    rng.shuffle(grid_pool)
    parent_children: dict[str, list[int]] = {}
    for nid, path in net.path_of.items():
        parent_children.setdefault(path[: -len(f"{nid}/")], []).append(nid)
    now = datetime.now(UTC)
    users: list[dict[str, Any]] = []
    assigns: list[dict[str, Any]] = []
    first: list[tuple[int, str, int]] = []
    g = 0
    for uid in range(1, n_users + 1):
        role = rng.choices(roles, weights)[0]
        if role == "grid_worker":
            node = grid_pool[g % len(grid_pool)]
            g += 1
        else:
            node = rng.choice(net.by_level[int(rng.choice(levels[role]))])
        users.append({
            "id": uid, "username": f"bench{uid:06d}", "display_name": "",
            "password_hash": PLACEHOLDER_HASH, "password_changed_at": now,
            "must_change_password": False, "active": True, "failed_logins": 0,
            "totp_enabled": False, "created_at": now,
        })  # fmt: skip
        assigns.append({"user_id": uid, "role": role, "node_id": node, "created_at": now})
        first.append((uid, role, node))
    seen = {(u, r, n) for u, r, n in first}
    candidates = [f for f in first if f[1] not in ADMIN_ROLES]
    rng.shuffle(candidates)
    i = 0
    while len(assigns) < n_assign and candidates:
        uid, role, node = candidates[i % len(candidates)]
        i += 1
        path = net.path_of[node]
        siblings = parent_children.get(path[: -len(f"{node}/")], [])
        level = len(tree.ancestor_ids(path))
        pool = siblings if len(siblings) > 1 else net.by_level[level]
        other = rng.choice(pool)
        if (uid, role, other) in seen:
            if i > 50 * n_assign:
                break
            continue
        seen.add((uid, role, other))
        assigns.append({"user_id": uid, "role": role, "node_id": other, "created_at": now})
    users_t, assign_t = USER_T, ASSIGN_T
    with db.write() as s:
        conn = s.connection()
        conn.execute(delete(assign_t))
        conn.execute(delete(users_t))
        for start in range(0, len(users), 5000):
            conn.execute(users_t.insert(), users[start : start + 5000])
        for start in range(0, len(assigns), 5000):
            conn.execute(assign_t.insert(), assigns[start : start + 5000])
    counts: dict[str, int] = {"users": len(users), "assignments": len(assigns)}
    for a in assigns:
        counts[a["role"]] = counts.get(a["role"], 0) + 1
    return counts


# --- triples -------------------------------------------------------------------------------------

Triple = tuple[int, str, str]  # user id, permission, target node path


def draw_triples(
    db: Database,
    net: Net,
    perms: Sequence[str],
    users: Sequence[int],
    k: int,
    rng: random.Random,
) -> tuple[list[Triple], dict[int, tuple[Grant, ...]]]:
    """``k`` (user, permission, target) triples and each drawn user's grants (``grants_of``).

    Users uniform over ``users``; permission uniform over the 200 module and the kernel's
    permissions; target with probability ``INSIDE_SHARE`` a uniform node inside one of the
    user's subtrees, else a uniform node of the whole net (mostly outside: a sibling, a cousin,
    another city)."""
    uids = [users[rng.randrange(len(users))] for _ in range(k)]
    grants: dict[int, tuple[Grant, ...]] = {}
    with db.read() as s:
        for uid in uids:
            if uid not in grants:
                grants[uid] = grants_of(s, uid)
    triples: list[Triple] = []
    for uid in uids:
        gs = grants[uid]
        if gs and rng.random() < INSIDE_SHARE:
            target = net.random_in(rng.choice(gs).node_path, rng)
        else:
            target = net.sorted_paths[rng.randrange(len(net.sorted_paths))]
        triples.append((uid, rng.choice(perms), target))
    return triples, grants


# --- casbin comparators --------------------------------------------------------------------------

# The request is: may subject U, in domain D (the target's path), do act on obj? A user holds a
# role in the domain of each assignment's node path; a domain-matching function makes a role held
# at a node count in every domain below it. Role inheritance lines get the root domain "/".
# Cheap comparisons first in the matcher, so g() is evaluated only for lines of the right object
# and action (casbin's best case; with g() first it would run for every line).
DOMAIN_MODEL = """
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.obj == p.obj && (r.act == p.act || p.act == "*") && g(r.sub, p.sub, r.dom)
"""

# FastEnforcer filters policy lines by the request values at ``cache_key_order`` — the same
# positions in r and p — so the object comes first in both (the subject cannot be the key: the
# request carries a user, the line a role).
FAST_MODEL = """
[request_definition]
r = obj, act, sub, dom

[policy_definition]
p = obj, act, sub

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.obj == p.obj && (r.act == p.act || p.act == "*") && g(r.sub, p.sub, r.dom)
"""

ROOT_DOMAIN = "/"


def domain_within(request_domain: str, line_domain: str) -> bool:
    """casbin domain matching: the target's path lies in the subtree of the line's node."""
    return request_domain.startswith(line_domain)


class _DomainAdapter(persist.Adapter):  # type: ignore[misc]
    """Our ``rbac_policy`` lines and every assignment (``g, u<id>, role, node path``)."""

    def __init__(self, db: Database, *, object_first: bool) -> None:
        self.db = db
        self.object_first = object_first

    def load_policy(self, model: Any) -> None:
        pt, at = POLICY_T, ASSIGN_T
        with self.db.read() as s:
            conn = s.connection()
            lines = conn.execute(select(pt.c.ptype, pt.c.v0, pt.c.v1, pt.c.v2)).all()
            assigns = conn.execute(
                select(at.c.user_id, at.c.role, T.c.path).join(T, T.c.id == at.c.node_id)
            ).all()
        for ptype, v0, v1, v2 in lines:
            if ptype == "p":
                values = [v1, v2, v0] if self.object_first else [v0, v1, v2]
            else:
                values = [v0, v1, ROOT_DOMAIN]
            persist.load_policy_line(", ".join([ptype, *values]), model)
        for uid, role, path in assigns:
            persist.load_policy_line(f"g, u{uid}, {role}, {path}", model)


def casbin_enforcer(kind: str, db: Database, folder: Path) -> tuple[casbin.Enforcer, float]:
    """A stock Enforcer or FastEnforcer over our tables and its load time in seconds."""
    fast = kind == "fast"
    model_file = folder / ("fast_model.conf" if fast else "domain_model.conf")
    model_file.write_text(FAST_MODEL if fast else DOMAIN_MODEL)
    t0 = time.perf_counter()
    if fast:
        e: casbin.Enforcer = casbin.FastEnforcer(
            str(model_file), _DomainAdapter(db, object_first=True), cache_key_order=[0]
        )
    else:
        e = casbin.Enforcer(str(model_file), _DomainAdapter(db, object_first=False))
    e.add_named_domain_matching_func("g", domain_within)
    return e, time.perf_counter() - t0


def casbin_calls(kind: str, triples: Sequence[Triple]) -> list[Args]:
    """``enforce`` arguments: (sub, dom, obj, act), or (obj, act, sub, dom) for FastEnforcer."""
    out: list[Args] = []
    for uid, perm, path in triples:
        obj, act = split(perm)
        out.append((obj, act, f"u{uid}", path) if kind == "fast" else (f"u{uid}", path, obj, act))
    return out


# --- timing --------------------------------------------------------------------------------------


Args = tuple[Any, ...]


def timed(
    fn: Callable[..., Any], calls: Sequence[Args], before: Callable[[], None] | None = None
) -> tuple[list[int], list[bool]]:
    """Time ``fn(*args)`` for each argument tuple (``before`` runs untimed ahead of each);
    returns ns and answers. Arguments are resolved beforehand, so only the call is timed."""
    clock = time.perf_counter_ns
    ns: list[int] = []
    answers: list[bool] = []
    gc.collect()
    for args in calls:
        if before is not None:
            before()
        t0 = clock()
        answer = fn(*args)
        ns.append(clock() - t0)
        answers.append(bool(answer))
    return ns, answers


def check(name: str, items: Sequence[Triple], ours: Sequence[bool], theirs: Sequence[bool]) -> None:
    """Every answer of ``theirs`` equals ours on the same triple (``items`` is a prefix of the
    triples ``ours`` answered)."""
    for t, a, b in zip(items, ours[: len(items)], theirs, strict=True):
        if a != b:
            raise Mismatch(f"{name}: user {t[0]}, {t[1]} at {t[2]}: ours {a} != {name} {b}")


def ours_calls(triples: Sequence[Triple], grants: dict[int, tuple[Grant, ...]]) -> list[Args]:
    """``authz.allowed`` arguments: the user's grants as a request holds them, permission, path."""
    return [(grants[uid], perm, path) for uid, perm, path in triples]


def drop_decision_cache(authz: Authz) -> Callable[[], None]:
    """Empty the (role, permission) cache — what ``reload()`` leaves after a policy change,
    without rebuilding the enforcer. There is no public call for only this, hence the
    private attribute; it is the benchmark's business only."""
    cache = authz._cache  # noqa: SLF001

    def clear() -> None:
        cache.clear()

    return clear


def measure_load(kernel: Kernel, report: Report, repeat: int = 5) -> None:
    """``Authz.reload()`` on fresh Authz objects: the first (cold) and the median of ``repeat``."""
    times: list[float] = []
    for _ in range(repeat):
        authz = Authz(kernel.db, personal=kernel.authz.personal)
        t0 = time.perf_counter()
        authz.reload()
        times.append(time.perf_counter() - t0)
    report.load_s["ours_first"] = times[0]
    report.load_s["ours_median"] = sorted(times)[len(times) // 2]
    report.load_s["ours_max"] = max(times)


def per_request_reads(kernel: Kernel, grants: dict[int, tuple[Grant, ...]], report: Report) -> None:
    """``grants_of`` on an open read session (as ``principal_for_session`` calls it) and
    ``check_epoch`` (its own read session and one primary-key read), each once per user."""
    uids = list(grants)[:2000]
    clock = time.perf_counter_ns
    ns: list[int] = []
    with kernel.db.read() as s:
        for uid in uids[:50]:
            grants_of(s, uid)
        gc.collect()
        for uid in uids:
            t0 = clock()
            got = grants_of(s, uid)
            ns.append(clock() - t0)
            if got != grants[uid]:
                raise Mismatch(f"grants_of({uid}) changed between reads")
    report.stats["grants_of"] = stat(ns)
    kernel.authz.check_epoch()
    ns = []
    for _ in range(len(uids)):
        t0 = clock()
        kernel.authz.check_epoch()
        ns.append(clock() - t0)
    report.stats["check_epoch"] = stat(ns)


def show(label: str, st: Stat) -> None:
    print(f"  {label:<34} n {st.n:>6,}  p50 {st.p50:10.2f} µs  p95 {st.p95:10.2f}  "
          f"p99 {st.p99:10.2f}", flush=True)  # fmt: skip


def measure_main(
    kernel: Kernel, net: Net, report: Report, args: argparse.Namespace, tmp: Path
) -> None:
    rng = random.Random(args.sample_seed)
    perms = all_permissions(sorted(_kernel_permissions(kernel)))
    users = range(1, report.population["users"] + 1)
    triples, grants = draw_triples(kernel.db, net, perms, users, args.samples, rng)
    n_grants = [len(g) for g in grants.values()]
    print(f"triples: {len(triples):,} over {len(grants):,} users "
          f"(grants per user: mean {sum(n_grants) / len(n_grants):.2f}, max {max(n_grants)})",
          flush=True)  # fmt: skip

    measure_load(kernel, report)
    print(f"policy load (Authz.reload): first {report.load_s['ours_first'] * 1e3:.1f} ms, "
          f"median {report.load_s['ours_median'] * 1e3:.1f} ms", flush=True)  # fmt: skip
    per_request_reads(kernel, grants, report)
    show("grants_of per request", report.stats["grants_of"])
    show("check_epoch per request", report.stats["check_epoch"])

    authz = Authz(kernel.db, personal=kernel.authz.personal)
    authz.reload()
    calls = ours_calls(triples, grants)

    # Uncached: the cache emptied before every decision.
    unc = calls[: args.uncached_samples]
    timed(authz.allowed, unc[:50], drop_decision_cache(authz))
    ns, unc_answers = timed(authz.allowed, unc, drop_decision_cache(authz))
    report.stats["ours_uncached"] = stat(ns)
    show("ours, uncached", report.stats["ours_uncached"])

    # Cached: a warm-up pass fills the (role, permission) cache, then the timed pass.
    _, warm = timed(authz.allowed, calls)
    ns, answers = timed(authz.allowed, calls)
    report.stats["ours_cached"] = stat(ns)
    show("ours, cached", report.stats["ours_cached"])
    check("ours cached vs warm-up", triples, answers, warm)
    check("ours uncached vs cached", triples[: len(unc)], answers, unc_answers)
    report.allow_share = sum(answers) / len(answers)

    for kind, n in (("stock", args.casbin_samples), ("fast", args.fast_samples)):
        name = "casbin.FastEnforcer" if kind == "fast" else "casbin.Enforcer"
        e, load_s = casbin_enforcer(kind, kernel.db, tmp)
        report.load_s[f"casbin_{kind}"] = load_s
        print(f"{name}: load {load_s:.2f} s", flush=True)
        items = triples[:n]
        ccalls = casbin_calls(kind, items)
        ns1, a1 = timed(e.enforce, ccalls)
        check(name, items, answers, a1)
        ns2, a2 = timed(e.enforce, ccalls)
        check(f"{name} (2nd pass)", items, answers, a2)
        report.stats[f"casbin_{kind}_first"] = stat(ns1)
        report.stats[f"casbin_{kind}_second"] = stat(ns2)
        show(f"{name}, 1st pass", report.stats[f"casbin_{kind}_first"])
        show(f"{name}, 2nd pass", report.stats[f"casbin_{kind}_second"])
        del e
        gc.collect()


def measure_flat(
    kernel: Kernel, net: Net, report: Report, args: argparse.Namespace, tmp: Path
) -> None:
    """Cached decisions at 1k, 10k and 100k assignments (same net, same policy).

    Each population is inserted, ``Authz.reload()`` and ``grants_of`` timed on it, and two sets
    of triples drawn, their grants read with ``grants_of``:

    * *fixed working set* — ``--flat-samples`` triples over the same number of distinct users
      (``FLAT_USERS``, below the 943 users of the 1k population) at every scale: only the
      population changes, so this is the flatness figure;
    * *users uniform* — the triples' users drawn from the whole population: the benchmark then
      holds ~900, ~6,000 or ~9,500 users' grants in memory, and timing them also times the CPU
      caches missing on more objects — shown, not judged (a request's grants were just read).

    All sets are timed after the last population is in, in interleaved rounds (order rotated),
    so drift in machine load falls on every scale alike. ``casbin.FastEnforcer`` is loaded and
    timed at each scale on ``--flat-casbin-samples`` triples of the fixed set, for contrast.
    """
    perms = all_permissions(sorted(_kernel_permissions(kernel)))
    sets: dict[tuple[int, str], tuple[list[Triple], list[Args]]] = {}
    for n in FLAT_SCALES:
        rng = random.Random(args.sample_seed + n)
        t0 = time.perf_counter()
        pop = populate(kernel.db, net, n, rng)
        pop_s = time.perf_counter() - t0
        few = rng.sample(range(1, pop["users"] + 1), min(FLAT_USERS, pop["users"]))
        fixed, fixed_grants = draw_triples(kernel.db, net, perms, few, args.flat_samples, rng)
        uniform, uni_grants = draw_triples(
            kernel.db, net, perms, range(1, pop["users"] + 1), args.flat_samples, rng
        )
        sets[(n, "fixed")] = (fixed, ours_calls(fixed, fixed_grants))
        sets[(n, "uniform")] = (uniform, ours_calls(uniform, uni_grants))
        authz = Authz(kernel.db, personal=kernel.authz.personal)
        t0 = time.perf_counter()
        authz.reload()
        load_s = time.perf_counter() - t0
        ns: list[int] = []
        with kernel.db.read() as s:
            for uid in list(uni_grants)[:1000]:
                t1 = time.perf_counter_ns()
                grants_of(s, uid)
                ns.append(time.perf_counter_ns() - t1)
        row: dict[str, Any] = {
            "assignments": pop["assignments"], "users": pop["users"], "populate_s": pop_s,
            "reload_s": load_s, "grants_of": stat(ns),
            "users_fixed": len(fixed_grants), "users_uniform": len(uni_grants),
        }  # fmt: skip
        if args.flat_casbin_samples:
            e, c_load = casbin_enforcer("fast", kernel.db, tmp)
            items = fixed[: args.flat_casbin_samples]
            ccalls = casbin_calls("fast", items)
            ns1, a1 = timed(e.enforce, ccalls)
            ns2, a2 = timed(e.enforce, ccalls)
            _, ours = timed(authz.allowed, ours_calls(items, fixed_grants))
            check(f"casbin.FastEnforcer at {n:,} assignments", items, ours, a1)
            check(f"casbin.FastEnforcer at {n:,} assignments (2nd pass)", items, ours, a2)
            row |= {"fast_load_s": c_load, "fast_first": stat(ns1), "fast_second": stat(ns2)}
            del e
            gc.collect()
        report.flat[str(n)] = row
        print(f"  {n:>7,} assignments: {pop['users']:,} users, inserted in {pop_s:.1f} s; "
              f"reload {load_s * 1e3:.1f} ms; grants_of p50 {stat(ns).p50:.1f} µs"
              + (f"; FastEnforcer load {row['fast_load_s']:.2f} s, 1st/2nd pass p50 "
                 f"{row['fast_first'].p50 / 1e3:.2f} / {row['fast_second'].p50 / 1e3:.3f} ms"
                 if "fast_load_s" in row else ""), flush=True)  # fmt: skip
    authz = Authz(kernel.db, personal=kernel.authz.personal)
    authz.reload()
    samples: dict[tuple[int, str], list[int]] = {key: [] for key in sets}
    reference: dict[tuple[int, str], list[bool]] = {}
    for key, (_, calls) in sets.items():
        _, reference[key] = timed(authz.allowed, calls)  # warm-up
    order = list(sets)
    for r in range(args.flat_rounds):
        for key in order[r % len(order) :] + order[: r % len(order)]:
            triples, calls = sets[key]
            ns, answers = timed(authz.allowed, calls)
            check(f"flat {key}", triples, reference[key], answers)
            samples[key] += ns
    for n in FLAT_SCALES:
        for kind in ("fixed", "uniform"):
            st = stat(samples[(n, kind)])
            report.flat[str(n)][f"cached_{kind}"] = st
            show(f"cached, {n:,}, {kind}", st)


def _kernel_permissions(kernel: Kernel) -> list[str]:
    from yiwang.rbac.sync import declared_permissions

    return list(declared_permissions(kernel))


# --- output --------------------------------------------------------------------------------------


def fmt_us(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} s"
    if x >= 1e3:
        return f"{x / 1e3:.2f} ms"
    return f"{x:.2f} µs"


def fmt_ratio(x: float) -> str:
    return f"{x:,.0f}×" if x >= 100 else f"{x:.1f}×"


def flat_ratio(report: Report, kind: str) -> float:
    hi = report.flat[str(FLAT_SCALES[-1])][f"cached_{kind}"].p50
    lo = report.flat[str(FLAT_SCALES[0])][f"cached_{kind}"].p50
    return float(hi / lo)


def targets(report: Report) -> None:
    st = report.stats
    ratio = flat_ratio(report, "fixed")
    report.targets = [
        {"what": "policy load at start (`Authz.reload()`)", "target": f"≤ {TARGET_LOAD_S:g} s",
         "value": f"{report.load_s['ours_first']:.3f} s (first), {report.load_s['ours_median']:.3f} s (median of 5)",
         "met": report.load_s["ours_max"] <= TARGET_LOAD_S},
        {"what": f"cached decision p50 ({report.population['assignments']:,} assignments)",
         "target": f"≤ {TARGET_CACHED_P50_US:g} µs", "value": fmt_us(st["ours_cached"].p50),
         "met": st["ours_cached"].p50 <= TARGET_CACHED_P50_US},
        {"what": f"flatness p50(100k) / p50(1k), cached, fixed working set ({FLAT_USERS} users)",
         "target": f"≤ {TARGET_FLAT_RATIO:g}",
         "value": f"{ratio:.2f}", "met": ratio <= TARGET_FLAT_RATIO},
    ]  # fmt: skip


def markdown(report: Report) -> str:
    st = report.stats
    pop = report.population
    m = report.machine
    out = [
        f"**SQLite {m['database']}**, Python {m['python']}, casbin {report.casbin_version}, "
        f"{m['cpus']} CPUs ({m['cpu']}) · scale `{report.scale}` (seed {report.seed}): "
        f"{report.nodes:,} nodes, build {report.build_s:.0f} s · {pop['users']:,} users, "
        f"{pop['assignments']:,} assignments · policy: {report.policy.get('p', 0)} `p` lines "
        f"({len(OBJECTS)} objects × {len(ACTIONS)} actions + kernel grants), "
        f"{report.policy.get('g', 0)} `g` (inheritance) · {st['ours_cached'].n:,} triples, "
        f"{report.allow_share:.0%} allowed · load average {report.load_avg.get('before', -1):g} → "
        f"{report.load_avg.get('after', -1):g}",
        "",
        "| figure | n | p50 | p95 | p99 | target | |",
        "|---|--:|--:|--:|--:|---|---|",
    ]
    load_t = report.targets[0]
    out.append(
        f"| policy load at start — `Authz.reload()` (casbin enforcer from `rbac_policy`) | 5 | "
        f"{fmt_us(report.load_s['ours_median'] * 1e6)} (median; first "
        f"{fmt_us(report.load_s['ours_first'] * 1e6)}) | | max {fmt_us(report.load_s['ours_max'] * 1e6)} "
        f"| ≤ 1 s | {'MET' if load_t['met'] else '**NOT MET**'} |"
    )
    for key, label in (
        ("casbin_stock", "`casbin.Enforcer`"),
        ("casbin_fast", "`casbin.FastEnforcer`"),
    ):
        out.append(
            f"| load — {label}, domain model, {report.policy.get('p', 0)} `p` + "
            f"{pop['assignments'] + report.policy.get('g', 0):,} `g` lines | 1 | "
            f"{fmt_us(report.load_s[key] * 1e6)} | | | (≤ 1 s) | "
            f"{'' if report.load_s[key] <= TARGET_LOAD_S else 'over'} |"
        )
    rows = [
        ("ours_cached", "decision, ours, **cached** — `authz.allowed(grants, perm, path)`",
         f"≤ {TARGET_CACHED_P50_US:g} µs p50", st["ours_cached"].p50 <= TARGET_CACHED_P50_US),
        ("ours_uncached", "decision, ours, uncached (cache emptied before each)", "", None),
        ("casbin_stock_first", "decision, `casbin.Enforcer`, 1st pass (cold domains)", "", None),
        ("casbin_stock_second", "decision, `casbin.Enforcer`, 2nd pass (same triples)", "", None),
        ("casbin_fast_first", "decision, `casbin.FastEnforcer`, 1st pass (cold domains)", "", None),
        ("casbin_fast_second", "decision, `casbin.FastEnforcer`, 2nd pass (same triples)", "", None),
        ("grants_of", "per request: `grants_of(session, user_id)`", "", None),
        ("check_epoch", "per request: `authz.check_epoch()`", "", None),
    ]  # fmt: skip
    for key, label, target, met in rows:
        s = st[key]
        verdict = "" if met is None else ("MET" if met else "**NOT MET**")
        out.append(f"| {label} | {s.n:,} | {fmt_us(s.p50)} | {fmt_us(s.p95)} | {fmt_us(s.p99)} | "
                   f"{target} | {verdict} |")  # fmt: skip
    out += [
        "",
        "*Ratios casbin / ours (decisions on the same triples; load against `Authz.reload()` "
        "median):*",
        "",
        "| comparator | ÷ ours cached, p50 | p95 | ÷ ours uncached, p50 | p95 |",
        "|---|--:|--:|--:|--:|",
    ]
    base, unc = st["ours_cached"], st["ours_uncached"]
    for key, label in (
        ("casbin_stock_first", "`Enforcer`, 1st pass"),
        ("casbin_stock_second", "`Enforcer`, 2nd pass"),
        ("casbin_fast_first", "`FastEnforcer`, 1st pass"),
        ("casbin_fast_second", "`FastEnforcer`, 2nd pass"),
    ):
        out.append(f"| {label} | {fmt_ratio(st[key].p50 / base.p50)} | "
                   f"{fmt_ratio(st[key].p95 / base.p95)} | {fmt_ratio(st[key].p50 / unc.p50)} | "
                   f"{fmt_ratio(st[key].p95 / unc.p95)} |")  # fmt: skip
    out.append(f"| ours uncached (for scale) | {fmt_ratio(unc.p50 / base.p50)} | "
               f"{fmt_ratio(unc.p95 / base.p95)} | | |")  # fmt: skip
    for key, label in (("casbin_stock", "`Enforcer`"), ("casbin_fast", "`FastEnforcer`")):
        r = report.load_s[key] / report.load_s["ours_median"]
        out.append(f"| load, {label} | {fmt_ratio(r)} | | | |")
    first = report.flat[str(FLAT_SCALES[0])]
    out += [
        "",
        "*Flatness — cached decision by number of assignments (same net, same policy; "
        f"{first['cached_fixed'].n:,} decisions per set over {report.flat_rounds} interleaved "
        f"rounds). Fixed: triples over {FLAT_USERS} users at every scale; uniform: over the whole "
        "population (the benchmark's own working set grows with it). `FastEnforcer`: load and "
        f"decisions on {first.get('fast_first', Stat(0, 0, 0, 0)).n} triples of the fixed set:*",
        "",
        "| assignments | users | insert | `Authz.reload()` | `grants_of` p50 "
        "| decision p50, fixed | p95 | p99 | p50, uniform (users) | p95 "
        "| `FastEnforcer` load | 1st / 2nd pass p50 |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for n in FLAT_SCALES:
        f = report.flat[str(n)]
        c, u = f["cached_fixed"], f["cached_uniform"]
        fast = (
            f"{fmt_us(f['fast_load_s'] * 1e6)} | {fmt_us(f['fast_first'].p50)} / "
            f"{fmt_us(f['fast_second'].p50)}"
            if "fast_load_s" in f
            else " | "
        )
        out.append(
            f"| {f['assignments']:,} | {f['users']:,} | {f['populate_s']:.1f} s | "
            f"{fmt_us(f['reload_s'] * 1e6)} | {fmt_us(f['grants_of'].p50)} | {fmt_us(c.p50)} | "
            f"{fmt_us(c.p95)} | {fmt_us(c.p99)} | {fmt_us(u.p50)} ({f['users_uniform']:,}) | "
            f"{fmt_us(u.p95)} | {fast} |"
        )
    flat_t = report.targets[2]
    out += [
        "",
        f"Ratio p50({FLAT_SCALES[-1] // 1000}k) / p50({FLAT_SCALES[0] // 1000}k) = "
        f"**{flat_t['value']}** (target ≤ {TARGET_FLAT_RATIO:g}) → "
        f"**{'MET' if flat_t['met'] else 'NOT MET'}**; with users uniform over the population "
        f"(not the target's measure, see above): {flat_ratio(report, 'uniform'):.2f}",
        "",
        "*Targets:*",
        "",
        "| target | value | |",
        "|---|---|---|",
    ]
    for t in report.targets:
        out.append(
            f"| {t['what']} {t['target']} | {t['value']} | {'MET' if t['met'] else '**NOT MET**'} |"
        )
    return "\n".join(out)


def to_json(report: Report) -> dict[str, Any]:
    return asdict(report)


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument(
        "--users", type=int, default=21_776, help="users in the main run (default 21,776)"
    )
    ap.add_argument(
        "--samples", type=int, default=20_000, help="triples, ours cached (default 20,000)"
    )
    ap.add_argument("--uncached-samples", type=int, default=5_000,
                    help="first N triples timed uncached (default 5,000)")  # fmt: skip
    ap.add_argument("--casbin-samples", type=int, default=300,
                    help="first N triples through casbin.Enforcer (default 300)")  # fmt: skip
    ap.add_argument("--fast-samples", type=int, default=1_000,
                    help="first N triples through casbin.FastEnforcer (default 1,000)")  # fmt: skip
    ap.add_argument("--flat-samples", type=int, default=10_000,
                    help="triples per scale in the flatness run (default 10,000)")  # fmt: skip
    ap.add_argument("--flat-rounds", type=int, default=10, help="interleaved rounds (default 10)")
    ap.add_argument("--flat-casbin-samples", type=int, default=100,
                    help="triples through casbin.FastEnforcer at each flatness scale "
                    "(default 100; 0 skips)")  # fmt: skip
    ap.add_argument("--no-flat", action="store_true", help="skip the 1k/10k/100k flatness run")
    ap.add_argument("--scale", choices=("small", "full"), default="full")
    ap.add_argument("--seed", type=int, default=2026, help="demo net seed (default 2026)")
    ap.add_argument(
        "--sample-seed", type=int, default=7, help="seed for users and draws (default 7)"
    )
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)

    started = time.perf_counter()
    with (
        fresh_kernel() as kernel,
        tempfile.TemporaryDirectory(prefix="yiwang-bench-casbin-") as tmp,
    ):
        info = {
            "cpus": os.cpu_count(), "cpu": cpu_model(), "platform": platform.platform(),
            "python": platform.python_version(), "database": sqlite3.sqlite_version,
        }  # fmt: skip
        report = Report(
            args.scale, args.seed, args.sample_seed, args.users, info, _casbin_version()
        )
        report.flat_rounds = args.flat_rounds
        print(f"# authorisation decisions — SQLite {info['database']}, casbin {report.casbin_version}, "
              f"{info['cpus']} CPUs ({info['cpu']})", flush=True)  # fmt: skip
        build(kernel, report)
        net = Net.load(kernel.db)
        n_assign = round(args.users * (1 + SECOND_SHARE))
        t0 = time.perf_counter()
        report.population = populate(kernel.db, net, n_assign, random.Random(args.sample_seed))
        print(f"population: {report.population['users']:,} users, "
              f"{report.population['assignments']:,} assignments in {time.perf_counter() - t0:.1f} s",
              flush=True)  # fmt: skip
        report.load_avg["before"] = load_average()
        try:
            measure_main(kernel, net, report, args, Path(tmp))
            if not args.no_flat:
                print("flatness:", flush=True)
                measure_flat(kernel, net, report, args, Path(tmp))
        except Mismatch as exc:
            print(f"\n!!! CORRECTNESS FAILURE — decisions disagree: {exc}", file=sys.stderr)
            return 2
        report.load_avg["after"] = load_average()
    report.total_s = time.perf_counter() - started
    if args.no_flat:
        print(f"\n(no flatness run) total {report.total_s:.0f} s")
        return 0
    targets(report)
    print(f"\nall answers agreed (ours uncached = cached = Enforcer = FastEnforcer on every sampled "
          f"triple); total {report.total_s:.0f} s\n")  # fmt: skip
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(to_json(report), ensure_ascii=False, indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
