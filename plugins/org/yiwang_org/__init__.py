"""机构队伍 (org): staff of organisations, grid workers with their grids and devices, patrol logs
with GPS check-ins and per-grid daily patrol coverage."""

from __future__ import annotations

from yiwang.api import Level, PluginSpec, Scope

from yiwang_org import hooks

plugin = PluginSpec(
    name="org",
    version="0.1.0",
    title="机构队伍",
    api=">=1.0,<2",
    hooks=hooks,
    levels=(Level.PROVINCE, Level.CITY, Level.COUNTY),
    scope=Scope.NODE,
    default_active=True,
    migrations="yiwang_org.migrations",
    description="机构人员、网格员及其网格与专用手机、巡查轨迹与每日巡查覆盖；按地区启用。",
)
