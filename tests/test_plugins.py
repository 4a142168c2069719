"""The plugin host: discovery through real entry points, validation, load order, per-node
activation and how hooks, routes and the ``plugins list`` command follow it."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stevedore._cache
from click.testing import CliRunner
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from stevedore import ExtensionManager

from yiwang import API_VERSION, builtin
from yiwang.api import Level, MenuItem, PluginSpec, Scope, current_node, hookimpl
from yiwang.errors import PluginError, ValidationError
from yiwang.kernel import Kernel
from yiwang.plugins.loader import load_plugins

FAKE_PREFIX = "ywt_"


# --- fake installed distributions ------------------------------------------------------------


class FakeSite:
    """Installs plugin distributions (``*.dist-info`` + module) into new ``sys.path`` folders."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.monkeypatch = monkeypatch
        self.count = 0

    def install(self, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
        """Write one distribution into a fresh folder and put it first on ``sys.path``."""
        self.count += 1
        site = self.root / f"site{self.count}"
        info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8"
        )
        eps = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[yiwang.plugins]\n{eps}", encoding="utf-8")
        for module, source in modules.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        # A new folder changes the key of stevedore's path cache; its per-namespace class cache
        # must be emptied by hand.
        self.monkeypatch.syspath_prepend(str(site))
        importlib.invalidate_caches()
        ExtensionManager.ENTRY_POINT_CACHE.clear()
        return site

    def plugin(
        self,
        name: str,
        *,
        spec_name: str | None = None,
        api: str = ">=1.0,<2",
        requires: tuple[str, ...] = (),
        body: str = "",
        source: str | None = None,
    ) -> None:
        """Install distribution ``ywt-<name>`` with entry point ``<name> = ywt_<name>:plugin``."""
        module = f"{FAKE_PREFIX}{name}"
        if source is None:
            source = f"""
                import sys
                from yiwang.api import MenuItem, PluginSpec, hookimpl

                @hookimpl
                def yiwang_menu_items():
                    return [MenuItem(label="菜单{name}", href="/p/{name}/")]
                {textwrap.indent(textwrap.dedent(body), " " * 16).lstrip()}
                plugin = PluginSpec(
                    name={spec_name or name!r}, version="0.1", title="测试{name}", api={api!r},
                    hooks=sys.modules[__name__], requires={requires!r},
                )
                """
        self.install(f"ywt-{name}", {name: f"{module}:plugin"}, {module: source})


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """Fake installed plugins for one test; entry-point caches and imports undone after."""
    monkeypatch.setattr(ExtensionManager, "ENTRY_POINT_CACHE", {})
    # Keep stevedore from writing one cache file per temporary folder into ~/.cache.
    monkeypatch.setattr(stevedore._cache._c, "_disable_caching", True)
    yield FakeSite(tmp_path / "sites", monkeypatch)
    for module in [m for m in sys.modules if m.startswith(FAKE_PREFIX)]:
        del sys.modules[module]


def load(*enabled: str) -> Any:
    """Start-up of the plugin host the way the kernel does it."""
    return load_plugins(list(enabled), builtin=builtin)


def report(host: Any, name: str) -> Any:
    [rep] = [r for r in host.reports if r.name == name]
    return rep


BROKEN_IMPORT = "import ywt_no_such_dependency\n"

# --- discovery and validation ------------------------------------------------------------------


def test_installed_plugin_is_discovered_and_loads_when_enabled(site: FakeSite) -> None:
    site.plugin("alpha")
    host = load("alpha")
    assert host.names == ["alpha"]
    item = MenuItem(label="菜单alpha", href="/p/alpha/")
    assert host.collect_items("yiwang_menu_items")[-1] == ("alpha", item)
    rep = report(host, "alpha")
    assert (rep.version, rep.title, rep.distribution) == ("0.1", "测试alpha", "ywt-alpha 0.1")
    assert rep.enabled and rep.loaded and rep.errors == []
    assert rep.hooks == ["yiwang_menu_items"]


def test_installed_is_not_enabled(site: FakeSite) -> None:
    site.plugin("alpha")
    host = load()
    assert host.names == []
    rep = report(host, "alpha")
    assert rep.enabled is False and rep.loaded is False and rep.errors == []
    assert [name for name, _ in host.collect("yiwang_menu_items")] == ["yiwang"]


def test_plugin_failing_to_import_is_only_reported_when_not_enabled(site: FakeSite) -> None:
    site.plugin("alpha")
    site.plugin("wreck", source=BROKEN_IMPORT)
    host = load("alpha")
    assert host.names == ["alpha"]
    rep = report(host, "wreck")
    assert rep.enabled is False and rep.loaded is False
    assert len(rep.errors) == 1 and "ywt_no_such_dependency" in rep.errors[0]


def test_enabled_plugin_failing_to_import_stops_start_up(site: FakeSite) -> None:
    site.plugin("wreck", source=BROKEN_IMPORT)
    with pytest.raises(PluginError) as err:
        load("wreck")
    message = str(err.value)
    assert "插件 wreck" in message
    assert "ModuleNotFoundError" in message and "ywt_no_such_dependency" in message


def test_entry_point_name_must_equal_the_spec_name(site: FakeSite) -> None:
    site.plugin("gadget", spec_name="gizmo")
    assert "gizmo" in report(load(), "gadget").errors[0]
    with pytest.raises(PluginError, match="入口点名称 gadget 与 PluginSpec.name gizmo 不一致"):
        load("gadget")


def test_incompatible_api_range_is_refused(site: FakeSite) -> None:
    site.plugin("future", api=">=2.0,<3")
    with pytest.raises(PluginError) as err:
        load("future")
    assert "插件 future" in str(err.value)
    assert f"声明兼容插件接口 >=2.0,<3，内核提供 {API_VERSION}" in str(err.value)


def test_unknown_enabled_plugin_lists_the_installed_ones(site: FakeSite) -> None:
    site.plugin("alpha")
    with pytest.raises(PluginError) as err:
        load("alpah")
    message = str(err.value)
    assert "插件 alpah 未安装" in message
    installed = message.split("已安装: ", 1)[1]
    assert "alpha" in installed and "notice" in installed


def test_required_plugin_must_be_enabled_too(site: FakeSite) -> None:
    site.plugin("parent")
    site.plugin("child", requires=("parent",))
    with pytest.raises(PluginError, match="插件 child: 依赖的插件 parent 未启用"):
        load("child")
    assert load("child", "parent").names == ["parent", "child"]


def test_dependency_cycle_is_refused(site: FakeSite) -> None:
    site.plugin("ping", requires=("pong",))
    site.plugin("pong", requires=("ping",))
    with pytest.raises(PluginError, match="插件依赖成环: ping → pong → ping"):
        load("ping", "pong")


def test_two_distributions_claiming_one_name_are_refused(site: FakeSite) -> None:
    site.plugin("twin")
    source = "from ywt_twin import plugin\n"
    site.install("ywt-twin-fork", {"twin": "ywt_twin_fork:plugin"}, {"ywt_twin_fork": source})
    with pytest.raises(PluginError, match="插件 twin: 有多个同名入口点"):
        load("twin")


def test_misspelt_hook_stops_start_up_naming_the_plugin(site: FakeSite) -> None:
    site.plugin("typo", body="@hookimpl\ndef yiwang_routez():\n    return []\n")
    assert load().names == []  # installed but not enabled: harmless
    with pytest.raises(PluginError) as err:
        load("typo")
    message = str(err.value)
    assert "插件 typo" in message and "实现了未定义的钩子" in message
    assert "yiwang_routez" in message


def test_hook_with_unknown_parameter_stops_start_up(site: FakeSite) -> None:
    site.plugin(
        "badarg", body="@hookimpl\ndef yiwang_node_created(session, node, user):\n    pass\n"
    )
    with pytest.raises(PluginError) as err:
        load("badarg")
    assert "插件 badarg" in str(err.value) and "user" in str(err.value)


def test_plugins_load_after_what_they_require(site: FakeSite) -> None:
    site.plugin("leaf", requires=("trunk",))
    site.plugin("trunk", requires=("root",))
    site.plugin("root")
    host = load("leaf", "trunk", "root")
    assert host.names == ["root", "trunk", "leaf"]
    kernel_first = ["yiwang", "root", "trunk", "leaf"]
    assert [name for name, _ in host.pm.list_name_plugin()] == kernel_first
    assert [name for name, _ in host.collect("yiwang_menu_items")] == kernel_first


def test_declared_tables_are_attributed_to_their_plugin() -> None:
    host = load("notice")
    owners = {model.__tablename__: name for name, model in host.collect_items("yiwang_models")}
    assert owners["notice_notice"] == "notice"
    assert owners["grid_node"] == owners["plugin_activation"] == "yiwang"


# --- per-node activation -------------------------------------------------------------------------

HEARD: list[tuple[str, str, str]] = []


class Recorder:
    """Hook implementations that say which plugin was reached."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def yiwang_template_slot(self, slot: str, node: Any, request: Any) -> str | None:
        return f"{self.name}-slot@{node.code}" if slot == "node.detail" else None

    @hookimpl
    def yiwang_node_created(self, session: Any, node: Any) -> None:
        HEARD.append((self.name, "created", node.code))

    @hookimpl
    def yiwang_node_moved(self, session: Any, node: Any, old_path: str, moved: int) -> None:
        HEARD.append((self.name, "moved", node.code))


def _spec(name: str, hooks: object, **kw: Any) -> PluginSpec:
    return PluginSpec(
        name=name, version="1.0", title=f"模块{name}", api=">=1.0,<2", hooks=hooks, **kw
    )


ALPHA = _spec("alpha", Recorder("alpha"))
BETA = _spec("beta", Recorder("beta"), default_active=False)
GAMMA = _spec("gamma", Recorder("gamma"), scope=Scope.GLOBAL)


def _where(request: Request) -> Response:
    node = current_node(request)
    return PlainTextResponse(f"routed at {node.code if node else '-'}")


class RoutedHooks:
    @hookimpl
    def yiwang_routes(self) -> list[BaseRoute]:
        return [Route("/", _where, name="where")]

    @hookimpl
    def yiwang_menu_items(self) -> list[MenuItem]:
        return [MenuItem(label="路由模块菜单", href="/p/routed/")]


ROUTED = _spec("routed", RoutedHooks(), levels=(Level.CITY, Level.COUNTY))


@pytest.fixture(autouse=True)
def _forget_heard() -> None:
    HEARD.clear()


@pytest.mark.with_plugins(ALPHA)
def test_nearest_explicit_ancestor_wins(kernel: Any, grid: Any) -> None:
    grid.node("45010700100101")
    grid.node("450102")
    grid.node("4502")
    kernel.activation.set("alpha", grid.get("4501"), False)
    kernel.activation.set("alpha", grid.get("450107"), True)

    def on(code: str) -> bool:
        return bool(kernel.activation.is_active("alpha", grid.get(code)))

    assert on("45010700100101") and on("450107001") and on("450107")
    assert not on("450102") and not on("4501")
    assert on("45") and on("4502")  # above and beside the switch: the default


@pytest.mark.with_plugins(BETA)
def test_plugin_off_by_default_is_off_until_switched_on(kernel: Any, grid: Any) -> None:
    county = grid.node("450107")
    other = grid.node("4502")
    assert not kernel.activation.is_active("beta", county)
    kernel.activation.set("beta", grid.get("4501"), True)
    assert kernel.activation.is_active("beta", county)
    assert not kernel.activation.is_active("beta", other)


@pytest.mark.with_plugins(GAMMA, ALPHA)
def test_global_plugin_cannot_be_switched_and_is_always_active(kernel: Any, grid: Any) -> None:
    city = grid.node("4501")
    kernel.activation.set("alpha", grid.get("45"), False)
    with pytest.raises(ValidationError, match="全局插件，不能按地区开关"):
        kernel.activation.set("gamma", city, False)
    assert kernel.activation.active_plugins(city) == {"gamma"}
    assert kernel.activation.is_active("gamma", None)


@pytest.mark.with_plugins(ALPHA)
def test_switching_a_plugin_that_is_not_enabled_is_refused(kernel: Any, grid: Any) -> None:
    with pytest.raises(ValidationError, match="插件 notice 未启用"):
        kernel.activation.set("notice", grid.node("4501"), False)


@pytest.mark.with_plugins(ALPHA)
def test_switching_at_an_undeclared_level_is_refused(kernel: Any, grid: Any) -> None:
    township = grid.node("450107001")
    with pytest.raises(ValidationError) as err:
        kernel.activation.set("alpha", township, False)
    assert "只能在以下层级开关: 省(自治区)、市、县(市、区)" in str(err.value)
    assert "该节点为乡镇(街道)" in str(err.value)
    assert kernel.activation.is_active("alpha", township)
    assert kernel.activation.explicit() == []


@pytest.mark.with_plugins(ALPHA)
def test_clearing_a_setting_inherits_again(kernel: Any, grid: Any) -> None:
    county = grid.node("450107")
    kernel.activation.set("alpha", grid.get("4501"), False)
    kernel.activation.set("alpha", county, True)
    assert kernel.activation.is_active("alpha", county)
    kernel.activation.set("alpha", county, None)
    assert not kernel.activation.is_active("alpha", county)
    assert [(p, a) for _, p, a in kernel.activation.explicit()] == [("alpha", False)]


@pytest.mark.with_plugins(ALPHA, BETA)
def test_node_hooks_reach_only_plugins_active_there(kernel: Any, grid: Any, client: Any, login: Any) -> None:
    login()
    county = grid.node("450107")
    other = grid.node("450102")
    kernel.activation.set("beta", county, True)

    def slot(node: Any) -> list[str]:
        return sorted(
            kernel.hook_at(node).yiwang_template_slot(slot="node.detail", node=node, request=None)
        )

    assert slot(county) == ["alpha-slot@450107", "beta-slot@450107"]
    assert slot(other) == ["alpha-slot@450102"]
    page = client.get("/grid/450102")
    assert "alpha-slot@450102" in page.text and "beta-slot" not in page.text
    assert "beta-slot@450107" in client.get("/grid/450107").text


@pytest.mark.with_plugins(ALPHA, BETA)
def test_data_hooks_reach_every_enabled_plugin_even_where_inactive(kernel: Any, grid: Any) -> None:
    kernel.activation.set("alpha", grid.node("45"), False)
    grid.node("4502")
    HEARD.clear()
    grid.node("450107")
    assert sorted(HEARD) == [("alpha", "created", "4501"), ("alpha", "created", "450107"),
                             ("beta", "created", "4501"), ("beta", "created", "450107")]  # fmt: skip
    HEARD.clear()
    grid.move("450107", "4502", new_code="450207")
    assert sorted(HEARD) == [("alpha", "moved", "450207"), ("beta", "moved", "450207")]


@pytest.mark.with_plugins(ALPHA)
def test_moved_subtree_follows_its_new_ancestors(kernel: Any, grid: Any) -> None:
    county = grid.node("450107")
    grid.node("4502")
    kernel.activation.set("alpha", grid.get("4501"), False)
    assert not kernel.activation.is_active("alpha", county)
    moved = grid.move("450107", "4502", new_code="450207")
    assert kernel.activation.is_active("alpha", moved)


@pytest.mark.with_plugins(ALPHA)
def test_switch_made_by_one_kernel_reaches_another_without_restart(
    kernel: Any, grid: Any, settings: Any, yiwang_db: Any
) -> None:
    county = grid.node("450107")
    other = Kernel(settings, extra_plugins=[ALPHA], db=yiwang_db)
    assert other.activation.is_active("alpha", county)
    kernel.activation.set("alpha", grid.get("4501"), False)
    assert not other.activation.is_active("alpha", county)
    assert (
        other.hook_at(county).yiwang_template_slot(slot="node.detail", node=county, request=None)
        == []
    )
    other.activation.set("alpha", county, True)
    assert kernel.activation.is_active("alpha", county)


@pytest.mark.with_plugins(ROUTED)
def test_plugin_routes_answer_404_where_inactive(kernel: Any, grid: Any, client: Any, login: Any) -> None:
    login()
    grid.node("450107")
    grid.node("450102")
    kernel.activation.set("routed", grid.get("4501"), False)
    kernel.activation.set("routed", grid.get("450107"), True)
    on = client.get("/p/routed/?node=450107")
    assert on.status_code == 200 and on.text == "routed at 450107"
    off = client.get("/p/routed/?node=450102")
    assert off.status_code == 404
    assert "本地区未启用该模块" in off.text and "模块routed" in off.text
    assert "路由模块菜单" in client.get("/grid/450107").text
    assert "路由模块菜单" not in client.get("/grid/450102").text


# --- yiwang plugins list -------------------------------------------------------------------------


def yiwang(args: list[str], env: dict[str, str]) -> Any:
    """Run the ``yiwang`` command in-process; the click result."""
    from yiwang.cli.main import Context, cli

    obj = Context()
    try:
        result = CliRunner().invoke(cli, args, env=env, obj=obj)
    finally:
        if "kernel" in obj.__dict__:
            obj.kernel.db.dispose()
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _main_with_env(main: Any, args: list[str], env: dict[str, str]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        main(args)


def plugins_list(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Run ``yiwang plugins list --json``; its exit code and the parsed output."""
    result = yiwang(["plugins", "list", "--json"], env)
    return result.exit_code, json.loads(result.stdout)


def by_name(listing: dict[str, Any]) -> dict[str, Any]:
    return {p["name"]: p for p in listing["plugins"]}


@pytest.mark.with_plugins("notice")
def test_plugins_list_shows_each_plugin_and_where_it_is_switched(
    yiwang_db: Any, kernel: Any, grid: Any, tmp_path: Path
) -> None:
    kernel.activation.set("notice", grid.node("4501"), False)
    code, listing = plugins_list({
        "YIWANG_HOME": str(tmp_path / "cli-home"),
        "YIWANG_PLUGINS": "notice",
        "YIWANG_DATABASE_URL": yiwang_db.url.render_as_string(hide_password=False),
    })  # fmt: skip
    assert code == 0 and listing["error"] == ""
    notice = by_name(listing)["notice"]
    assert (notice["version"], notice["title"]) == ("0.1.0", "通知公告")
    assert notice["enabled"] and notice["errors"] == []
    assert {"yiwang_routes", "yiwang_template_slot", "yiwang_node_moved"} <= set(notice["hooks"])
    assert [(a["node"], a["active"]) for a in notice["active"]] == [("4501", False)]


def test_plugins_list_exits_4_when_an_enabled_plugin_is_broken(
    site: FakeSite, tmp_path: Path
) -> None:
    site.plugin("wreck", source=BROKEN_IMPORT)
    site.plugin("future", api=">=2.0,<3")
    code, listing = plugins_list(
        {"YIWANG_HOME": str(tmp_path / "cli-home"), "YIWANG_PLUGINS": "notice,wreck"}
    )
    assert code == 4
    assert "插件 wreck" in listing["error"] and "ywt_no_such_dependency" in listing["error"]
    plugins = by_name(listing)
    assert plugins["wreck"]["enabled"] and "ywt_no_such_dependency" in plugins["wreck"]["errors"][0]
    assert plugins["notice"]["enabled"] and plugins["notice"]["errors"] == []
    assert "yiwang_routes" in plugins["notice"]["hooks"]
    assert not plugins["future"]["enabled"] and f"内核提供 {API_VERSION}" in plugins["future"]["errors"][0]


def test_plugins_list_reports_a_broken_plugin_that_is_not_enabled_without_failing(
    site: FakeSite, tmp_path: Path
) -> None:
    site.plugin("wreck", source=BROKEN_IMPORT)
    site.plugin("alpha")
    code, listing = plugins_list(
        {"YIWANG_HOME": str(tmp_path / "cli-home"), "YIWANG_PLUGINS": "notice"}
    )
    assert code == 0 and listing["error"] == ""
    plugins = by_name(listing)
    assert not plugins["wreck"]["enabled"] and plugins["wreck"]["errors"]
    assert plugins["alpha"]["distribution"] == "ywt-alpha 0.1"
    assert plugins["alpha"]["hooks"] == ["yiwang_menu_items"]
    assert plugins["notice"]["enabled"] and plugins["notice"]["errors"] == []


def test_enabled_plugin_commands_run_under_its_name(site: FakeSite, tmp_path: Path) -> None:
    site.plugin(
        "tool",
        body="""
        import click

        @click.command()
        @click.argument("who")
        def hello(who):
            click.echo(f"你好 {who}")

        @hookimpl
        def yiwang_cli_commands():
            return [hello]
        """,
    )
    home = tmp_path / "cli-home"
    home.mkdir()
    env = {"YIWANG_HOME": str(home), "YIWANG_PLUGINS": "tool"}
    from yiwang.cli.main import main

    with pytest.raises(SystemExit) as before:  # not migrated yet: a clear message, exit 3
        _main_with_env(main, ["tool", "hello", "网格员"], env)
    assert before.value.code == 3
    assert yiwang(["db", "upgrade"], env).exit_code == 0
    result = yiwang(["tool", "hello", "网格员"], env)
    assert result.exit_code == 0 and result.stdout == "你好 网格员\n"
    hidden = yiwang(["tool", "hello", "网格员"], {"YIWANG_HOME": str(home), "YIWANG_PLUGINS": ""})
    assert hidden.exit_code == 2 and "No such command 'tool'" in hidden.output
