"""Indicators: what plugins count per node (declared with ``yiwang_indicators``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from yiwang.errors import PluginError

if TYPE_CHECKING:
    from sqlmodel import Session

    from yiwang.kernel import Kernel

#: Rows of truth for a recount: ``(node path, key, count)``; paths may repeat (they are summed).
SourceRows = Iterable[tuple[str, str, int]]
#: How to count an indicator from its source rows: a callable, or an SQL select of the same rows.
Source = Callable[["Session"], SourceRows] | Any


@dataclass(frozen=True)
class Indicator:
    """A count a plugin keeps per node of the net.

    Parameters
    ----------
    name: ``<plugin>.<thing>``, e.g. ``population.persons`` (the prefix is checked at start-up).
    title: Chinese name shown on dashboards, e.g. ``"实有人口"``.
    keys: the breakdown, e.g. ``("registered", "floating", "foreign", "unregistered")``;
        empty for a plain count (kept under the key ``""``).
    dated: counts are kept per day (Beijing time): each row's key is ``"<key>:<YYYY-MM-DD>"``
        (``day_key``), so "reported this week" is a primary-key range read of seven rows.
    source: how to count from the plugin's own rows, for ``yiwang stats recount``: a callable
        ``source(session)`` or an SQL select, yielding ``(node path, key, count)`` rows where
        the path is the node the records are counted at (usually a grid). None: not recountable.
    plugin: set by the kernel to the declaring plugin's name.
    """

    name: str
    title: str
    keys: tuple[str, ...] = ()
    source: Source = None
    plugin: str = ""
    dated: bool = False

    @property
    def all_keys(self) -> tuple[str, ...]:
        """The keys rows are kept under (``("",)`` for a plain count)."""
        return self.keys or ("",)

    def allows(self, key: str) -> bool:
        """May a rollup row of this indicator carry ``key`` (a dated key for a dated one)?"""
        if not self.dated:
            return key in self.all_keys
        base, _, day = key.rpartition(":")
        return base in self.all_keys and _is_day(day)


def day_key(key: str, day: date) -> str:
    """The rollup key of ``key``'s count on ``day`` (dated indicators)."""
    return f"{key}:{day.isoformat()}"


def _is_day(text: str) -> bool:
    try:
        return len(text) == 10 and date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def declared_indicators(kernel: Kernel) -> dict[str, Indicator]:
    """Every declared indicator by name, tagged with its plugin; raises PluginError for a name
    without its plugin's prefix, a duplicate, or a duplicate key."""
    out: dict[str, Indicator] = {}
    for plugin, ind in kernel.host.collect_items("yiwang_indicators"):
        if plugin != "yiwang" and not ind.name.startswith(f"{plugin}."):
            raise PluginError(f"插件 {plugin} 声明的统计指标 {ind.name} 应以 {plugin}. 开头")
        if ind.name in out:
            raise PluginError(f"统计指标 {ind.name} 被重复声明")
        if len(set(ind.keys)) != len(ind.keys) or "" in ind.keys:
            raise PluginError(f"统计指标 {ind.name} 的分类键重复或为空")
        if len(ind.name) > 80 or any(len(k) > (29 if ind.dated else 40) for k in ind.keys):
            raise PluginError(f"统计指标 {ind.name} 的名称或分类键过长")
        out[ind.name] = Indicator(
            ind.name, ind.title, tuple(ind.keys), ind.source, plugin, bool(ind.dated)
        )
    return out
