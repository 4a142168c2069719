"""Discover plugins with stevedore, validate them, and register the enabled ones with pluggy.

Installed is not enabled: every installed plugin is discovered and reported, but only those
named in ``plugins.enabled`` are registered. A problem with an enabled plugin stops start-up
with a message naming the plugin; a problem with any other is only reported.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy
from stevedore import ExtensionManager

from yiwang import API_VERSION, hookspecs
from yiwang.errors import PluginError
from yiwang.plugins.host import KERNEL, PluginHost, PluginReport
from yiwang.plugins.spec import PluginSpec

log = logging.getLogger(__name__)

NAMESPACE = "yiwang.plugins"


@dataclass
class _Candidate:
    name: str
    spec: PluginSpec | None = None
    distribution: str = ""
    errors: list[str] = field(default_factory=list)


def discover() -> dict[str, _Candidate]:
    """Every installed plugin entry point, loaded (imported) but not registered."""
    found: dict[str, _Candidate] = {}
    dists = _distributions()

    def candidate(ep: Any) -> _Candidate:
        dist = dists.get((ep.name, ep.value), "")
        return found.setdefault(ep.name, _Candidate(ep.name, distribution=dist))

    def failed(_mgr: Any, ep: Any, exc: BaseException) -> None:
        cand = candidate(ep)
        cand.errors.append(f"无法导入 {ep.value}: {type(exc).__name__}: {exc}")

    mgr = ExtensionManager(NAMESPACE, invoke_on_load=False, on_load_failure_callback=failed)
    for ext in mgr.extensions:
        cand = candidate(ext.entry_point)
        if isinstance(ext.plugin, PluginSpec):
            if cand.spec is not None:
                cand.errors.append("有多个同名入口点")
            cand.spec = ext.plugin
        else:
            cand.errors.append(f"入口点 {ext.entry_point.value} 指向的不是 PluginSpec")
    return found


def _distributions() -> dict[tuple[str, str], str]:
    """``(entry-point name, target)`` → ``"<distribution> <version>"``. Entry points from
    stevedore's cache carry no distribution, so it is looked up here."""
    return {
        (ep.name, ep.value): f"{ep.dist.name} {ep.dist.version}"
        for ep in importlib.metadata.entry_points(group=NAMESPACE)
        if ep.dist is not None
    }


def _order(specs: dict[str, PluginSpec], enabled: Sequence[str]) -> list[PluginSpec]:
    """Dependency order (requirements first), otherwise the order of ``enabled``."""
    ordered: list[PluginSpec] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " → ".join([*chain[chain.index(name) :], name])
            raise PluginError(f"插件依赖成环: {cycle}")
        state[name] = 1
        for req in specs[name].requires:
            visit(req, [*chain, name])
        state[name] = 2
        ordered.append(specs[name])

    for name in enabled:
        visit(name, [])
    return ordered


def load_plugins(
    enabled: Sequence[str],
    *,
    extra: Sequence[PluginSpec] = (),
    builtin: object | None = None,
    api_version: str = API_VERSION,
) -> PluginHost:
    """Build the PluginHost for a deployment.

    Parameters
    ----------
    enabled: plugin names to enable, from ``plugins.enabled``.
    extra: specs to treat as installed without an entry point (tests, embedding).
    builtin: the kernel's own hook implementations, registered first as ``yiwang``.
    api_version: the plugin-API version plugins are checked against.
    """
    found = discover()
    for spec in extra:
        found[spec.name] = _Candidate(spec.name, spec=spec, distribution="(内置测试)")

    reports: dict[str, PluginReport] = {}
    for name, cand in sorted(found.items()):
        rep = PluginReport(name=name, distribution=cand.distribution, errors=list(cand.errors))
        if cand.spec is not None:
            spec = cand.spec
            rep.version, rep.title, rep.scope = spec.version, spec.title, spec.scope.value
            rep.errors += spec.problems(name, api_version)
        reports[name] = rep

    fatal: list[str] = []
    for name in enabled:
        report = reports.get(name)
        if report is None:
            installed = "、".join(sorted(found)) or "（无）"
            fatal.append(f"插件 {name} 未安装（已安装: {installed}）")
            continue
        report.enabled = True
        declared = found[name].spec
        for req in declared.requires if declared else ():
            if req not in enabled:
                report.errors.append(f"依赖的插件 {req} 未启用")
        fatal += [f"插件 {name}: {err}" for err in report.errors]
    if fatal:
        raise PluginError("插件加载失败:\n" + "\n".join(f"  - {m}" for m in fatal))

    specs = {name: found[name].spec for name in enabled}
    ordered = _order({k: v for k, v in specs.items() if v is not None}, list(enabled))

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if builtin is not None:
        pm.register(builtin, name=KERNEL)
    for spec in ordered:
        try:
            pm.register(spec.hooks, name=spec.name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"插件加载失败:\n  - 插件 {spec.name}: {exc}") from None
        reports[spec.name].loaded = True
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or "?"
        raise PluginError(f"插件加载失败:\n  - 插件 {name}: 实现了未定义的钩子 ({exc})") from None

    for rep in reports.values():
        if rep.errors and not rep.enabled:
            log.warning("已安装但未启用的插件 %s 有问题: %s", rep.name, "; ".join(rep.errors))
    host = PluginHost(pm, ordered, list(reports.values()))
    for rep in host.reports:
        # Plugins not registered (not enabled) list the hooks their module marks.
        rep.hooks = host.hooks_of(rep.name) if rep.loaded else _marked(pm, found[rep.name].spec)
    return host


def _marked(pm: pluggy.PluginManager, spec: PluginSpec | None) -> list[str]:
    if spec is None:
        return []
    return sorted(n for n in dir(spec.hooks) if pm.parse_hookimpl_opts(spec.hooks, n) is not None)
