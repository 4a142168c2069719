"""Per-node activation: which plugins are on at a node, inherited down the net.

The effective state of a node-scoped plugin at a node is the explicit setting of the nearest
ancestor (the node itself included), else the plugin's ``default_active``. Settings are few
(one row per explicit switch), so every worker keeps them all in memory and re-reads them when
the shared epoch counter moves — a change made by any worker applies everywhere within
``plugins.activation_refresh_seconds``, and at once in the worker that made it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlmodel import Session

from yiwang.db import Database
from yiwang.db.epoch import EpochCache, bump_counter
from yiwang.errors import ValidationError
from yiwang.grid.levels import Level
from yiwang.grid.tree import ancestor_ids
from yiwang.plugins.host import PluginHost
from yiwang.plugins.models import PluginActivation
from yiwang.plugins.spec import Scope

if TYPE_CHECKING:
    from yiwang.audit import Actor

EPOCH = "plugin_activation_epoch"


class NodeLike(Protocol):
    @property
    def id(self) -> int | None: ...
    @property
    def path(self) -> str: ...
    @property
    def level(self) -> int: ...


class Activation(EpochCache):
    """Effective plugin activation per node, cached and kept fresh across workers."""

    def __init__(self, db: Database, host: PluginHost, refresh_seconds: float = 2.0) -> None:
        super().__init__(db, EPOCH, refresh_seconds)
        self.host = host
        self._explicit: dict[int, dict[str, bool]] = {}
        # Keyed by path: a moved subtree has new paths, so it follows its new ancestors at once.
        self._cache: dict[str, frozenset[str]] = {}

    # --- reading --------------------------------------------------------------------------------

    def _read(self, session: Session) -> dict[int, dict[str, bool]]:
        rows = session.execute(
            select(PluginActivation.node_id, PluginActivation.plugin, PluginActivation.active)  # type: ignore[call-overload]
        ).all()
        explicit: dict[int, dict[str, bool]] = {}
        for node_id, plugin, active in rows:
            explicit.setdefault(node_id, {})[plugin] = bool(active)
        return explicit

    def _install(self, state: dict[int, dict[str, bool]]) -> None:
        self._explicit = state
        self._cache = {}

    def active_plugins(self, node: NodeLike | None) -> frozenset[str]:
        """Names of enabled plugins active at ``node`` (None: defaults, as above the net)."""
        self.fresh()
        key = node.path if node is not None else ""
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        chain = list(reversed(ancestor_ids(node.path))) if node is not None else []
        active = set()
        for spec in self.host.specs.values():
            if spec.scope == Scope.GLOBAL:
                active.add(spec.name)
                continue
            state = spec.default_active
            for node_id in chain:
                explicit = self._explicit.get(node_id)
                if explicit is not None and spec.name in explicit:
                    state = explicit[spec.name]
                    break
            if state:
                active.add(spec.name)
        result = frozenset(active)
        self._cache[key] = result
        return result

    def is_active(self, plugin: str, node: NodeLike | None) -> bool:
        return plugin in self.active_plugins(node)

    def hook_at(self, node: NodeLike | None) -> object:
        """Hook callers reaching the kernel and the plugins active at ``node``."""
        return self.host.hook_for(self.active_plugins(node))

    def explicit(self) -> list[tuple[int, str, bool]]:
        self.fresh()
        return sorted(
            (node_id, plugin, active)
            for node_id, plugins in self._explicit.items()
            for plugin, active in plugins.items()
        )

    # --- writing --------------------------------------------------------------------------------

    def set(
        self, plugin: str, node: NodeLike, active: bool | None, actor: Actor | None = None
    ) -> None:
        """Switch ``plugin`` on/off at ``node`` (None: remove the setting, inherit again).

        Takes effect in this worker at once and in others within the refresh interval. The
        change is audited (``plugin.activation``) as ``actor``, else as the system.
        """
        from yiwang.audit import Actor, record

        spec = self.host.specs.get(plugin)
        if spec is None:
            raise ValidationError(f"插件 {plugin} 未启用，无法按地区开关")
        if spec.scope == Scope.GLOBAL:
            raise ValidationError(f"插件 {plugin} 为全局插件，不能按地区开关")
        if active is not None and Level(node.level) not in spec.levels:
            allowed = "、".join(lv.label for lv in spec.levels)
            raise ValidationError(
                f"插件 {plugin} 只能在以下层级开关: {allowed}（该节点为{Level(node.level).label}）"
            )
        assert node.id is not None
        with self.db.write() as s:
            row = s.get(PluginActivation, (node.id, plugin))
            record(
                s, "plugin.activation", actor=actor or Actor.system(), object_type="plugin",
                object_id=plugin,
                detail={"node_id": node.id, "active": active, "was": None if row is None else row.active},
            )  # fmt: skip
            if active is None:
                if row is not None:
                    s.delete(row)
            elif row is None:
                s.add(PluginActivation(node_id=node.id, plugin=plugin, active=active))
            else:
                row.active = active
            bump_epoch(s)
        self.reload()


def bump_epoch(session: Session) -> None:
    """Advance the shared activation epoch inside the caller's transaction."""
    bump_counter(session, EPOCH)
