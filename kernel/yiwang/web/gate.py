"""PluginGate: a plugin's routes answer only where the plugin is active at the request's node."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Router
from starlette.types import Receive, Scope, Send

from yiwang.web.context import current_node, kernel_of


class PluginGate:
    """Wraps a plugin's router; elsewhere it renders 404 "本地区未启用该模块".

    Parameters
    ----------
    plugin: the plugin's name.
    app: the plugin's router.
    """

    def __init__(self, plugin: str, app: Router) -> None:
        self.plugin = plugin
        self.app = app
        # Mount reads ``routes`` of its app to resolve ``url_for("<plugin>:<name>")``.
        self.routes = app.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        kernel = kernel_of(request)
        node = await run_in_threadpool(current_node, request)
        if not kernel.activation.is_active(self.plugin, node):
            spec = kernel.host.specs[self.plugin]
            response = kernel.templates.render(
                request,
                "errors/inactive.html",
                {"title": spec.title},
                status_code=404,
                node=node,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
