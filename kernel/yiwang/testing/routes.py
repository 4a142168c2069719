"""The app's routes for tests that visit all of them (the escalation matrix, every page for
every role): every ``Route`` through plugin mounts, and path templates filled with values."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from starlette.routing import Mount, Route

#: A path parameter of a template: ``{case_id:int}`` → ``case_id``.
PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def all_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Route]]:
    """Every Route, through Mounts (plugin gates expose their routes); static files have none."""
    for route in routes:
        if isinstance(route, Mount):
            yield from all_routes(
                list(getattr(route.app, "routes", None) or []), prefix + route.path
            )
        elif isinstance(route, Route):
            yield prefix + route.path, route


def fill(template: str, values: dict[str, Any]) -> str:
    """The template with each parameter replaced by ``values[name]``."""
    return PARAM.sub(lambda m: str(values[m.group(1)]), template)


__all__ = ["PARAM", "all_routes", "fill"]
