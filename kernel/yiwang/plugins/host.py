"""PluginHost: the loaded plugins, their pluggy manager, and how hooks are called."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from yiwang.plugins.spec import PluginSpec, Scope

KERNEL = "yiwang"


@dataclass
class PluginReport:
    """What ``yiwang plugins list`` shows for one installed plugin."""

    name: str
    version: str = ""
    title: str = ""
    distribution: str = ""
    enabled: bool = False
    loaded: bool = False
    scope: str = ""
    hooks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _HookRelay:
    """``hook_at(node).<name>(...)``: hook callers limited to the plugins active at a node."""

    def __init__(self, pm: pluggy.PluginManager, removed: list[object]) -> None:
        self._pm = pm
        self._removed = removed
        self._callers: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        caller = self._callers.get(name)
        if caller is None:
            caller = self._pm.subset_hook_caller(name, self._removed)
            self._callers[name] = caller
        return caller


class PluginHost:
    """Enabled plugins in dependency order, with the pluggy manager that calls them.

    Parameters
    ----------
    pm: the plugin manager; the kernel's built-in implementations are registered as ``yiwang``.
    specs: enabled plugins in load (dependency) order.
    reports: one report per installed plugin, for listing and diagnostics.
    """

    def __init__(
        self, pm: pluggy.PluginManager, specs: list[PluginSpec], reports: list[PluginReport]
    ) -> None:
        self.pm = pm
        self.specs: dict[str, PluginSpec] = {s.name: s for s in specs}
        self.reports = reports
        self._relays: dict[frozenset[str], _HookRelay] = {}

    @property
    def hook(self) -> Any:
        """Every enabled plugin (data hooks)."""
        return self.pm.hook

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    @property
    def node_scoped(self) -> list[PluginSpec]:
        return [s for s in self.specs.values() if s.scope == Scope.NODE]

    def collect(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a declaration hook on the kernel, then each plugin in load order.

        Returns ``(plugin name, result)`` pairs, skipping None results, so records can be
        attributed to their plugin. Hook wrappers do not apply here.
        """
        impls = {impl.plugin_name: impl for impl in getattr(self.pm.hook, hook).get_hookimpls()}
        out = []
        for name in [KERNEL, *self.specs]:
            impl = impls.get(name)
            if impl is None:
                continue
            result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            if result is not None:
                out.append((name, result))
        return out

    def collect_items(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """``collect`` for hooks returning sequences: flattened ``(plugin, item)`` pairs."""
        return [(name, item) for name, items in self.collect(hook, **kwargs) for item in items]

    def hook_for(self, active: Iterable[str]) -> Any:
        """Hook callers that reach the kernel and the given plugins only (cached per set)."""
        inactive = frozenset(self.specs) - frozenset(active)
        relay = self._relays.get(inactive)
        if relay is None:
            removed = [self.pm.get_plugin(name) for name in inactive]
            relay = _HookRelay(self.pm, [p for p in removed if p is not None])
            self._relays[inactive] = relay
        return relay

    def hooks_of(self, name: str) -> list[str]:
        plugin = self.pm.get_plugin(name)
        if plugin is None:
            return []
        return sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
