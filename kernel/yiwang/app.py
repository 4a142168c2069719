"""create_app: the Starlette application of one deployment, assembled declaratively."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yiwang.errors import SettingsError
from yiwang.jobs import start_in_app
from yiwang.kernel import Kernel
from yiwang.plugins.host import KERNEL
from yiwang.plugins.spec import PluginSpec
from yiwang.settings import Settings, package_root
from yiwang.web.errors import HANDLERS
from yiwang.web.gate import PluginGate
from yiwang.web.security import SecurityMiddleware


class RequestIdMiddleware:
    """Gives every request an id (``request.state.request_id``, ``X-Request-ID``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)


def build_routes(kernel: Kernel) -> list[BaseRoute]:
    """Kernel routes at the root, each plugin's under ``/p/<name>/`` behind its gate."""
    routes: list[BaseRoute] = []
    plugin_routes: dict[str, list[BaseRoute]] = {}
    for name, route in kernel.host.collect_items("yiwang_routes"):
        if name == KERNEL:
            routes.append(route)
        else:
            plugin_routes.setdefault(name, []).append(route)
    for name, own in plugin_routes.items():
        routes.append(Mount(f"/p/{name}", app=PluginGate(name, Router(own)), name=name))
    templates = kernel.templates
    routes.append(Mount("/static/theme", app=templates.theme_static(), name="theme-static"))
    for name, folder in templates.plugin_static.items():
        routes.append(Mount(f"/static/p/{name}", app=StaticFiles(directory=folder), name=f"{name}-static"))
    routes.append(
        Mount("/static", app=StaticFiles(directory=package_root() / "static"), name="static")
    )
    return routes


def create_app(
    settings: Settings,
    *,
    kernel: Kernel | None = None,
    extra_plugins: Sequence[PluginSpec] = (),
) -> Starlette:
    """Build the web application.

    Parameters
    ----------
    settings: validated settings (``yiwang.settings.load_settings``).
    kernel: an existing kernel to serve (tests share one); default: built from settings.
    extra_plugins: specs treated as installed without entry points.
    """
    if not settings.secret_key:
        raise SettingsError("未设置 security.secret_key。请先运行 `yiwang init` 生成站点配置。")
    kernel = kernel or Kernel(settings, extra_plugins=extra_plugins)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        await run_in_threadpool(kernel.sync_declarations)
        # Periodic jobs in this worker (jobs.run_in_app); leases keep each to one worker.
        runner = await run_in_threadpool(start_in_app, kernel)
        _app.state.job_runner = runner
        try:
            yield
        finally:
            if runner is not None:
                await run_in_threadpool(runner.stop)

    app = Starlette(
        debug=False,
        routes=build_routes(kernel),
        middleware=[Middleware(RequestIdMiddleware), Middleware(SecurityMiddleware, kernel=kernel)],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
    app.state.kernel = kernel
    return app


def from_environment() -> Starlette:
    """Factory for ``uvicorn --factory`` and ``yiwang serve``: settings from the environment."""
    from yiwang.settings import load_settings

    return create_app(load_settings(require_site=True))
