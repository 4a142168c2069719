"""实有人口 (population): persons of four kinds with validated, encrypted ID numbers, buildings,
houses and residence links ("人到户，户入楼"), a claim queue for IDs registered in two grids, and
counts by kind per node kept in the kernel's rollups."""

from __future__ import annotations

from yiwang.api import Level, PluginSpec, Scope

from yiwang_population import hooks

plugin = PluginSpec(
    name="population",
    version="0.1.0",
    title="实有人口",
    api=">=1.0,<2",
    hooks=hooks,
    levels=(Level.PROVINCE, Level.CITY, Level.COUNTY),
    scope=Scope.NODE,
    default_active=True,
    migrations="yiwang_population.migrations",
    description="户籍、流动、境外、未落户人口，楼栋、房屋与居住关系，重复登记认领；按地区启用。",
)
