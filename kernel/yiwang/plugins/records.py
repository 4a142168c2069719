"""Typed records plugins return from declaration hooks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MenuItem:
    """An entry of the left menu.

    Parameters
    ----------
    label: Chinese text shown.
    href: absolute path, e.g. ``/p/notice/``.
    icon: optional icon name from the theme's icon set.
    order: position; lower comes first (kernel items use 0–99).
    section: optional group heading, e.g. ``"基础数据"``.
    permission: shown only to users holding it at their current node ("" = every user).
    plugin: set by the kernel to the declaring plugin's name.
    """

    label: str
    href: str
    icon: str = ""
    order: int = 100
    section: str = ""
    permission: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class Permission:
    """A permission a plugin (or the kernel) declares: ``<plugin>.<verb>``, e.g. ``notice.post``.

    Parameters
    ----------
    name: dotted name; the part before the last dot is the object, after it the action.
    title: Chinese description shown on the grants page, e.g. ``"发布通知"``.
    personal: True when it reveals personal data (the audit administrator never gets it).
    """

    name: str
    title: str
    personal: bool = False

    @property
    def object(self) -> str:
        return self.name.rsplit(".", 1)[0]

    @property
    def action(self) -> str:
        return self.name.rsplit(".", 1)[1]


@dataclass(frozen=True)
class RoleSpec:
    """A role a plugin (or the kernel) declares.

    Parameters
    ----------
    name: identifier, e.g. ``grid_worker``.
    title: Chinese name, e.g. ``"网格员"``.
    description: one line.
    admin_kind: "" or "system" / "security" / "audit" (the three disjoint administrators).
    """

    name: str
    title: str
    description: str = ""
    admin_kind: str = ""


@dataclass(frozen=True)
class SearchHit:
    """One answer of the global search (全局搜索, ``yiwang_search``).

    Parameters
    ----------
    kind: what it is, in Chinese, e.g. ``"事件"``, ``"区划"``, ``"人员"`` (results are grouped by it).
    title: the line shown; personal data masked as on the page it links to.
    url: the page it opens (absolute path).
    detail: an optional second line (code, state, place).
    rank: lower comes first inside its kind (0 = exact match).
    """

    kind: str
    title: str
    url: str
    detail: str = ""
    rank: int = 10


@dataclass(frozen=True)
class Dictionary:
    """A code table (数据字典) a plugin (or the kernel) declares, e.g. 民族 or 房屋用途.

    Forms offer its items and pages show their labels; a province's administrators may rename
    items, reorder them, switch them off and — when ``extensible`` — add their own (字典管理).
    Codes are what is stored, so a declared item's code never changes.

    Parameters
    ----------
    name: ``<plugin>.<name>``, e.g. ``population.ethnicity``.
    title: Chinese name, e.g. ``"民族"``.
    items: ``(code, label)`` pairs in their default order.
    extensible: may a province add items of its own? (False where code depends on the codes.)
    description: one line for the administration page.
    """

    name: str
    title: str
    items: tuple[tuple[str, str], ...]
    extensible: bool = False
    description: str = ""


#: The kinds of map layer: point features (pins, clustered) or polygon features (outlines).
MAP_LAYER_KINDS = ("points", "polygons")


@dataclass(frozen=True)
class MapLayer:
    """A layer a plugin adds to the grid map (网格地图), offered as a toggle.

    Parameters
    ----------
    name: identifier, unique within the plugin, e.g. ``"buildings"``.
    title: Chinese text of the toggle, e.g. ``"楼栋"``.
    url: absolute path of a GeoJSON FeatureCollection route, e.g.
        ``/p/population/api/buildings.geojson``; the map fetches it with ``?node=<code>`` and
        the route must scope its features to the user in SQL. A feature's ``properties`` may
        carry ``title`` (its label), ``href`` (a link shown in the side panel) and ``lines``
        (a list of short strings for the panel); the collection may carry ``truncated`` and
        ``note`` when it was limited.
    kind: ``"points"`` or ``"polygons"``.
    permission: the toggle appears only to users holding it at the map's node ("" = every user).
    plugin: set by the kernel to the declaring plugin's name.
    """

    name: str
    title: str
    url: str
    kind: str = "points"
    permission: str = ""
    plugin: str = ""

    def __post_init__(self) -> None:
        if self.kind not in MAP_LAYER_KINDS:
            raise ValueError(f"地图图层 {self.name} 的类型应为 points 或 polygons，实际为 {self.kind!r}")
        if not self.url.startswith("/"):
            raise ValueError(f"地图图层 {self.name} 的地址应为以 / 开头的路径: {self.url!r}")
