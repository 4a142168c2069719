"""Browser tests: the test's app served by uvicorn, driven by Debian's Chromium through Playwright.

Fixtures (loaded with the kit; mark such tests ``@pytest.mark.browser``):

``live_server``  the test's ``app`` served on a free port of 127.0.0.1 (``live_server.url``);
                 a real HTTP server in a thread, on the same database as the test's ``kernel``.
``browser``      a Chromium (``/usr/bin/chromium``, from the distribution — never a browser
                 downloaded by a test tool), one per test module and worker: Playwright's sync API
                 keeps an event loop running in the thread, so it must not outlive the module.
``new_page``     ``new_page(phone=True)``: a page in a fresh context (its own cookies), phone- or
                 desktop-sized, Chinese locale, Beijing time; closed after the test. Console
                 errors and page errors are collected in ``page.problems``.
``shots``        ``shots(page, "03-dispatched")`` saves ``test-artifacts/<test>/03-dispatched.png``.

Helpers: ``log_in(page, url, username)`` through the real login form; ``axe(page)`` runs
axe-core (``node_modules/axe-core``) and returns the violations of the given impacts.

Without Chromium or Playwright a browser test is skipped with the reason, except under
``CI=true``, where that is a failure (``./dev test`` installs both).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from yiwang.testing.users import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
#: Headless, no sandbox (tests run as root in CI), and nothing that reaches out to the network.
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
#: Impacts that fail an accessibility check.
SERIOUS = ("serious", "critical")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    message = f"浏览器测试未运行: {reason}"
    if _in_ci():
        pytest.fail(message + "（CI=true 时必须运行；./dev test 会安装 chromium）", pytrace=False)
    pytest.skip(message)


# --- the server ----------------------------------------------------------------------------------


@dataclass
class LiveServer:
    """A running server: ``url`` is ``http://127.0.0.1:<port>``."""

    url: str
    server: Any
    thread: threading.Thread
    sock: socket.socket

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


def serve(app: Any) -> LiveServer:
    """Serve ``app`` with uvicorn on a free port in a daemon thread; returns once it listens."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    class Config(uvicorn.Config):
        def configure_logging(self) -> None:
            """Leave the process's logging alone: uvicorn's own setup would silence and detach
            its loggers for every later test of the worker."""

    # No websockets (none are served; its implementation warns on import), no access log.
    config = Config(app, access_log=False, ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"live-server-{port}")  # fmt: skip
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("测试服务器未能启动")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread, sock)


@pytest.fixture
def live_server(app: Any) -> Iterator[LiveServer]:
    """The test's app over real HTTP (same kernel and database as the test)."""
    running = serve(app)
    yield running
    running.stop()


# --- the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for this module's tests (Playwright's loop must not outlive the module:
    ``asyncio.run`` elsewhere in the worker would find it running)."""
    if not CHROMIUM.exists():
        _unavailable(f"没有 {CHROMIUM}（apt-get install chromium fonts-noto-cjk）")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("未安装 playwright（pip install -e '.[test]'）")
    manager = sync_playwright().start()
    try:
        chromium = manager.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        yield chromium
        chromium.close()
    finally:
        manager.stop()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``new_page(phone=True, bypass_csp=False)``: a page in its own context (own cookies).
    ``page.problems`` lists console errors and uncaught page errors (a CSP refusal is one)."""
    contexts: list[Any] = []

    def make(*, phone: bool = False, bypass_csp: bool = False) -> Any:
        context = browser.new_context(
            viewport=PHONE if phone else DESKTOP, is_mobile=phone, has_touch=phone,
            device_scale_factor=2 if phone else 1, locale="zh-CN", timezone_id="Asia/Shanghai",
            bypass_csp=bypass_csp,
        )  # fmt: skip
        context.set_default_timeout(20_000)  # a loaded machine (CI, two workers) is slow
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        # A failed load is named by its response (the console says only "404"); the favicon
        # is the browser's own request.
        page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load")
                and page.problems.append(m.text))
        page.on("response", lambda r: r.status >= 400 and r.request.resource_type != "document"
                and not r.url.endswith("/favicon.ico")
                and page.problems.append(f"{r.status} {r.request.method} {r.url}"))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        return page

    yield make
    for context in contexts:
        context.close()


def artifacts_dir(request: pytest.FixtureRequest) -> Path:
    """``test-artifacts/<test name>/`` under the project root (ignored by git)."""
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
    folder = Path(request.config.rootpath) / "test-artifacts" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """``shots(page, "01-reported")``: a full-page screenshot saved as a test artefact."""
    folder = artifacts_dir(request)
    for old in folder.glob("*.png"):
        old.unlink()

    def shot(page: Any, step: str) -> Path:
        path = folder / f"{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shot


# --- helpers -------------------------------------------------------------------------------------


def log_in(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Log in through the login form, as a person does; waits for the page after it."""
    page.goto(f"{base_url}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()
    if "/login" in page.url:
        raise AssertionError(f"{username} 登录失败: {page.locator('.alert').all_inner_texts()}")


def axe_script() -> Path:
    """axe-core from the project's node_modules (a test-only npm dependency)."""
    from yiwang.settings import package_root

    for folder in (Path.cwd(), package_root().parent.parent):
        path = folder / "node_modules" / "axe-core" / "axe.min.js"
        if path.exists():
            return path
    _unavailable("没有 node_modules/axe-core（npm ci）")
    raise AssertionError("unreachable")


def axe(page: Any, impacts: tuple[str, ...] = SERIOUS) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now, of the given impacts. The page's
    context needs ``bypass_csp=True`` (axe is injected as a script of the page)."""
    page.add_script_tag(path=str(axe_script()))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in impacts]


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation and element, for an assertion message."""
    lines = []
    for v in violations:
        for node in v["nodes"][:5]:
            lines.append(f"[{v['impact']}] {v['id']}: {v['help']} — {node['target']} {node['html'][:120]}")
    return "\n".join(lines)


__all__ = ["LiveServer", "axe", "describe", "log_in", "serve", "PHONE", "DESKTOP", "SERIOUS"]
