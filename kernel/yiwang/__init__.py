"""yiwang (一网): the kernel of a grid-based social governance platform.

"上面千条线，下面一张网" — a thousand lines of departments above, one net of grids below.
The kernel supplies settings, the database, the plugin host, the grid hierarchy and the web
shell; every domain module is a plugin (see ``yiwang.hookspecs`` and ``yiwang.api``).
"""

from __future__ import annotations

__version__ = "0.1.0"

#: Version of the plugin API (hookspecs, PluginSpec, records, ``yiwang.api``, testing kit).
#: Semantic versioning: plugins declare a compatible range such as ``">=1.0,<2"``.
API_VERSION = "1.2"
