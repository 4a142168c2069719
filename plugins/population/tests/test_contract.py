"""The kernel's plugin contract, run for this plugin."""

from __future__ import annotations

from yiwang.testing import PluginContract


class TestContract(PluginContract):
    plugin = "population"
