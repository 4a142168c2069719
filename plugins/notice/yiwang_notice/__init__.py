"""通知公告 (notices): a notice posted at a node is seen at that node and everywhere below it.

The plugin-author tutorial (docs/plugins/tutorial.md) walks through this package.
"""

from __future__ import annotations

from yiwang.api import Level, PluginSpec, Scope

from yiwang_notice import hooks

plugin = PluginSpec(
    name="notice",
    version="0.1.0",
    title="通知公告",
    api=">=1.0,<2",
    hooks=hooks,
    levels=(Level.PROVINCE, Level.CITY, Level.COUNTY),
    scope=Scope.NODE,
    default_active=True,
    migrations="yiwang_notice.migrations",
    description="上级发布的通知在本级及全部下级可见；按地区启用。",
)
