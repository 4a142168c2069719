"""Testing kit for yiwang and its plugins (a pytest plugin, loaded automatically).

Public API: the fixtures documented in ``yiwang.testing.plugin``, ``GridFactory`` and the
``PluginContract`` suite every plugin runs::

    from yiwang.testing import PluginContract

    class TestContract(PluginContract):
        plugin = "notice"
"""

from __future__ import annotations

from yiwang.testing.contract import PluginContract
from yiwang.testing.factories import GridFactory, level_of

__all__ = ["GridFactory", "PluginContract", "level_of"]
