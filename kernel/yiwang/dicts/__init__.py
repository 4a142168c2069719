"""数据字典 (code tables): declared by the kernel and plugins, adjusted per province (docs/dictionaries.md)."""

from __future__ import annotations

from yiwang.dicts.cache import Entry, cache_of, declared_dictionaries, dictionary, labels

__all__ = ["Entry", "cache_of", "declared_dictionaries", "dictionary", "labels"]
