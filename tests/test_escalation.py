"""Horizontal-escalation matrix: every route of the app (kernel and every installed plugin) ×
every declared role × objects outside the actor's subtree (sibling, parent, cousin, other city,
other province) named by id in the path, in the query, in a form body and in a JSON body.

Every actor holds their role at the county 西乡塘区 (450107). Each request starts from a
baseline that an authorised actor could legitimately send (own ids, own node) and swaps in one
foreign value. The matrix passes when

- no foreign data appears in any answer: every foreign object's name carries the marker
  ``WAIYU`` (usernames ``waiyu…``), and no foreign node code the request did not itself carry
  appears (the attacker's own input may be echoed back, e.g. a form re-rendered with its error);
- no request succeeds: a foreign object in the *path* gets no 2xx/3xx answer, and no request
  changes anything outside the actor's subtree (users and sessions of foreign accounts,
  assignments at foreign nodes, the platform-wide policy and roles, activation, notices and
  nodes outside) — checked against a snapshot after each (route, method, role) batch, GETs
  included;
- no request fails with a server error;
- a search for the word every foreign name contains (``外域``) finds nothing.

A route with a path parameter that ``PATH_PARAMS`` does not know fails the test, so whoever
adds such a route extends the matrix. Notices posted at the actor's ancestors reach the actor by
design (the notice plugin's rule), so foreign notices are posted beside and below, not above.

The matrix runs on SQLite only: it is about the application's checks, which are the same on
both backends, and PostgreSQL would double a run of ~8k requests (~35 s on SQLite). The last
test proves the matrix catches a plugin route that ignores the subtree.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import not_, select, update
from starlette.routing import Route

from yiwang import audit
from yiwang.auth.models import AuthSession, User
from yiwang.grid.models import Node, Organisation, utcnow
from yiwang.grid.tree import within
from yiwang.plugins.models import PluginActivation
from yiwang.rbac.guard import permission_of
from yiwang.rbac.models import Assignment, PolicyLine, Role
from yiwang.rbac.sync import declared_roles
from yiwang.testing.routes import PARAM, all_routes, fill
from yiwang.testing.users import PASSWORD

MARKER = "WAIYU"
OWN = "450107"
#: Unsafe routes that act only on the caller's own credentials; sending them would end the
#: actor's session mid-matrix (logout; wrong current passwords lock the account by design).
#: tests/test_auth.py covers them.
SELF_ONLY = {("POST", "/logout"), ("POST", "/account/password"), ("POST", "/account/totp/disable")}
#: Self-service routes act on the caller's own account and credentials only (several check a
#: password: argon2 is slow on purpose). Their path parameters get the full treatment, the
#: query, form and JSON body one foreign attempt each, for every role.
SELF_SERVICE = ("/login", "/logout", "/account/", "/api/auth/")
#: Routes showing what actors of the viewer's subtree did — their denied requests name the
#: foreign codes they tried — are checked for foreign names (the marker) but not for codes.
ECHOES_REQUESTS = {"audit.view", "audit.export"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
#: Stop a broken run early: the first failures say enough.
MAX_FAILURES = 50

#: (code, name, kind): the net. Foreign names carry the marker; the actor's county does not.
NODES = [
    ("45", f"{MARKER}外域广西", "province"),
    ("4501", f"{MARKER}外域南宁市", "parent"),
    (OWN, "西乡塘区", "own"),
    ("450107001", "本县街道", "own"),
    ("450107001001", "本县社区", "own"),
    ("45010700100101", "本县第一网格", "own"),
    ("450108", f"{MARKER}外域兴宁区", "sibling"),
    ("450108001", f"{MARKER}外域兴宁街道", "sibling_below"),
    ("450108001001", f"{MARKER}外域兴宁社区", "sibling_below"),
    ("45010800100101", f"{MARKER}外域兴宁网格", "sibling_below"),
    ("4502", f"{MARKER}外域柳州市", "other_city"),
    ("450203", f"{MARKER}外域鱼峰区", "cousin"),
    ("450203001", f"{MARKER}外域鱼峰街道", "cousin_below"),
    ("45020300100101", f"{MARKER}外域鱼峰网格", "cousin_below"),
    ("44", f"{MARKER}外域广东", "other_province"),
    ("4401", f"{MARKER}外域广州市", "other_province"),
    ("440103", f"{MARKER}外域荔湾区", "other_province"),
]
#: Foreign accounts: (role, node code); one of them locked, to tempt "unlock".
FOREIGN_USERS = [
    ("grid_worker", "45010800100101"),
    ("system_admin", "450108"),
    ("city_staff", "4501"),
    ("province_staff", "45"),
    ("county_staff", "450203"),
    ("security_admin", "4502"),
    ("dispatcher", "440103"),
]
#: Every foreign name contains this (and the actor's own names do not): a search for it must
#: find nothing. (Searching for the marker itself would only see the query echoed back.)
FOREIGN_WORD = "外域"


@dataclass
class World:
    """The objects of the matrix and the actors' logged-in clients."""

    own_codes: list[str] = field(default_factory=list)
    foreign_codes: list[str] = field(default_factory=list)
    #: One representative foreign node per kind, for query and body fields.
    kind_codes: list[str] = field(default_factory=list)
    own_users: list[int] = field(default_factory=list)
    foreign_users: list[int] = field(default_factory=list)
    own_assignments: list[int] = field(default_factory=list)
    foreign_assignments: list[int] = field(default_factory=list)
    own_notices: list[int] = field(default_factory=list)
    foreign_notices: list[int] = field(default_factory=list)
    own_workers: list[int] = field(default_factory=list)
    foreign_workers: list[int] = field(default_factory=list)
    own_staff: list[int] = field(default_factory=list)
    foreign_staff: list[int] = field(default_factory=list)
    own_patrols: list[int] = field(default_factory=list)
    foreign_patrols: list[int] = field(default_factory=list)
    own_persons: list[int] = field(default_factory=list)
    foreign_persons: list[int] = field(default_factory=list)
    own_buildings: list[int] = field(default_factory=list)
    foreign_buildings: list[int] = field(default_factory=list)
    own_cases: list[int] = field(default_factory=list)
    foreign_cases: list[int] = field(default_factory=list)
    own_files: list[int] = field(default_factory=list)
    foreign_files: list[int] = field(default_factory=list)
    own_rules: list[int] = field(default_factory=list)
    foreign_rules: list[int] = field(default_factory=list)
    foreign_messages: list[int] = field(default_factory=list)
    foreign_filters: list[int] = field(default_factory=list)
    foreign_runs: list[int] = field(default_factory=list)
    own_houses: list[int] = field(default_factory=list)
    foreign_houses: list[int] = field(default_factory=list)
    own_households: list[int] = field(default_factory=list)
    foreign_households: list[int] = field(default_factory=list)
    own_members: list[int] = field(default_factory=list)
    foreign_members: list[int] = field(default_factory=list)
    own_residences: list[int] = field(default_factory=list)
    foreign_residences: list[int] = field(default_factory=list)
    foreign_claims: list[int] = field(default_factory=list)
    foreign_orgs: list[int] = field(default_factory=list)
    own_messages: list[int] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)
    watched_users: list[int] = field(default_factory=list)
    own_path: str = ""


# --- the map from path parameter to values ---------------------------------------------------------

#: name → (foreign values, own values). Roles and the grants of a role apply platform-wide,
#: so for an actor at a county every role is foreign (only a root-level ``roles.manage`` holder
#: may touch them); plugins are not objects of a node (the node comes in the query or body).
PATH_PARAMS: dict[str, Callable[[World], tuple[list[Any], list[Any]]]] = {
    "code": lambda w: (w.foreign_codes, w.own_codes[:2]),
    "notice_id": lambda w: (w.foreign_notices, w.own_notices),
    "worker_id": lambda w: (w.foreign_workers, w.own_workers),
    "staff_id": lambda w: (w.foreign_staff, w.own_staff),
    "patrol_id": lambda w: (w.foreign_patrols, w.own_patrols),
    "person_id": lambda w: (w.foreign_persons, w.own_persons),
    "building_id": lambda w: (w.foreign_buildings, w.own_buildings),
    "case_id": lambda w: (w.foreign_cases, w.own_cases),
    "file_id": lambda w: (w.foreign_files, w.own_files),
    "rule_id": lambda w: (w.foreign_rules, w.own_rules),
    # An action is a step of the workflow, not an object of a node (the case is).
    "action": lambda w: ([], ["accept"]),
    # A dictionary is declared platform-wide; its items belong to a province (the form's node).
    "name": lambda w: ([], ["cases.urgency"]),
    "user_id": lambda w: (w.foreign_users, w.own_users),
    "assignment_id": lambda w: (w.foreign_assignments, w.own_assignments),
    "role": lambda w: (w.roles, []),
    "plugin": lambda w: ([], w.plugins),
    "message_id": lambda w: (w.foreign_messages, w.own_messages),
    "run_id": lambda w: (w.foreign_runs, []),
    # Saved queries belong to the user who saved them: every actor's is someone else's.
    "filter_id": lambda w: (w.foreign_filters, []),
    "house_id": lambda w: (w.foreign_houses, w.own_houses),
    "household_id": lambda w: (w.foreign_households, w.own_households),
    "member_id": lambda w: (w.foreign_members, w.own_members),
    "residence_id": lambda w: (w.foreign_residences, w.own_residences),
    # A claim between two foreign grids (the actor's county has a single grid).
    "claim_id": lambda w: (w.foreign_claims, []),
    # A file format is not an object of a node.
    "fmt": lambda w: ([], ["xlsx", "csv"]),
    # Jobs belong to the whole platform, not to a node: only holders over every root may run one.
    "job": lambda w: (["audit.checkpoint"], []),
}

_names = itertools.count(1)


def baseline_fields(w: World) -> dict[str, Any]:
    """A body an authorised actor could send to any route: own ids, own node, fresh names."""
    n = next(_names)
    return {
        "node": w.own_codes[1],  # the own township: not a level where plugins switch
        "user_id": w.own_users[0],
        "assignment": w.own_assignments[0],
        "assignment_id": w.own_assignments[0],
        "notice_id": w.own_notices[0],
        "username": f"mxnew{n}",
        "display_name": "本县新人",
        "name": f"mx_role_{n}",
        "title": "本县角色",
        "role": "matrix_viewer",
        "permission": "grid.view",
        "state": "inherit",
        "q": "本县",
        "code": "000000",
        "device_id": "matrix-device",
        "password": "not-the-password",
    }


def node_fields(w: World) -> list[tuple[str, Any]]:
    """``node`` (the name every page and form uses for a node) at each kind of foreign node."""
    return [("node", code) for code in w.kind_codes]


def other_fields(w: World) -> list[dict[str, Any]]:
    """Per kind of foreign place, every other id-bearing name at once (the node stays own)."""
    out = []
    for i in range(4):
        user, assignment = w.foreign_users[i], w.foreign_assignments[i]
        notice, code = w.foreign_notices[i % len(w.foreign_notices)], w.kind_codes[i]
        case = w.foreign_cases[i % len(w.foreign_cases)]
        fields = {"user_id": user, "user": user, "assignment": assignment, "assignment_id": assignment,
                  "notice_id": notice, "id": notice, "code": code, "parent": code,
                  "ids": f"{case}:1", "action": "accept"}  # fmt: skip
        if w.foreign_orgs:  # org: the organisation and grids named in its forms
            fields |= {"org": w.foreign_orgs[i % len(w.foreign_orgs)],
                       "grids": ("45010800100101", "45020300100101")[i % 2]}  # fmt: skip
        if w.foreign_houses:  # population: the grid and house named in its forms
            fields |= {"grid": ("45010800100101", "45020300100101")[i % 2],
                       "house": w.foreign_houses[i % len(w.foreign_houses)]}  # fmt: skip
        out.append(fields)
    return out


# --- the world -----------------------------------------------------------------------------------


def build_world(kernel: Any, grid: Any, users: Any) -> World:
    from yiwang_notice import service as notices

    w = World()
    for code, name, kind in NODES:
        grid.node(code, name)
        if kind != "own":
            w.foreign_codes.append(code)
    w.own_codes = [OWN, "450107001", "45010700100101"]
    # sibling, parent, cousin, other city (the path tries every foreign node)
    w.kind_codes = ["450108", "4501", "450203", "4502"]
    w.own_path = grid.get(OWN).path
    with kernel.db.write() as s:
        s.add(Role(name="matrix_viewer", title="只读网格"))
        s.flush()
        kernel.authz.grant(s, "matrix_viewer", "grid.view")
    kernel.authz.reload()
    for i, (role, code) in enumerate(FOREIGN_USERS):
        u = users.make(role, code, username=f"waiyu{i}")
        w.foreign_users.append(u.id)
    mixed = users.make("dispatcher", OWN, username="mixeduser", extra=(("dispatcher", "450108"),))
    target = users.make("matrix_viewer", "450107001", username="owntarget")
    w.own_users = [target.id, mixed.id]
    w.watched_users = [*w.foreign_users, mixed.id]
    with kernel.db.write() as s:
        s.execute(
            update(User)
            .where(User.id.in_(w.foreign_users))
            .values(display_name=f"{MARKER}外域用户")
        )  # type: ignore[union-attr, attr-defined]
        s.execute(update(User).where(User.id == w.foreign_users[0])  # type: ignore[arg-type]
                  .values(locked_until=utcnow() + timedelta(hours=1), failed_logins=0))  # fmt: skip
        rows = s.execute(select(Assignment.id, Assignment.user_id, Node.path)  # type: ignore[call-overload]
                         .join(Node, Node.id == Assignment.node_id).order_by(Assignment.id)).all()  # fmt: skip
        for aid, uid, path in rows:
            if uid in w.own_users and path.startswith(w.own_path):
                w.own_assignments.append(aid)
            elif uid in w.foreign_users:
                w.foreign_assignments.append(aid)
        # Foreign user i holds foreign assignment i; the mixed account's foreign one comes last.
        w.foreign_assignments += [
            a for a, u, p in rows if u == mixed.id and not p.startswith(w.own_path)
        ]
        for code in ("450108", "450108001", "450203", "4502", "440103"):
            n = notices.post(
                s,
                s.get(Node, grid.get(code).id),
                f"{MARKER}外域通知{code}",
                f"{MARKER}外域正文",
                author=f"{MARKER}",
            )
            w.foreign_notices.append(n.id or 0)
        own = notices.post(s, s.get(Node, grid.get(OWN).id), "本县通知", "本县正文", author="本县")
        w.own_notices = [own.id or 0]
        s.add(
            Organisation(
                node_id=grid.get("450108").id or 0, name=f"{MARKER}外域综治中心", kind="centre"
            )
        )
    if "org" in kernel.host.names:
        build_org_world(kernel, grid, w)
    if "population" in kernel.host.names:
        build_population_world(kernel, grid, w)
    build_case_world(kernel, grid, w)
    from yiwang.web import prefs

    with kernel.db.write() as s:  # a foreign user's saved query and column choice
        saved = prefs.save_filter(s, w.foreign_users[0], "cases.inbox", f"{MARKER}外域查询", "tab=all&area=450108")
        w.foreign_filters.append(saved.id)
        prefs.set_pref(s, w.foreign_users[0], "cases.inbox.columns", ["reporter"])
    from yiwang.notify.outbox import enqueue

    with kernel.db.write() as s:  # foreign users' messages (in-app and a failed SMS), and our own
        w.foreign_messages = enqueue(s, kernel, user_ids=w.foreign_users[:2], subject=f"{MARKER}外域消息",
                                            body="", channels=["outbox"])  # fmt: skip
        w.own_messages = enqueue(s, kernel, user_ids=w.own_users[:1], subject="本县消息", body="",
                                        channels=["outbox"])  # fmt: skip
    kernel.activation.set("notice", grid.get("440103"), False)  # a foreign explicit setting
    with kernel.db.write() as s:  # what foreign staff did: the audit trail must keep it foreign
        for i, code in enumerate(("450108", "4501", "450203", "4502")):
            who = audit.Actor(
                user_id=w.foreign_users[i], username=f"waiyu{i}", node_id=grid.get(code).id
            )
            audit.record(s, "admin.user.create", actor=who, object_type="user", object_id=f"{MARKER}{i}",
                         detail={"note": f"{MARKER}{code}"})  # fmt: skip
    w.roles = sorted(declared_roles(kernel)) + ["matrix_viewer"]
    w.plugins = [name for name in kernel.host.names if name != "yiwang"]
    return w


def build_org_world(kernel: Any, grid: Any, w: World) -> None:
    """Grid workers with a patrol each: one in the actor's county, two outside."""
    from yiwang_org import service as org

    with kernel.db.write() as s:
        for code, name, own in (("45010700100101", "本县网格员", True),
                                ("45010800100101", f"{MARKER}外域网格员", False),
                                ("45020300100101", f"{MARKER}外域网格员", False)):  # fmt: skip
            g = s.get(Node, grid.get(code).id)
            worker = org.add_worker(s, g, name, "13900000000", [g])
            patrol = org.start_patrol(s, worker, g)
            (w.own_workers if own else w.foreign_workers).append(worker.id or 0)
            (w.own_patrols if own else w.foreign_patrols).append(patrol.id or 0)
            org.add_device(s, worker, f"8600000000000{len(w.own_workers) + len(w.foreign_workers)}")
        w.foreign_orgs = [
            o for o, path in s.execute(select(Organisation.id, Node.path).join(Node, Node.id == Organisation.node_id))  # type: ignore[call-overload]
            if not path.startswith(w.own_path)
        ]  # fmt: skip
        for o, path in s.execute(select(Organisation.id, Node.path).join(Node, Node.id == Organisation.node_id)):  # type: ignore[call-overload]
            staff = org.add_staff(s, s.get_one(Organisation, o), f"{MARKER}机构人员", "13900000000", "干事")
            (w.own_staff if path.startswith(w.own_path) else w.foreign_staff).append(staff.id or 0)


def build_population_world(kernel: Any, grid: Any, w: World) -> None:
    """A person with a phone in a building per place: one in the actor's county, two outside."""
    from yiwang_population import households
    from yiwang_population import service as population
    from yiwang_population.hooks import checksum

    with kernel.db.write() as s:
        for i, (code, name, own) in enumerate((("45010700100101", "本县居民", True),
                                               ("45010800100101", f"{MARKER}外域居民", False),
                                               ("45020300100101", f"{MARKER}外域居民", False))):  # fmt: skip
            g = s.get(Node, grid.get(code).id)
            body = f"{code[:6]}19800101{i:03d}"
            person = population.register(
                s, g, name=name, id_number=body + checksum(body), phone="13900000000"
            ).person
            assert person is not None
            building = population.add_building(s, g, f"{name}楼", floors=2)
            house = population.add_house(s, building, "101")
            residence = population.move_in(s, person, house)
            household = households.create_household(s, g, f"H{i}", head=person, house=house)
            [(member, _)] = households.members(s, household)
            (w.own_persons if own else w.foreign_persons).append(person.id or 0)
            (w.own_buildings if own else w.foreign_buildings).append(building.id or 0)
            (w.own_houses if own else w.foreign_houses).append(house.id or 0)
            (w.own_households if own else w.foreign_households).append(household.id or 0)
            (w.own_members if own else w.foreign_members).append(member.id or 0)
            (w.own_residences if own else w.foreign_residences).append(residence.id or 0)
        # the foreign person of 兴宁 registered again in 鱼峰: a claim between two foreign grids
        claim = population.register(s, s.get(Node, grid.get("45020300100101").id), name=f"{MARKER}外域申报",
                                    id_number="45010819800101001" + checksum("45010819800101001")).claim  # fmt: skip
        assert claim is not None
        w.foreign_claims.append(claim.id or 0)
        # Import runs belong to the user who uploaded them: every actor's run is someone else's.
        from yiwang_population.models import ImportRun

        for code in ("45010700100101", "45010800100101"):
            run = ImportRun(
                user_id=w.foreign_users[0], node_id=grid.get(code).id or 0, filename="x.xlsx"
            )
            s.add(run)
            s.flush()
            w.foreign_runs.append(run.id or 0)


def build_case_world(kernel: Any, grid: Any, w: World) -> None:
    """A case with a photo and a routing rule in the actor's county, and in two places outside."""
    import io

    from PIL import Image

    from yiwang.cases import engine
    from yiwang.cases.models import RoutingRule
    from yiwang.files import files_of

    photo = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(photo, format="PNG")
    with kernel.db.write() as s:
        for code, name, kind, department in (
            (OWN, "本县综治中心", "centre", ""), (OWN, "本县公安分局", "department", "police"),
            ("450107001001", "本县网格工作站", "station", ""),
            ("450108", f"{MARKER}外域公安分局", "department", "police"),
            ("450108001001", f"{MARKER}外域网格工作站", "station", ""),
        ):  # fmt: skip
            s.add(
                Organisation(
                    node_id=grid.get(code).id or 0, name=name, kind=kind, department=department
                )
            )
    for code, own in (
        ("45010700100101", True),
        ("45010800100101", False),
        ("45020300100101", False),
    ):
        label = "本县" if own else f"{MARKER}外域"
        node = grid.get(code)
        new = engine.NewCase(case_type="general", title=f"{label}事件", node_id=node.id or 0, channel="web",
                             description=f"{label}描述", reporter_name=f"{label}群众", reporter_phone="13900000000",
                             address=f"{label}地址", files=[engine.Upload("photo.png", photo.getvalue())])  # fmt: skip
        with kernel.db.write() as s:
            case, _ = engine.report(kernel, s, engine.Doer.system(), new)
            files = [f.id or 0 for f in files_of(s, "case", case.id or 0)]
            rule_node = grid.get(OWN if own else code[:6])
            rule = RoutingRule(node_id=rule_node.id or 0, node_path=rule_node.path, scale="major", level=4,
                               note=f"{label}规则")  # fmt: skip
            s.add(rule)
            s.flush()
        (w.own_cases if own else w.foreign_cases).append(case.id or 0)
        (w.own_files if own else w.foreign_files).extend(files)
        (w.own_rules if own else w.foreign_rules).append(rule.id or 0)


def foreign_state(kernel: Any, w: World) -> str:
    """A digest of everything outside the actor's subtree that a request might change."""
    from yiwang_notice.models import Notice

    outside = lambda col: not_(within(col, w.own_path))  # noqa: E731
    with kernel.db.read() as s:
        parts: list[Any] = [
            s.execute(
                select(
                    User.id,
                    User.username,
                    User.display_name,
                    User.password_hash,
                    User.active,  # type: ignore[call-overload]
                    User.must_change_password,
                    User.failed_logins,
                    User.locked_until,
                    User.totp_enabled,
                )
                .where(User.id.in_(w.watched_users))
                .order_by(User.id)
            ).all(),  # type: ignore[union-attr, attr-defined]
            s.execute(
                select(AuthSession.user_id).where(AuthSession.user_id.in_(w.watched_users))
            ).all(),  # type: ignore[call-overload, attr-defined]
            s.execute(
                select(Assignment.id, Assignment.user_id, Assignment.role, Assignment.node_id)  # type: ignore[call-overload]
                .join(Node, Node.id == Assignment.node_id)
                .where(outside(Node.path) | Assignment.user_id.in_(w.watched_users))  # type: ignore[attr-defined]
                .order_by(Assignment.id)
            ).all(),  # fmt: skip
            s.execute(
                select(PolicyLine.ptype, PolicyLine.v0, PolicyLine.v1, PolicyLine.v2).order_by(
                    PolicyLine.id
                )
            ).all(),  # type: ignore[call-overload]
            s.execute(select(Role.name, Role.title, Role.admin_kind).order_by(Role.name)).all(),  # type: ignore[call-overload]
            s.execute(
                select(PluginActivation.node_id, PluginActivation.plugin, PluginActivation.active)  # type: ignore[call-overload]
                .join(Node, Node.id == PluginActivation.node_id)
                .where(outside(Node.path))
                .order_by(PluginActivation.node_id)
            ).all(),  # fmt: skip
            s.execute(
                select(Notice.id, Notice.title, Notice.body, Notice.node_path)  # type: ignore[call-overload]
                .where(outside(Notice.node_path))
                .order_by(Notice.id)
            ).all(),  # fmt: skip
            s.execute(
                select(Node.id, Node.code, Node.name, Node.path)
                .where(outside(Node.path))
                .order_by(Node.id)
            ).all(),  # type: ignore[call-overload]
            s.execute(
                select(Organisation.id, Organisation.name, Organisation.node_id).order_by(
                    Organisation.id
                )
            ).all(),  # type: ignore[call-overload]
            *case_state(s, outside),
            *pref_state(s, w),
        ]
        if "org" in kernel.host.names:
            from yiwang_org.models import Device, GridAssignment, Patrol, PatrolPoint, Staff, Worker

            parts += [
                s.execute(
                    select(Staff.id, Staff.name, Staff.org_id, Staff.node_path)  # type: ignore[call-overload]
                    .where(outside(Staff.node_path))
                    .order_by(Staff.id)
                ).all(),  # fmt: skip
                s.execute(
                    select(Device.id, Device.imei, Device.worker_id)  # type: ignore[call-overload]
                    .where(outside(Device.node_path))
                    .order_by(Device.id)
                ).all(),  # fmt: skip
                s.execute(
                    select(GridAssignment.worker_id, GridAssignment.grid_id)  # type: ignore[call-overload]
                    .where(outside(GridAssignment.node_path))
                    .order_by(GridAssignment.id)
                ).all(),  # fmt: skip
                s.execute(
                    select(Worker.id, Worker.name, Worker.node_path, Worker.active, Worker.user_id)  # type: ignore[call-overload]
                    .where(outside(Worker.node_path))
                    .order_by(Worker.id)
                ).all(),  # fmt: skip
                s.execute(
                    select(Patrol.id, Patrol.ended_at, Patrol.point_count, Patrol.node_path)  # type: ignore[call-overload]
                    .where(outside(Patrol.node_path))
                    .order_by(Patrol.id)
                ).all(),  # fmt: skip
                s.execute(
                    select(PatrolPoint.id)
                    .join(Patrol, Patrol.id == PatrolPoint.patrol_id)  # type: ignore[call-overload]
                    .where(outside(Patrol.node_path))
                    .order_by(PatrolPoint.id)
                ).all(),  # fmt: skip
            ]
        if "population" in kernel.host.names:
            from yiwang_population.models import (
                Building,
                Claim,
                House,
                Household,
                Member,
                Person,
                Residence,
                Transfer,
            )

            parts += [
                s.execute(
                    select(House.id, House.number, House.use, House.owner, House.node_path)  # type: ignore[call-overload]
                    .where(outside(House.node_path))
                    .order_by(House.id)
                ).all(),  # fmt: skip
                s.execute(
                    select(Household.id, Household.number, Household.head_id, Household.house_id)  # type: ignore[call-overload]
                    .where(outside(Household.node_path))
                    .order_by(Household.id)
                ).all(),  # fmt: skip
                s.execute(
                    select(Member.id, Member.relation, Member.left)  # type: ignore[call-overload]
                    .where(outside(Member.node_path))
                    .order_by(Member.id)
                ).all(),  # fmt: skip
                s.execute(
                    select(Claim.id, Claim.status, Claim.holder_path)  # type: ignore[call-overload]
                    .where(outside(Claim.node_path) | outside(Claim.holder_path))
                    .order_by(Claim.id)
                ).all(),  # fmt: skip
                s.execute(select(Transfer.id).order_by(Transfer.id)).all(),  # type: ignore[call-overload]
                s.execute(
                    select(Person.id, Person.name, Person.kind, Person.node_path)  # type: ignore[call-overload]
                    .where(outside(Person.node_path))
                    .order_by(Person.id)
                ).all(),  # fmt: skip
                s.execute(
                    select(Building.id, Building.address, Building.node_path)  # type: ignore[call-overload]
                    .where(outside(Building.node_path))
                    .order_by(Building.id)
                ).all(),  # fmt: skip
                s.execute(
                    select(Residence.id, Residence.moved_out)  # type: ignore[call-overload]
                    .where(outside(Residence.node_path))
                    .order_by(Residence.id)
                ).all(),  # fmt: skip
            ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def case_state(s: Any, outside: Callable[[Any], Any]) -> list[Any]:
    """Cases, their timelines, copies, attachments and routing rules outside the subtree."""
    from yiwang.cases.models import Case, CaseCopy, CaseStep, RoutingRule
    from yiwang.files import StoredFile

    foreign = select(Case.id).where(outside(Case.node_path) & outside(Case.org_path))  # type: ignore[call-overload]
    return [
        s.execute(
            select(Case.id, Case.state, Case.version, Case.org_id, Case.title, Case.assignee_id)  # type: ignore[call-overload]
            .where(Case.id.in_(foreign))
            .order_by(Case.id)
        ).all(),  # type: ignore[union-attr, attr-defined]
        s.execute(
            select(CaseStep.id).where(CaseStep.case_id.in_(foreign)).order_by(CaseStep.id)
        ).all(),  # type: ignore[call-overload, attr-defined]
        s.execute(select(CaseCopy.case_id, CaseCopy.org_id).order_by(CaseCopy.id)).all(),  # type: ignore[call-overload]
        s.execute(
            select(StoredFile.id, StoredFile.owner_id)
            .where(outside(StoredFile.node_path))
            .order_by(StoredFile.id)
        ).all(),  # type: ignore[call-overload]
        s.execute(
            select(
                RoutingRule.id, RoutingRule.level, RoutingRule.note, RoutingRule.copy_departments
            )  # type: ignore[call-overload]
            .where(outside(RoutingRule.node_path))
            .order_by(RoutingRule.id)
        ).all(),  # fmt: skip
    ]


def pref_state(s: Any, w: World) -> list[Any]:
    """The saved queries and preferences of the foreign (watched) users."""
    from yiwang.web.prefs import UiPref, UiSavedFilter

    return [
        s.execute(
            select(UiSavedFilter.id, UiSavedFilter.user_id, UiSavedFilter.name, UiSavedFilter.query)  # type: ignore[call-overload]
            .where(UiSavedFilter.user_id.in_(w.watched_users))  # type: ignore[attr-defined]
            .order_by(UiSavedFilter.id)
        ).all(),  # fmt: skip
        s.execute(
            select(UiPref.user_id, UiPref.key, UiPref.value)  # type: ignore[call-overload]
            .where(UiPref.user_id.in_(w.watched_users))  # type: ignore[attr-defined]
            .order_by(UiPref.user_id, UiPref.key)
        ).all(),  # fmt: skip
    ]


# --- routes --------------------------------------------------------------------------------------


def unknown_params(routes: list[tuple[str, Route]]) -> list[tuple[str, str]]:
    """(route, parameter) for every path parameter the matrix has no foreign values for."""
    return sorted(
        {(path, p) for path, _ in routes for p in PARAM.findall(path) if p not in PATH_PARAMS}
    )


@dataclass(frozen=True)
class Attempt:
    method: str
    url: str
    where: str  # "path" | "query" | "form" | "json"
    query: dict[str, Any]
    body: dict[str, Any] | None
    #: Foreign node codes the request itself carries (may be echoed back).
    carried: frozenset[str]


def attempts(method: str, template: str, w: World) -> Iterator[Attempt]:
    params = PARAM.findall(template)
    options = {p: PATH_PARAMS[p](w) for p in params}
    own = {p: (mine[0] if mine else foreign[0]) for p, (foreign, mine) in options.items()}
    unsafe = method in UNSAFE

    def body() -> dict[str, Any] | None:
        return baseline_fields(w) if unsafe else None

    def carried(values: dict[str, Any]) -> frozenset[str]:
        return frozenset(str(v) for v in values.values())

    # 1. the path: each parameter foreign in turn (the others own), then all foreign together
    combos: list[dict[str, Any]] = []
    for p in params:
        others = [q for q in params if q != p]
        for mine in itertools.product(*(options[q][1] or options[q][0][:1] for q in others)):
            combos += [{**dict(zip(others, mine, strict=True)), p: v} for v in options[p][0]]
    if len(params) > 1:
        combos += [dict(zip(params, values, strict=True))
                   for values in zip(*(options[p][0] for p in params), strict=False)]  # fmt: skip
    for values in combos:
        yield Attempt(method, fill(template, values), "path", {}, body(), carried(values))
    url = fill(template, own)
    # 2. the query: ?node= at each kind of foreign place, the other id names, foreign names
    for name, value in node_fields(w):
        yield Attempt(method, url, "query", {name: value}, body(), carried({name: value}))
    for fields in other_fields(w):
        yield Attempt(method, url, "query", fields, body(), carried(fields))
    if not unsafe:
        yield Attempt(method, url, "query", {"q": FOREIGN_WORD}, None, frozenset())
        return
    # 3. and 4. a form body and a JSON body: the node, then the other id names
    for where in ("form", "json"):
        for name, value in node_fields(w):
            yield Attempt(
                method, url, where, {}, {**baseline_fields(w), name: value}, carried({name: value})
            )
        for fields in other_fields(w):
            yield Attempt(method, url, where, {}, {**baseline_fields(w), **fields}, carried(fields))


# --- the matrix -----------------------------------------------------------------------------------


async def log_in(app: Any, username: str) -> tuple[httpx.AsyncClient, str]:
    """A client of its own (cookie jar) logged in through the login form, and its CSRF token."""
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://testserver",
    )
    page = await client.get("/login")
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert form_token
    done = await client.post("/login", data={"username": username, "password": PASSWORD,
                                             "csrf_token": form_token.group(1)})  # fmt: skip
    assert done.status_code == 303, username
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', (await client.get("/account/password")).text)
    assert token, username
    return client, token.group(1)


@dataclass
class Tally:
    total: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    places: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


async def run_matrix(app: Any, kernel: Any, users: Any, w: World, routes: list[tuple[str, Route]],
                     roles: list[str]) -> Tally:  # fmt: skip
    """Every route × method × role × attempt; the foreign state is compared after each batch
    (GET included: a GET never changes anything)."""
    tally = Tally()
    codes = [(c, re.compile(rf"(?<!\d){c}(?!\d)")) for c in w.foreign_codes if len(c) >= 6]
    clients: dict[str, tuple[httpx.AsyncClient, str]] = {}
    for role in roles:
        actor = await asyncio.to_thread(users.make, role, OWN, username=f"actor_{role}")
        clients[role] = await log_in(app, actor.username)
    try:
        for path, route in routes:
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                if (method, path) in SELF_ONLY:
                    continue
                planned = list(attempts(method, path, w))
                check_codes = codes if permission_of(route.endpoint) not in ECHOES_REQUESTS else []
                if path.startswith(SELF_SERVICE):
                    firsts = {a.where: a for a in reversed(planned)}
                    planned = [a for a in planned if a.where == "path"] + [
                        firsts[k] for k in sorted(firsts) if k != "path"
                    ]
                for role in roles:
                    client, token = clients[role]
                    before = await asyncio.to_thread(foreign_state, kernel, w)
                    for a in planned:
                        await one(client, token, role, a, check_codes, tally)
                    if await asyncio.to_thread(foreign_state, kernel, w) != before:
                        tally.failures.append(f"辖区外数据被修改: {role} {method} {path}")
                    if len(tally.failures) >= MAX_FAILURES:
                        return tally
    finally:
        for client, _ in clients.values():
            await client.aclose()
    return tally


async def one(client: httpx.AsyncClient, token: str, role: str, a: Attempt,
              codes: list[tuple[str, re.Pattern[str]]], tally: Tally) -> None:  # fmt: skip
    headers = {"X-CSRF-Token": token} if a.method in UNSAFE else {}
    kwargs: dict[str, Any] = {"params": a.query, "headers": headers}
    if a.body is not None and a.where == "json":
        kwargs["content"] = json.dumps(a.body)
        headers["Content-Type"] = "application/json"
    elif a.body is not None:
        kwargs["data"] = {k: str(v) for k, v in a.body.items()}
    r = await client.request(a.method, a.url, **kwargs)
    tally.total += 1
    tally.statuses[r.status_code] += 1
    tally.places[a.where] += 1
    what = f"{role} {a.method} {a.url} {a.where} {a.query or ''} → {r.status_code}"
    if r.status_code >= 500:
        tally.failures.append(f"服务器错误: {what}")
    if a.where == "path" and r.status_code < 400:
        tally.failures.append(f"路径中的辖区外对象被受理: {what}")
    text = r.text + r.headers.get("location", "")
    found = [MARKER] if MARKER.lower() in text.lower() else []
    found += [c for c, rx in codes if c not in a.carried and rx.search(text)]
    if found:
        tally.failures.append(f"泄露辖区外数据 {found}: {what}")


@pytest.mark.sqlite_only
@pytest.mark.with_plugins("notice", "org", "population")
@pytest.mark.usefixtures("cheap_passwords")
def test_no_route_lets_any_role_reach_outside_its_subtree(
    app: Any,
    kernel: Any,
    grid: Any,
    users: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = time.monotonic()
    kernel.sync_declarations()
    w = build_world(kernel, grid, users)
    routes = sorted(all_routes(app.routes), key=lambda r: r[0])
    unknown = unknown_params(routes)
    assert unknown == [], (
        f"路由的路径参数不在越权矩阵中: {unknown} —— 请在 tests/test_escalation.py 的 PATH_PARAMS 中"
        "为它提供辖区外对象的取值"
    )
    roles = sorted(declared_roles(kernel))
    tally = asyncio.run(run_matrix(app, kernel, users, w, routes, roles))
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\n越权矩阵: {tally.total} 次尝试（{len(routes)} 条路由 × {len(roles)} 个角色；"
            f"按位置 {dict(tally.places)}；状态码 {dict(sorted(tally.statuses.items()))}），"
            f"成功 {len(tally.failures)} 次，用时 {elapsed:.1f} 秒"
        )
    assert tally.failures == [], "\n".join(tally.failures)
    assert tally.total >= 5000


# --- the matrix itself is tested: a plugin that ignores the subtree must be caught ---------------


def _leaky_plugin() -> Any:
    import types

    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, RedirectResponse, Response

    from yiwang.api import PluginSpec, hookimpl, read, requires, write
    from yiwang.grid import tree

    @requires("grid.view")
    def show(request: Request) -> Response:  # no require(): any node by code
        with read(request) as s:
            return PlainTextResponse(tree.by_code(s, request.path_params["code"]).name)

    @requires("grid.view")
    async def rename(request: Request) -> Response:  # no require() on the node in the form
        code = str((await request.form()).get("node", ""))
        with write(request) as s:
            node = tree.by_code(s, code)
            node.name += "改"
            s.add(node)
        return RedirectResponse("/", status_code=303)

    hooks = types.SimpleNamespace()

    @hookimpl
    def yiwang_routes() -> list[Route]:
        return [Route("/{code:str}", show), Route("/rename", rename, methods=["POST"])]

    hooks.yiwang_routes = yiwang_routes
    return PluginSpec(name="leaky", version="1.0", title="漏洞示例", api=">=1.0,<2", hooks=hooks)


LEAKY = _leaky_plugin()


@pytest.mark.sqlite_only
@pytest.mark.with_plugins("notice", LEAKY)
@pytest.mark.usefixtures("cheap_passwords")
def test_the_matrix_catches_a_route_that_ignores_the_subtree(
    app: Any, kernel: Any, grid: Any, users: Any
) -> None:
    kernel.sync_declarations()
    w = build_world(kernel, grid, users)
    routes = [r for r in all_routes(app.routes) if r[0].startswith("/p/leaky/")]
    tally = asyncio.run(
        run_matrix(app, kernel, users, w, sorted(routes, key=lambda r: r[0]), ["county_staff"])
    )
    kinds = {f.split(" ")[0].split(":")[0] for f in tally.failures}
    assert kinds >= {"路径中的辖区外对象被受理", "泄露辖区外数据", "辖区外数据被修改"}, (
        tally.failures
    )
    assert unknown_params([("/p/x/{thing_id:int}", Route("/", show_nothing))]) == [
        ("/p/x/{thing_id:int}", "thing_id")
    ]


def show_nothing(request: Any) -> None:  # pragma: no cover - never called
    raise AssertionError
