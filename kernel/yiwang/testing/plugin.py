"""pytest plugin (entry point ``pytest11``): fixtures for testing the kernel and plugins.

Fixtures
--------
``yiwang_backend``  session-scoped, parametrised ``sqlite`` / ``postgresql``: every test that
                    uses the database runs on both. PostgreSQL comes from the environment
                    variable ``YIWANG_TEST_POSTGRESQL`` (a URL of a database where test databases
                    may be created); without it, or when it cannot be reached, PostgreSQL tests
                    skip and say why — except under ``CI=true``, where that is a failure.
``yiwang_db``       the migrated Database of that backend, emptied before each test.
``settings``        Settings for a test site in a temporary home.
``kernel``          a Kernel on ``yiwang_db`` with the plugins of ``@pytest.mark.with_plugins``.
``app``/``client``  the Starlette app and a TestClient for it.
``grid``            a GridFactory building nodes by code (parents created as needed).
``users``           ``users.make(role, node)`` / ``users.login(client, username)``.
``login``           ``login(role=..., node=...)``: a new user of that role, logged in on ``client``.

``cheap_passwords`` cheap argon2 parameters for the accounts made and the passwords checked in
                    the test: for tests about something else that log many people in.
``live_server``, ``browser``, ``new_page``, ``shots``: browser tests (``yiwang.testing.browser``;
                    mark them ``@pytest.mark.browser``: they run on SQLite only).

Every test also runs under ``no_personal_data_in_logs``: a raw citizen ID or mobile number in
any log record fails it.

Mark a test ``@pytest.mark.with_plugins("notice", other_spec)`` to enable plugins by name
(installed ones) or by PluginSpec (defined in the test).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from yiwang.testing.browser import browser, live_server, new_page, shots  # noqa: F401
from yiwang.testing.database import TestDatabases, clean
from yiwang.testing.logcheck import no_personal_data_in_logs  # noqa: F401  (autouse everywhere)

BACKENDS = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("yiwang")
    group.addoption(
        "--yiwang-backends",
        default=os.environ.get("YIWANG_TEST_BACKENDS", ",".join(BACKENDS)),
        help="comma-separated database backends to run database tests on (sqlite,postgresql)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "with_plugins(*plugins): enable plugins (names or PluginSpec) for the test"
    )
    config.addinivalue_line("markers", "sqlite_only(reason): the test concerns SQLite alone")
    config.addinivalue_line(
        "markers", "browser: drives Chromium through Playwright (SQLite only; -m 'not browser' skips)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "yiwang_backend" in metafunc.fixturenames:
        wanted = [b.strip() for b in metafunc.config.getoption("--yiwang-backends").split(",")]
        backends = [b for b in BACKENDS if b in wanted]
        marks = metafunc.definition.get_closest_marker
        # A browser sees the same pages on either backend; the HTTP-level tests cover both.
        if marks("sqlite_only") or marks("browser"):
            backends = [b for b in backends if b == "sqlite"]
        metafunc.parametrize("yiwang_backend", backends, scope="session")


@pytest.fixture(scope="session")
def yiwang_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabases]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    dbs = TestDatabases(tmp_path_factory.mktemp("yiwang-db"), worker)
    yield dbs
    dbs.close()


@pytest.fixture
def yiwang_db(yiwang_databases: TestDatabases, yiwang_backend: str) -> Any:
    """The migrated database of this backend, emptied before the test."""
    db = yiwang_databases.get(yiwang_backend)
    clean(db)
    return db


def _plugins_of(request: pytest.FixtureRequest) -> tuple[list[str], list[Any]]:
    from yiwang.plugins.spec import PluginSpec

    names: list[str] = []
    specs: list[Any] = []
    marker = request.node.get_closest_marker("with_plugins")
    for item in marker.args if marker else ():
        if isinstance(item, PluginSpec):
            specs.append(item)
            names.append(item.name)
        else:
            names.append(str(item))
    return names, specs


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, yiwang_db: Any) -> Any:
    from yiwang.keys import ensure_keys
    from yiwang.settings import load_settings

    names, _ = _plugins_of(request)
    settings = load_settings(
        {"YIWANG_HOME": str(tmp_path / "home")},
        overrides={
            "database": {"url": yiwang_db.url.render_as_string(hide_password=False)},
            "security": {"secret_key": "test-secret-key-" + "x" * 32},
            "plugins": {"enabled": names, "activation_refresh_seconds": 0.0},
            # Tests run jobs explicitly (``yiwang.jobs.run_due``), never in the app's background.
            "jobs": {"run_in_app": False},
        },
    )
    ensure_keys(settings)
    return settings


@pytest.fixture
def kernel(request: pytest.FixtureRequest, settings: Any, yiwang_db: Any) -> Any:
    from yiwang.kernel import Kernel

    _, specs = _plugins_of(request)
    kernel = Kernel(settings, extra_plugins=specs, db=yiwang_db)
    yield kernel
    kernel.close()


@pytest.fixture
def app(settings: Any, kernel: Any) -> Any:
    from yiwang.app import create_app

    return create_app(settings, kernel=kernel)


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    from starlette.testclient import TestClient

    with TestClient(app, raise_server_exceptions=True) as c:
        yield c


@pytest.fixture
def users(kernel: Any) -> Any:
    """``users.make(role, node)`` creates a user; ``users.login(client, name)`` logs in."""
    from yiwang.testing.users import Users

    return Users(kernel)


@pytest.fixture
def login(users: Any, client: Any) -> Any:
    """``login(role="county_staff", node="450107")``: a new user with that role, logged in on
    ``client``; returns the user."""

    def log_in(role: str = "province_staff", node: str = "45", **kwargs: Any) -> Any:
        user = users.make(role, node, **kwargs)
        response = users.login(client, user.username)
        assert response.status_code in (200, 303), response.text[:500]
        return user

    return log_in


@pytest.fixture
def grid(kernel: Any) -> Any:
    from yiwang.testing.factories import GridFactory

    return GridFactory(kernel)


@pytest.fixture
def case_net(kernel: Any, grid: Any, users: Any) -> Any:
    """A small net with organisations and staff for driving cases (``yiwang.testing.cases``)."""
    from yiwang.testing.cases import build_net

    return build_net(kernel, grid, users)


@pytest.fixture
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters for this test: accounts made after it (request it first) get cheap
    hashes, and logins and password checks verify them quickly. Argon2 is slow on purpose; a
    test about authorisation or pages need not pay it for every login."""
    from argon2 import PasswordHasher

    from yiwang.auth import passwords
    from yiwang.testing import users as users_module

    cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    monkeypatch.setattr(passwords, "_HASHER", cheap)
    monkeypatch.setattr(passwords, "DUMMY_HASH", cheap.hash("no-such-user"))
    monkeypatch.setattr(users_module, "_HASHES", {})
