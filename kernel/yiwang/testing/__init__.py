"""Testing kit for yiwang and its plugins (a pytest plugin, loaded automatically).

Public API: the fixtures documented in ``yiwang.testing.plugin``, ``GridFactory``, ``Users``
(and its ``PASSWORD``), ``audit_entries`` and the ``PluginContract`` suite every plugin runs::

    from yiwang.testing import PluginContract

    class TestContract(PluginContract):
        plugin = "notice"
"""

from __future__ import annotations

from typing import Any

from yiwang.testing.contract import PluginContract
from yiwang.testing.factories import GridFactory, level_of
from yiwang.testing.users import PASSWORD, Users


def audit_entries(kernel: Any, **filters: Any) -> list[Any]:
    """Audit records matching ``filters`` (as ``yiwang.audit.search``: ``action="org.*"``,
    ``user=``, ``result=`` …), newest first — for asserting that a change was recorded."""
    from yiwang.audit import search

    with kernel.db.read() as s:
        return search(s, limit=1000, **filters)


__all__ = ["PASSWORD", "GridFactory", "PluginContract", "Users", "audit_entries", "level_of"]
