"""Typed records plugins return from declaration hooks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MenuItem:
    """An entry of the left menu.

    Parameters
    ----------
    label: Chinese text shown.
    href: absolute path, e.g. ``/p/notice/``.
    icon: optional icon name from the theme's icon set.
    order: position; lower comes first (kernel items use 0–99).
    section: optional group heading, e.g. ``"基础数据"``.
    plugin: set by the kernel to the declaring plugin's name.
    """

    label: str
    href: str
    icon: str = ""
    order: int = 100
    section: str = ""
    plugin: str = ""
