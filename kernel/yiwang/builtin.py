"""The kernel's own hook implementations, registered first as plugin ``yiwang``.

The kernel declares its tables, pages, menu and demo data through the same hooks plugins use,
so there is one mechanism to read and test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlmodel import Session, SQLModel
from starlette.routing import BaseRoute

from yiwang.hookspecs import hookimpl
from yiwang.plugins.records import MenuItem

if TYPE_CHECKING:
    from yiwang.kernel import Kernel


@hookimpl
def yiwang_models() -> Sequence[type[SQLModel]]:
    from yiwang.grid.models import Node, Organisation
    from yiwang.plugins.models import KernelCounter, PluginActivation

    return [Node, Organisation, PluginActivation, KernelCounter]


@hookimpl
def yiwang_routes() -> Sequence[BaseRoute]:
    from yiwang.web import pages

    return pages.routes()


@hookimpl
def yiwang_menu_items() -> Sequence[MenuItem]:
    return [MenuItem(label="区划与网格", href="/grid/", icon="tree", order=10, section="基础")]


@hookimpl
def yiwang_demo(kernel: Kernel, session: Session, scale: str, seed: int) -> None:
    from yiwang.grid.demo import build_demo_net

    build_demo_net(kernel, session, scale=scale, seed=seed)
