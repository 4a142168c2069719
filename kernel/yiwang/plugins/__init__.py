"""The plugin host: discovery (stevedore), hook calls (pluggy), per-node activation."""

from __future__ import annotations

from yiwang.plugins.host import PluginHost, PluginReport
from yiwang.plugins.loader import load_plugins
from yiwang.plugins.records import MenuItem
from yiwang.plugins.spec import PluginSpec, Scope

__all__ = ["MenuItem", "PluginHost", "PluginReport", "PluginSpec", "Scope", "load_plugins"]
