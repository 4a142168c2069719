"""Every page for every role: each GET route of the app (kernel and every installed plugin),
its path filled with real ids of a seeded net, requested by a user of each declared role (and by
someone not logged in). Every answer is 200, a redirect, 403 or 404 (401 on the phone API, which
wants its own token) — never a server error — and an HTML answer is a Chinese page.

And scope: two sibling counties are seeded alike — nodes, units, staff, cases in several states
with photos, routing rules, notices, workers and patrols, residents and buildings, messages —
every name in 甲 carrying 甲区/jiaqu and every name in 乙 carrying 乙区/yiqu. Every actor works in
甲 (at the level their role belongs to); no page any of them gets — with 甲's ids in the path or
with 乙's — shows a marker of 乙. So that this cannot pass by showing nothing, 甲's marker must
show on the lists of cases, nodes and each plugin's objects.

A route whose path parameter ``VALUES`` does not know fails the test: whoever adds one says here
where its ids come from. Runs on both backends.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select
from starlette.testclient import TestClient

from yiwang.cases import engine
from yiwang.grid.models import Node, Organisation
from yiwang.plugins.loader import discover
from yiwang.rbac.sync import declared_roles
from yiwang.testing.cases import Net
from yiwang.testing.routes import PARAM, all_routes, fill
from yiwang.web.context import is_api_path

PLUGINS = sorted(n for n, c in discover().items() if c.spec is not None and not c.errors)
OK = {200, 301, 302, 303, 307, 403, 404}
CJK = re.compile(r"[\u4e00-\u9fff]")
BROKEN = ("Traceback", "UndefinedError", "TemplateNotFound", "jinja2.exceptions")


@dataclass
class Side:
    """One county of the net and what was seeded in it."""

    county: str
    marker: str  # in every Chinese name
    latin: str  # in every username
    ids: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))

    @property
    def township(self) -> str:
        return self.county + "001"

    @property
    def community(self) -> str:
        return self.county + "001001"

    @property
    def grid(self) -> str:
        return self.county + "00100101"

    def markers(self) -> tuple[str, str]:
        return self.marker, self.latin


JIA = Side("450107", "甲区", "jiaqu")
YI = Side("450108", "乙区", "yiqu")

#: Path parameter → where its value comes from (``side.ids[...]``, or a constant).
VALUES: dict[str, Callable[[Side], list[Any]]] = {
    "code": lambda s: [s.county, s.community, s.grid],
    "case_id": lambda s: s.ids["case"],
    "file_id": lambda s: s.ids["file"],
    "user_id": lambda s: s.ids["user"],
    "rule_id": lambda s: s.ids["rule"],
    "notice_id": lambda s: s.ids["notice"],
    "worker_id": lambda s: s.ids["worker"],
    "staff_id": lambda s: s.ids["staff"],
    "patrol_id": lambda s: s.ids["patrol"],
    "person_id": lambda s: s.ids["person"],
    "building_id": lambda s: s.ids["building"],
    "house_id": lambda s: s.ids["house"],
    "household_id": lambda s: s.ids["household"],
    # A claim needs one ID in two grids of a side; the claim pages are covered by the plugin's
    # tests and the escalation matrix.
    "claim_id": lambda s: s.ids["claim"],
    "name": lambda s: ["cases.urgency"],
    "run_id": lambda s: s.ids["run"],
    "message_id": lambda s: s.ids["message"],
    "assignment_id": lambda s: s.ids["assignment"],
    "role": lambda s: ["grid_worker"],
    "plugin": lambda s: PLUGINS[:1],
    "fmt": lambda s: ["xlsx", "csv"],
    "action": lambda s: ["accept"],
    "job": lambda s: ["cases.clock"],
}
#: Where each role works in 甲 (others at the county).
PLACE = {"grid_worker": "grid", "mediator": "community", "community_staff": "community",
         "township_staff": "township"}  # fmt: skip


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 12), (90, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def seed(kernel: Any, grid: Any, users: Any, side: Side) -> None:
    """The same small world in ``side``'s county, every name marked."""
    m = side.marker
    nodes = {
        side.county: grid.node(side.county, f"{m}县"),
        side.township: grid.node(side.township, f"{m}街道"),
        side.community: grid.node(side.community, f"{m}社区"),
        side.grid: grid.node(side.grid, f"{m}第一网格"),
    }
    orgs = {
        "county": grid.org(nodes[side.county], f"{m}综治中心"),
        "police": grid.org(nodes[side.county], f"{m}公安分局", kind="department", department="police"),
        "station": grid.org(nodes[side.community], f"{m}网格工作站", kind="station"),
    }
    people = {
        "worker": users.make("grid_worker", side.grid, username=f"{side.latin}worker"),
        "station": users.make("community_staff", side.community, username=f"{side.latin}station"),
        "county": users.make("county_staff", side.county, username=f"{side.latin}county"),
    }
    from yiwang.auth.models import User
    from yiwang.rbac.models import Assignment

    with kernel.db.write() as s:
        for u in people.values():
            row = s.get(User, u.id)
            row.display_name = f"{m}{row.username}"
            s.add(row)
        side.ids["user"] += [u.id for u in people.values()]
        side.ids["assignment"] += list(s.execute(
            select(Assignment.id).where(Assignment.user_id.in_(side.ids["user"]))).scalars())  # type: ignore[attr-defined]  # fmt: skip
    net = Net(kernel, nodes, orgs, people)
    photo = [engine.Upload("现场.jpg", jpeg())]
    # One case waiting, one handled and waiting for verification, one closed and rated.
    for i, steps in enumerate(((), ("accept", "dispatch", "take", "feedback"),
                               ("accept", "dispatch", "take", "feedback", "verify_pass", "close"))):  # fmt: skip
        case = net.report("worker", title=f"{m}井盖缺失{i}", node_id=nodes[side.grid].id,
                          reporter_name=f"{m}群众", reporter_phone="13900000000", address=f"{m}人民路{i}号",
                          files=photo)  # fmt: skip
        for action in steps:
            who = {"accept": "station", "dispatch": "station", "take": "worker", "feedback": "worker",
                   "verify_pass": "station", "close": "station"}[action]  # fmt: skip
            extra: dict[str, Any] = {"opinion": f"{m}意见"}
            if action == "dispatch":
                extra["assignee"] = people["worker"].id
            if action == "feedback":
                extra["files"] = [engine.Upload("修复后.jpg", jpeg())]
            net.act(who, case, action, **extra)
        side.ids["case"].append(case.id)
    from yiwang.cases.models import RoutingRule
    from yiwang.files import files_of
    from yiwang.notify.outbox import enqueue

    with kernel.db.write() as s:
        side.ids["file"] += [f.id for f in files_of(s, "case", side.ids["case"][0])]
        county = nodes[side.county]
        rule = RoutingRule(node_id=county.id, node_path=county.path, scale="major", level=4, note=f"{m}规则")
        s.add(rule)
        s.flush()
        side.ids["rule"].append(rule.id)
        side.ids["message"] += enqueue(s, kernel, user_ids=side.ids["user"], subject=f"{m}消息",
                                       body=f"{m}正文", channels=["outbox"])  # fmt: skip
    names = kernel.host.names
    with kernel.db.write() as s:
        place = s.get(Node, nodes[side.county].id)
        g = s.get(Node, nodes[side.grid].id)
        if "notice" in names:
            from yiwang_notice import service as notices

            side.ids["notice"].append(notices.post(s, place, f"{m}通知", f"{m}正文", author=m).id)
        if "org" in names:
            from yiwang_org import service as org

            worker = org.add_worker(s, g, f"{m}巡查员", "13900000000", [g])
            side.ids["worker"].append(worker.id)
            station = s.get_one(Organisation, orgs["station"].id)
            side.ids["staff"].append(org.add_staff(s, station, f"{m}站长", "13900000000", "站长").id)
            side.ids["patrol"].append(org.start_patrol(s, worker, g).id)
        if "population" in names:
            from yiwang_population import service as population
            from yiwang_population.hooks import checksum
            from yiwang_population.models import ImportRun

            body = f"{side.county}19800101{len(side.latin):03d}"
            person = population.register(s, g, name=f"{m}居民", id_number=body + checksum(body),
                                         phone="13900000000").person  # fmt: skip
            from yiwang_population import households

            building = population.add_building(s, g, f"{m}幸福路1号", name=f"{m}楼", floors=2)
            house = population.add_house(s, building, "101")
            population.move_in(s, person, house)
            household = households.create_household(s, g, "0001", head=person, house=house)
            side.ids["person"].append(person.id)
            side.ids["building"].append(building.id)
            side.ids["house"].append(house.id)
            side.ids["household"].append(household.id)
            run = ImportRun(user_id=people["station"].id, node_id=g.id, filename=f"{side.latin}.xlsx")
            s.add(run)
            s.flush()
            side.ids["run"].append(run.id)


#: Queries a page is also asked with: what it needs to answer at all, and the lists' other tabs.
QUERIES = {
    "/api/cases/similar": ["?case_type=general&lat=22.8170&lon=108.3665"],
    "/cases/": ["", "?tab=all", "?tab=done", "?tab=all&state=closed"],
    "/api/cases": ["", "?tab=all"],
}


def urls(template: str, side: Side, *, every: bool = True) -> list[str]:
    """The template filled with ``side``'s values: each value of each parameter once (or only
    the first ones)."""
    params = PARAM.findall(template)
    queries = QUERIES.get(template, [""])
    if not params:
        return [template + q for q in queries]
    options = {p: VALUES[p](side) for p in params}
    if any(not v for v in options.values()):
        return []
    out = []
    for p in params:
        for value in options[p] if every else options[p][:1]:
            out.append(fill(template, {q: (value if q == p else options[q][0]) for q in params}))
    return sorted({u + q for u in out for q in queries})


def problems_of(response: Any, url: str, who: str, foreign: tuple[str, ...]) -> list[str]:
    what = f"{who} GET {url} → {response.status_code}"
    allowed = OK | ({401} if is_api_path(url.split("?")[0]) else set())
    out = []
    if response.status_code not in allowed:
        out.append(f"状态码不对: {what}: {response.text[:300]}")
    kind = response.headers.get("content-type", "")
    text = response.text if kind.startswith("text/") else ""
    if kind.startswith("application/json"):  # as the data, whether or not non-ASCII is escaped
        text = json.dumps(response.json(), ensure_ascii=False)
    if kind.startswith("text/html"):
        if not CJK.search(text):
            out.append(f"页面没有中文: {what}")
        if response.status_code == 200 and "<html" in text and 'lang="zh-CN"' not in text:
            out.append(f"页面未声明 lang=zh-CN: {what}")
        out += [f"页面出现模板错误 {b}: {what}" for b in BROKEN if b in text]
    seen = text + response.headers.get("location", "") + response.headers.get("content-disposition", "")
    if not text and response.status_code == 200:  # files: xlsx, csv, images
        seen += response.content.decode("utf-8", "ignore")
    leaked = [mk for mk in foreign if mk in seen]
    if leaked:
        out.append(f"出现辖区外（乙）的数据 {leaked}: {what}")
    return out


@pytest.mark.with_plugins(*PLUGINS)
def test_every_page_renders_for_every_role_and_shows_only_its_subtree(
    cheap_passwords: None, app: Any, kernel: Any, grid: Any, users: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    kernel.sync_declarations()
    grid.node("4501", "南宁市")
    seed(kernel, grid, users, JIA)
    seed(kernel, grid, users, YI)
    routes = sorted(
        (path, r) for path, r in all_routes(app.routes) if "GET" in (r.methods or ())
    )
    unknown = sorted({(path, p) for path, _ in routes for p in PARAM.findall(path) if p not in VALUES})
    assert unknown == [], (
        f"这些路由的路径参数没有取值: {unknown} —— 请在 tests/test_pages_every_role.py 的 VALUES 中"
        "说明其编号从种子数据的哪里来"
    )
    actors: dict[str, TestClient] = {}
    with TestClient(app, raise_server_exceptions=False) as anonymous:
        actors["未登录"] = anonymous
        for role in sorted(declared_roles(kernel)):
            where = getattr(JIA, PLACE.get(role, "county"))
            user = users.make(role, where, username=f"actor{role.replace('_', '')}")
            client = TestClient(app, raise_server_exceptions=False)
            client.__enter__()
            assert users.login(client, user.username).status_code in (200, 303), role
            actors[role] = client
        failures: list[str] = []
        shown: dict[str, set[str]] = defaultdict(set)  # route → actors who saw 甲's marker there
        total = 0
        try:
            for path, _route in routes:
                # 甲's pages with each of its objects; 乙's objects once (the escalation matrix
                # tries them all): refused, and nothing of 乙 in the refusal.
                planned = urls(path, JIA) + (urls(path, YI, every=False) if PARAM.search(path) else [])
                for who, client in actors.items():
                    for url in planned:
                        response = client.get(url, follow_redirects=False)
                        total += 1
                        failures += problems_of(response, url, who, YI.markers())
                        if JIA.marker in response.text:
                            shown[path].add(who)
        finally:
            for who, client in actors.items():
                if who != "未登录":
                    client.__exit__(None, None, None)
    with capsys.disabled():
        print(f"\n每页每角色: {len(routes)} 条 GET 路由 × {len(actors)} 类用户，{total} 次请求，"
              f"{len(failures)} 个问题，用时 {time.monotonic() - started:.1f} 秒")  # fmt: skip
    assert failures == [], "\n".join(failures[:60])
    # Not vacuous: the lists show 甲's own data to those who work with it.
    lists = ["/cases/", "/grid/{code:str}", "/notifications"]
    lists += [f"/p/{p}/" for p in ("notice", "org", "population") if p in kernel.host.names]
    assert [p for p in lists if not shown.get(p)] == [], dict(shown)
    assert {"county_staff", "grid_worker", "community_staff"} <= shown["/cases/"]
