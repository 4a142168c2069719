"""PluginSpec: what a plugin distribution declares through its ``yiwang.plugins`` entry point.

A distribution registers one entry point per plugin::

    [project.entry-points."yiwang.plugins"]
    notice = "yiwang_notice:plugin"

where ``yiwang_notice.plugin`` is a ``PluginSpec`` whose ``name`` equals the entry-point name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from types import ModuleType

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from yiwang.grid.levels import Level

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,30}$")

#: Names the kernel's own tables, routes and commands use; no plugin may take them.
RESERVED_NAMES = frozenset(
    "yiwang kernel grid plugin plugins auth rbac cases audit privacy stats web api notify cli "
    "db static testing theme admin healthz".split()
)


class Scope(StrEnum):
    """Where a plugin's behaviour applies."""

    #: Active everywhere it is enabled (infrastructure, e.g. a notification driver).
    GLOBAL = "global"
    #: Switched on and off per node; the nearest explicit ancestor setting wins.
    NODE = "node"


@dataclass(frozen=True)
class PluginSpec:
    """The frozen declaration of a plugin.

    Parameters
    ----------
    name: entry-point name; lower-case ``[a-z][a-z0-9_]``; prefixes its tables
        (``<name>_*``), templates (``<name>/…``), routes (``/p/<name>/``) and static files.
    version: the distribution's version (PEP 440).
    title: Chinese name shown in menus and lists, e.g. ``"实有人口"``.
    api: compatible plugin-API range (PEP 440 specifier), e.g. ``">=1.0,<2"``.
    hooks: the module (or object) holding the ``@hookimpl`` functions.
    requires: other plugins that must be enabled (and are loaded first).
    levels: levels at which the plugin may be switched on or off (``Scope.NODE`` only).
    scope: ``Scope.NODE`` (default) or ``Scope.GLOBAL``.
    default_active: state at nodes with no explicit setting above them.
    package: import package holding ``templates/`` and ``static/``; default: the hooks'
        package.
    migrations: import path of the Alembic versions package (``yiwang_notice.migrations``),
        or None when the plugin has no tables.
    description: one paragraph for ``yiwang plugins list`` and the admin page.
    """

    name: str
    version: str
    title: str
    api: str
    hooks: ModuleType | object
    requires: tuple[str, ...] = ()
    levels: tuple[Level, ...] = (Level.PROVINCE, Level.CITY, Level.COUNTY)
    scope: Scope = Scope.NODE
    default_active: bool = True
    package: str | None = None
    migrations: str | None = None
    description: str = ""
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def package_name(self) -> str:
        if self.package:
            return self.package
        module = self.hooks.__name__ if isinstance(self.hooks, ModuleType) else type(
            self.hooks
        ).__module__
        return module.split(".")[0]

    def problems(self, entry_point_name: str, api_version: str) -> list[str]:
        """Everything wrong with this declaration, in Chinese; empty when it is valid."""
        out: list[str] = []
        if self.name != entry_point_name:
            out.append(f"入口点名称 {entry_point_name} 与 PluginSpec.name {self.name} 不一致")
        if not NAME_RE.match(self.name):
            out.append(f"插件名 {self.name!r} 不合法（小写字母开头，仅含小写字母、数字、下划线）")
        if self.name in RESERVED_NAMES:
            out.append(f"插件名 {self.name} 为内核保留名称")
        try:
            Version(self.version)
        except InvalidVersion:
            out.append(f"版本号 {self.version!r} 不合法")
        if not self.title.strip():
            out.append("缺少中文名称 title")
        try:
            if not SpecifierSet(self.api).contains(api_version, prereleases=True):
                out.append(f"声明兼容插件接口 {self.api}，内核提供 {api_version}")
        except InvalidSpecifier:
            out.append(f"兼容范围 api={self.api!r} 不是合法的版本范围")
        if self.scope == Scope.NODE and not self.levels:
            out.append("按节点启用的插件须声明可启用的层级 levels")
        if not all(isinstance(lv, Level) for lv in self.levels):
            out.append("levels 须为 Level 值")
        for req in self.requires:
            if req == self.name:
                out.append("插件不能依赖自己")
        return out
