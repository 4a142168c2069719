"""关于与许可 (``/about``): the software this deployment runs and the licences it is under.

The front-end libraries are listed from ``static/vendor/manifest.json`` (written by
``scripts/copy_assets.py`` with each library's version and licence); the Python side from the
installed distributions' metadata: the kernel, its direct dependencies and every installed
plugin distribution.
"""

from __future__ import annotations

import importlib.metadata as md
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from yiwang.rbac.guard import AUTHENTICATED, requires
from yiwang.web.context import kernel_of

MANIFEST = Path(__file__).resolve().parent.parent / "static" / "vendor" / "manifest.json"
PLUGIN_GROUP = "yiwang.plugins"


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    license: str
    homepage: str = ""


def front_end() -> list[Component]:
    """The vendored JS/CSS libraries; empty when the assets were not copied."""
    try:
        items = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [
        Component(str(i.get("name", "")), str(i.get("version", "")), str(i.get("license", "")),
                  str(i.get("homepage", "")))
        for i in items if isinstance(i, dict)
    ]  # fmt: skip


def licence_of(dist: md.Distribution) -> str:
    """A distribution's licence: its SPDX expression, else a short License field, else the
    licence classifiers."""
    meta: Any = dist.metadata  # an email.message.Message underneath
    expr = meta.get("License-Expression")
    if expr:
        return str(expr)
    text = str(meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 60:
        return text
    classifiers = [
        c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")
    ]
    return "、".join(classifiers) or "见发行包内许可文件"


def _meta(dist: md.Distribution) -> Any:
    return dist.metadata


def homepage(dist: md.Distribution) -> str:
    """The project's home page: ``Home-page``, else its first ``Project-URL`` (Homepage first)."""
    meta = _meta(dist)
    home = str(meta.get("Home-page") or "")
    if home:
        return home
    urls = [str(u).split(",", 1) for u in meta.get_all("Project-URL") or [] if "," in str(u)]
    urls.sort(key=lambda u: u[0].strip().lower() not in ("homepage", "home", "source"))
    return urls[0][1].strip() if urls else ""


def _component(name: str) -> Component | None:
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        return None
    return Component(str(dist.metadata["Name"]), dist.version, licence_of(dist), homepage(dist))


def python_side() -> tuple[list[Component], list[Component]]:
    """(the kernel and its direct dependencies, the installed plugin distributions)."""
    kernel: list[Component] = []
    seen: set[str] = set()
    names = ["yiwang"]
    try:
        requires = md.distribution("yiwang").requires or []
    except md.PackageNotFoundError:
        requires = []
    for raw in requires:
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            continue
        if req.marker is not None and "extra" in str(req.marker):
            continue  # test and optional extras are not part of a deployment
        names.append(req.name)
    for name in names:
        c = _component(name)
        if c is not None and c.name.lower() not in seen:
            seen.add(c.name.lower())
            kernel.append(c)
    plugins: dict[str, Component] = {}
    for ep in md.entry_points(group=PLUGIN_GROUP):
        if ep.dist is not None and ep.dist.name not in plugins:
            plugins[ep.dist.name] = Component(
                ep.dist.name, ep.dist.version, licence_of(ep.dist),
                homepage(ep.dist),
            )  # fmt: skip
    return kernel, sorted(plugins.values(), key=lambda c: c.name)


@requires(AUTHENTICATED)
def about(request: Request) -> Response:
    kernel, plugins = python_side()
    ctx = {"front_end": front_end(), "python": kernel, "plugins": plugins}
    return kernel_of(request).templates.render(request, "web/about.html", ctx)


def routes() -> list[BaseRoute]:
    return [Route("/about", about, methods=["GET"], name="about")]


__all__ = ["Component", "front_end", "python_side", "routes"]
