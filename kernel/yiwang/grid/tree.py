"""Operations on the net: look-ups, children, subtrees, creating and moving nodes.

Every function takes the caller's session and never commits: the caller's unit of work decides.
Lists use Core selects into light rows (no ORM hydration on hot paths).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, and_, bindparam, func, literal, select, text, update
from sqlmodel import Session

from yiwang.errors import NotFound, ValidationError
from yiwang.grid import codes
from yiwang.grid.levels import Level
from yiwang.grid.models import Node, utcnow
from yiwang.pinyin import pinyin_initials
from yiwang.settings import GridCodeRules

#: Ancestor column holding the node's ancestor at each level (the unit level has none).
LEVEL_COLUMN: dict[Level, str] = {
    Level.PROVINCE: "province_id",
    Level.CITY: "city_id",
    Level.COUNTY: "county_id",
    Level.TOWNSHIP: "township_id",
    Level.COMMUNITY: "community_id",
    Level.GRID: "grid_id",
}

T = Node.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class NodeRow:
    """A node as lists show it."""

    id: int
    code: str
    name: str
    level: int
    kind: str
    parent_id: int | None
    path: str
    child_count: int
    grid_count: int

    @property
    def level_label(self) -> str:
        return Level(self.level).label


ROW_COLUMNS = (
    T.c.id, T.c.code, T.c.name, T.c.level, T.c.kind, T.c.parent_id, T.c.path,
    T.c.child_count, T.c.grid_count,
)  # fmt: skip


# --- paths -------------------------------------------------------------------------------------


def path_upper(path: str) -> str:
    """Smallest string above every path in the subtree: '/' (0x2F) is followed by '0' (0x30)."""
    return path[:-1] + "0"


def is_within(path: str, ancestor_path: str) -> bool:
    """O(1) subtree membership: is the node at ``path`` inside (or equal to) ``ancestor_path``?"""
    return path.startswith(ancestor_path)


def ancestor_ids(path: str) -> list[int]:
    """Ids from the root down to the node itself."""
    return [int(part) for part in path.strip("/").split("/")]


def within(column: Any, path: str) -> ColumnElement[bool]:
    """SQL filter: ``column`` (a path column) lies in the subtree at ``path`` — a range scan."""
    return and_(column >= path, column < path_upper(path))


# --- reads -------------------------------------------------------------------------------------


def get(session: Session, node_id: int) -> Node:
    node = session.get(Node, node_id)
    if node is None:
        raise NotFound(f"节点 {node_id} 不存在")
    return node


def by_code(session: Session, code: str) -> Node:
    node = session.scalars(select(Node).where(Node.code == code)).first()  # type: ignore[arg-type]
    if node is None:
        raise NotFound(f"编码为 {code} 的节点不存在")
    return node


def find_code(session: Session, code: str) -> Node | None:
    try:
        return by_code(session, code)
    except NotFound:
        return None


# Built once: constructing a select() costs more than running it on the hot page paths.
_CHILDREN = select(*ROW_COLUMNS).where(T.c.parent_id == bindparam("parent")).order_by(T.c.code)
_ROOTS = select(*ROW_COLUMNS).where(T.c.parent_id.is_(None)).order_by(T.c.code)
BY_CODE = select(*ROW_COLUMNS).where(T.c.code == bindparam("code"))
BY_ID = select(*ROW_COLUMNS).where(T.c.id == bindparam("id"))


def children(session: Session, parent_id: int | None) -> list[NodeRow]:
    """Direct children ordered by code (roots when ``parent_id`` is None), with their counts."""
    conn = session.connection()
    rows = conn.execute(_ROOTS) if parent_id is None else conn.execute(_CHILDREN, {"parent": parent_id})
    return [NodeRow(*r) for r in rows]


def ancestors(session: Session, node: Node | NodeRow) -> list[NodeRow]:
    """From the root down to ``node``'s parent."""
    ids = ancestor_ids(node.path)[:-1]
    if not ids:
        return []
    rows = session.connection().execute(select(*ROW_COLUMNS).where(T.c.id.in_(ids)))
    by_id = {r.id: NodeRow(*r) for r in rows}
    return [by_id[i] for i in ids]


def subtree_count(session: Session, node: Node, level: Level | None = None) -> int:
    stmt = select(func.count()).select_from(T).where(within(T.c.path, node.path))
    if level is not None:
        stmt = stmt.where(T.c.level == int(level))
    return int(session.connection().execute(stmt).scalar_one())


def search(
    session: Session, q: str, limit: int = 20, under: str | None = None, scope: Any = None
) -> list[NodeRow]:
    """Nodes whose code starts with ``q`` or whose name contains it, inside ``under`` (a path)
    and ``scope`` (an SQL condition, e.g. the user's data scope) when given."""
    q = q.strip()
    if not q:
        return []
    if q.isdigit():
        cond = T.c.code.like(q.replace("%", "") + "%")
    else:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        cond = T.c.name.like(f"%{escaped}%", escape="\\")
    stmt = select(*ROW_COLUMNS).where(cond)
    if under:
        stmt = stmt.where(within(T.c.path, under))
    if scope is not None:
        stmt = stmt.where(scope)
    rows = session.connection().execute(stmt.order_by(T.c.level, T.c.code).limit(limit))
    return [NodeRow(*r) for r in rows]


# --- writes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewNode:
    code: str
    name: str
    level: Level
    parent_code: str | None
    kind: str = ""
    geometry: str | None = None
    lat: float | None = None
    lon: float | None = None


def check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise codes.CodeError("名称为空")
    if len(name) > 100:
        raise codes.CodeError(f"名称过长（{len(name)} 字，最多 100 字）")
    if any(ord(ch) < 32 for ch in name):
        raise codes.CodeError("名称含有控制字符")
    return name


def reserve_ids(session: Session, n: int) -> list[int]:
    """Ids for ``n`` new nodes, so paths can be computed before a bulk insert.

    PostgreSQL draws them from the id sequence; SQLite (whose write lock we hold) counts up
    from the current maximum.
    """
    if n <= 0:
        return []
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        seq = conn.execute(text("SELECT pg_get_serial_sequence('grid_node', 'id')")).scalar_one()
        rows = conn.execute(
            text("SELECT nextval(CAST(:seq AS regclass)) FROM generate_series(1, :n)"),
            {"seq": seq, "n": n},
        )
        return [int(r[0]) for r in rows]
    start = int(conn.execute(select(func.coalesce(func.max(T.c.id), 0))).scalar_one()) + 1
    return list(range(start, start + n))


def _ancestor_values(parent: dict[str, Any] | None) -> dict[str, Any]:
    return {col: (parent[col] if parent else None) for col in LEVEL_COLUMN.values()}


def bulk_create(
    session: Session,
    new: Sequence[NewNode],
    rules: GridCodeRules,
    labels: Sequence[str] | None = None,
    *,
    check_only: bool = False,
) -> list[int]:
    """Insert many nodes at once, parents before children; validates everything first.

    Parents may already exist or come earlier in ``new``. Raises ValidationError listing every
    problem (each prefixed with its entry of ``labels``, e.g. "第 5 行") and writes nothing when
    any row is wrong. Returns the new ids in input order; with ``check_only``, validates, writes
    nothing and returns [].
    """
    problems: list[str] = []
    codes_in = [n.code for n in new]
    wanted_parents = {n.parent_code for n in new if n.parent_code} - set(codes_in)
    existing: dict[str, dict[str, Any]] = {}
    conn = session.connection()
    all_codes = list(wanted_parents | set(codes_in))
    cols = [T.c.id, T.c.code, T.c.level, T.c.path, T.c.depth] + [
        T.c[c] for c in LEVEL_COLUMN.values()
    ]
    for start in range(0, len(all_codes), 500):
        chunk = all_codes[start : start + 500]
        for r in conn.execute(select(*cols).where(T.c.code.in_(chunk))):
            existing[r.code] = dict(r._mapping)
    # Placeholder ids when only checking: they are never written.
    ids = list(range(-len(new), 0)) if check_only else reserve_ids(session, len(new))
    made: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for i, (item, node_id) in enumerate(zip(new, ids, strict=True)):
        where = labels[i] if labels else f"第 {i + 1} 个节点（{item.code}）"
        if item.code in existing or item.code in made:
            problems.append(f"{where}: 编码已存在")
            continue
        parent = None
        if item.parent_code:
            parent = made.get(item.parent_code) or existing.get(item.parent_code)
            if parent is None:
                problems.append(f"{where}: 上级编码 {item.parent_code} 不存在")
                continue
        try:
            name = check_name(item.name)
            info = codes.validate(
                item.code,
                item.level,
                (item.parent_code, Level(parent["level"])) if parent and item.parent_code else None,
                rules,
            )
        except codes.CodeError as exc:
            problems.append(f"{where}: {exc}")
            continue
        values = _ancestor_values(parent)
        if item.level in LEVEL_COLUMN:
            values[LEVEL_COLUMN[item.level]] = node_id
        row = {
            "id": node_id,
            "code": item.code,
            "name": name,
            "initials": pinyin_initials(name),
            "level": int(item.level),
            "kind": item.kind or info.kind,
            "parent_id": parent["id"] if parent else None,
            "path": (parent["path"] if parent else "/") + f"{node_id}/",
            "depth": (parent["depth"] if parent else 0) + 1,
            "child_count": 0,
            "grid_count": 0,
            "geometry": item.geometry,
            "lat": item.lat,
            "lon": item.lon,
            "created_at": now,
            "updated_at": now,
            **values,
        }
        made[item.code] = row
        rows.append(row)
    if problems:
        raise ValidationError(f"{len(problems)} 个节点有错误，未写入任何数据", problems)
    if check_only:
        return []
    # Kept counts by delta, as move() does: new rows get theirs before the insert, existing
    # ancestors one UPDATE per distinct delta — no recount scan over the subtree.
    child_delta: dict[int, int] = {}
    grid_delta: dict[int, int] = {}
    for row in rows:
        if row["parent_id"] is not None:
            child_delta[row["parent_id"]] = child_delta.get(row["parent_id"], 0) + 1
        if row["level"] == Level.GRID:
            for node_id in ancestor_ids(row["path"]):
                grid_delta[node_id] = grid_delta.get(node_id, 0) + 1
    for row in rows:
        row["child_count"] = child_delta.pop(row["id"], 0)
        row["grid_count"] = grid_delta.pop(row["id"], 0)
    for start in range(0, len(rows), 2000):
        conn.execute(T.insert(), rows[start : start + 2000])
    for column, deltas in (("child_count", child_delta), ("grid_count", grid_delta)):
        by_amount: dict[int, list[int]] = {}
        for node_id, amount in deltas.items():
            by_amount.setdefault(amount, []).append(node_id)
        for amount, node_ids in by_amount.items():
            for start in range(0, len(node_ids), 500):
                conn.execute(
                    update(T)
                    .where(T.c.id.in_(node_ids[start : start + 500]))
                    .values({column: T.c[column] + amount})
                )
    return ids


def create(
    session: Session,
    *,
    code: str,
    name: str,
    level: Level,
    parent: Node | None,
    rules: GridCodeRules,
    kind: str = "",
) -> Node:
    """Create one node under ``parent`` (None for a root)."""
    try:
        [node_id] = bulk_create(
            session,
            [NewNode(code, name, level, parent.code if parent else None, kind)],
            rules,
        )
    except ValidationError as exc:
        # One node: report its problem alone, without the batch framing.
        raise ValidationError(exc.problems[0].split(": ", 1)[-1]) from None
    return get(session, node_id)


def move(
    session: Session,
    node: Node,
    new_parent: Node,
    rules: GridCodeRules,
    new_code: str | None = None,
) -> int:
    """Move ``node``'s subtree under ``new_parent`` in the caller's transaction.

    Codes are hierarchical, so a node whose code does not start with the new parent's code
    needs ``new_code``; every code below it is re-prefixed. Returns the number of nodes moved.
    """
    if is_within(new_parent.path, node.path):
        raise ValidationError("不能把节点移动到它自己或它的下级之下")
    if node.parent_id == new_parent.id and not new_code:
        raise ValidationError("节点已在该上级之下")
    old_code = node.code
    code = new_code.strip() if new_code else old_code
    try:
        codes.validate(code, Level(node.level), (new_parent.code, Level(new_parent.level)), rules)
    except codes.CodeError as exc:
        raise ValidationError(f"无法移动: {exc}") from None
    conn = session.connection()
    sub = within(T.c.path, node.path)
    if code != old_code:
        renamed = [
            code + c[len(old_code) :]
            for (c,) in conn.execute(select(T.c.code).where(sub))
        ]
        clash = conn.execute(
            select(T.c.code).where(T.c.code.in_(renamed), ~sub).limit(1)
        ).first()
        if clash:
            raise ValidationError(f"无法移动: 新编码 {clash[0]} 已被其他节点使用")
    old_parent_path = node.path[: -len(f"{node.id}/")]
    old_path, new_path = node.path, new_parent.path + f"{node.id}/"
    moved_grids = node.grid_count
    delta = new_parent.depth + 1 - node.depth
    values: dict[str, Any] = {
        "path": _concat(new_path, func.substr(T.c.path, len(old_path) + 1)),
        "depth": T.c.depth + delta,
        "updated_at": utcnow(),
    }
    if code != old_code:
        values["code"] = _concat(code, func.substr(T.c.code, len(old_code) + 1))
    for level, col in LEVEL_COLUMN.items():
        if level < node.level:
            values[col] = getattr(new_parent, col)
    count = conn.execute(update(T).where(sub).values(**values)).rowcount
    conn.execute(update(T).where(T.c.id == node.id).values(parent_id=new_parent.id))
    # A root (a county deployed alone) has no old ancestors to uncount.
    old_ids = ancestor_ids(old_parent_path) if old_parent_path != "/" else []
    new_ids = ancestor_ids(new_parent.path)
    if old_ids:
        conn.execute(
            update(T).where(T.c.id == old_ids[-1]).values(child_count=T.c.child_count - 1)
        )
    conn.execute(
        update(T).where(T.c.id == new_ids[-1]).values(child_count=T.c.child_count + 1)
    )
    if moved_grids:
        conn.execute(
            update(T).where(T.c.id.in_(old_ids)).values(grid_count=T.c.grid_count - moved_grids)
        )
        conn.execute(
            update(T).where(T.c.id.in_(new_ids)).values(grid_count=T.c.grid_count + moved_grids)
        )
    session.expire_all()
    return int(count)


def _sql(value: Any) -> Any:
    return literal(value, String) if isinstance(value, str) else value


def _concat(left: Any, right: Any) -> Any:
    """SQL string concatenation ``||`` (the same on SQLite and PostgreSQL)."""
    return _sql(left).op("||")(_sql(right))


def move_paths(session: Session, column: Any, old_path: str, new_path: str) -> int:
    """Rewrite copies of paths after a subtree move: every value of ``column`` inside
    ``old_path`` gets ``new_path`` as its new prefix. One set-based UPDATE; returns rows changed.
    """
    stmt = (
        update(column.table)
        .where(within(column, old_path))
        .values({column.name: _concat(new_path, func.substr(column, len(old_path) + 1))})
    )
    return int(session.connection().execute(stmt).rowcount)


def actual_counts(session: Session) -> dict[int, tuple[int, int]]:
    """``node id → (children, grids in subtree)`` computed from the rows themselves: one
    GROUP BY for children, and every grid's path walked in Python for the grid counts (paths
    are the primary truth; an index-driven subquery per node costs minutes on SQLite)."""
    conn = session.connection()
    children = {
        parent: int(n)
        for parent, n in conn.execute(
            select(T.c.parent_id, func.count()).where(T.c.parent_id.is_not(None)).group_by(T.c.parent_id)
        )
    }
    grids: dict[int, int] = {}
    for (path,) in conn.execute(select(T.c.path).where(T.c.level == int(Level.GRID))):
        for node_id in ancestor_ids(path):
            grids[node_id] = grids.get(node_id, 0) + 1
    return {i: (children.get(i, 0), grids.get(i, 0)) for (i,) in conn.execute(select(T.c.id))}


def recount(session: Session, *, repair: bool = True) -> list[tuple[str, str, int, int]]:
    """Compare the kept counts with the rows and, with ``repair``, fix the rows that differ.

    Returns the differences found: (code, column, kept, actual).
    """
    conn = session.connection()
    actual = actual_counts(session)
    wrong: list[tuple[str, str, int, int]] = []
    fixes = []
    for i, code, c, g in conn.execute(select(T.c.id, T.c.code, T.c.child_count, T.c.grid_count)):
        if (c, g) == actual[i]:
            continue
        if c != actual[i][0]:
            wrong.append((code, "child_count", c, actual[i][0]))
        if g != actual[i][1]:
            wrong.append((code, "grid_count", g, actual[i][1]))
        fixes.append({"node": i, "c": actual[i][0], "g": actual[i][1]})
    if repair and fixes:
        conn.execute(
            update(T)
            .where(T.c.id == bindparam("node"))
            .values(child_count=bindparam("c"), grid_count=bindparam("g")),
            fixes,
        )
    return wrong


def verify_counts(session: Session) -> list[tuple[str, str, int, int]]:
    """Nodes whose kept counts differ from a recount: (code, column, kept, actual)."""
    return recount(session, repair=False)
