"""Dictionaries as a province has them: the declarations merged with the province's overrides.

Overrides are few, so every worker keeps them all and re-reads them when the shared epoch
(``kernel_counter`` row ``dict_epoch``) moves — the mechanism of plugin activation and the
calendar (``db/epoch.py``).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import Session

from yiwang.calendar.cache import province_id_of
from yiwang.db.epoch import EpochCache
from yiwang.dicts.models import DictOverride
from yiwang.errors import NotFound
from yiwang.plugins.records import Dictionary

if TYPE_CHECKING:
    from yiwang.db import Database
    from yiwang.kernel import Kernel

EPOCH = "dict_epoch"
T = DictOverride.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Entry:
    """One item as a province has it."""

    code: str
    label: str
    active: bool
    #: The declared label (None: added by the province).
    declared: str | None
    position: int
    #: Changed from (or added to) the declaration here.
    overridden: bool


@dataclass(frozen=True)
class _Row:
    label: str
    position: int
    active: bool


class DictionaryCache(EpochCache):
    def __init__(self, db: Database, declared: dict[str, Dictionary], refresh_seconds: float) -> None:
        super().__init__(db, EPOCH, refresh_seconds)
        self.declared = declared
        self._rows: dict[tuple[int, str], dict[str, _Row]] = {}
        self._merged: dict[tuple[int | None, str], list[Entry]] = {}

    def _read(self, session: Session) -> dict[tuple[int, str], dict[str, _Row]]:
        out: dict[tuple[int, str], dict[str, _Row]] = {}
        for node_id, name, code, label, position, active in session.execute(
            select(T.c.node_id, T.c.dictionary, T.c.code, T.c.label, T.c.position, T.c.active)
        ):
            out.setdefault((int(node_id), str(name)), {})[str(code)] = _Row(str(label), int(position), bool(active))
        return out

    def _install(self, state: dict[tuple[int, str], dict[str, _Row]]) -> None:
        self._rows, self._merged = state, {}

    def entries(self, name: str, province_id: int | None) -> list[Entry]:
        """Every item (switched-off ones too), in the province's order."""
        if name not in self.declared:
            raise NotFound(f"数据字典 {name} 未声明")
        self.fresh()
        rows, merged = self._rows, self._merged
        key = (province_id, name)
        found = merged.get(key)
        if found is None:
            own = rows.get((province_id, name), {}) if province_id is not None else {}
            entries: list[Entry] = []
            for index, (code, label) in enumerate(self.declared[name].items):
                o = own.get(code)
                entries.append(Entry(code, o.label if o else label, o.active if o else True, label,
                                     o.position if o else (index + 1) * 10, o is not None))  # fmt: skip
            declared_codes = {c for c, _ in self.declared[name].items}
            for code, o in own.items():
                if code not in declared_codes:
                    entries.append(Entry(code, o.label, o.active, None, o.position, True))
            found = merged[key] = sorted(entries, key=lambda e: (e.position, e.code))
        return found


_caches: weakref.WeakKeyDictionary[Kernel, DictionaryCache] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def declared_dictionaries(kernel: Kernel) -> dict[str, Dictionary]:
    """Every declared dictionary by name (kernel and enabled plugins); duplicates are refused."""
    out: dict[str, Dictionary] = {}
    for plugin, d in kernel.host.collect_items("yiwang_dictionaries"):
        if d.name in out:
            raise ValueError(f"数据字典 {d.name} 重复声明（{plugin}）")
        codes = [c for c, _ in d.items]
        if len(set(codes)) != len(codes):
            raise ValueError(f"数据字典 {d.name} 有重复的代码")
        out[d.name] = d
    return out


def cache_of(kernel: Kernel) -> DictionaryCache:
    found = _caches.get(kernel)
    if found is None:
        with _lock:
            found = _caches.get(kernel)
            if found is None:
                found = DictionaryCache(kernel.db, declared_dictionaries(kernel), kernel.settings.activation_refresh_seconds)
                _caches[kernel] = found
    return found


def dictionary(kernel: Kernel, name: str, node_path: str | None) -> dict[str, str]:
    """The switched-on items of dictionary ``name`` in the province of ``node_path``, code → label,
    in the province's order: what a form offers."""
    return {e.code: e.label for e in cache_of(kernel).entries(name, province_id_of(node_path)) if e.active}


def labels(kernel: Kernel, name: str, node_path: str | None) -> dict[str, str]:
    """Code → label for every item, switched-off ones too: what a page shows for stored codes."""
    return {e.code: e.label for e in cache_of(kernel).entries(name, province_id_of(node_path))}
