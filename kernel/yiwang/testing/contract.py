"""The contract suite every plugin runs: subclass ``PluginContract`` and set ``plugin``.

It checks what the kernel relies on and cannot check at run time cheaply: a valid spec, known
hooks, namespaced names, one migration head, models equal to migrations, and imports of the
documented kernel API only.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from yiwang.hookspecs import all_hooks

#: Kernel modules a plugin may import.
PUBLIC_MODULES = frozenset({"yiwang", "yiwang.api", "yiwang.testing"})


def _package_dir(package: str) -> Path:
    found = importlib.util.find_spec(package)
    assert found is not None and found.submodule_search_locations, f"找不到包 {package}"
    return Path(list(found.submodule_search_locations)[0])


class PluginContract:
    """Base class of a plugin's contract tests (``class TestContract(PluginContract)``)."""

    #: The plugin's entry-point name.
    plugin: str = ""

    # --- helpers -------------------------------------------------------------------------------

    def spec(self) -> Any:
        from yiwang.plugins.loader import discover

        found = discover().get(self.plugin)
        assert found is not None, f"插件 {self.plugin} 未安装（没有 yiwang.plugins 入口点）"
        assert found.spec is not None, f"插件 {self.plugin}: {found.errors}"
        return found.spec

    def host(self) -> Any:
        from yiwang import builtin
        from yiwang.plugins.loader import load_plugins

        spec = self.spec()
        return load_plugins([*spec.requires, self.plugin], builtin=builtin)

    @pytest.fixture
    def settings(self, tmp_path: Path, yiwang_db: Any) -> Any:
        """This plugin and its requirements enabled."""
        from yiwang.keys import ensure_keys
        from yiwang.settings import load_settings

        spec = self.spec()
        settings = load_settings(
            {"YIWANG_HOME": str(tmp_path / "home")},
            overrides={
                "database": {"url": yiwang_db.url.render_as_string(hide_password=False)},
                "security": {"secret_key": "contract-secret-" + "x" * 32},
                "plugins": {"enabled": [*spec.requires, self.plugin], "activation_refresh_seconds": 0.0},
                "jobs": {"run_in_app": False},
            },
        )
        ensure_keys(settings)
        return settings

    # --- the contract --------------------------------------------------------------------------

    def test_spec_is_valid(self) -> None:
        from yiwang import API_VERSION

        spec = self.spec()
        assert spec.problems(self.plugin, API_VERSION) == []

    def test_loads_with_its_requirements(self) -> None:
        host = self.host()
        assert self.plugin in host.specs

    def test_hooks_are_known_and_marked(self) -> None:
        hooks = self.spec().hooks
        known = set(all_hooks())
        for name in dir(hooks):
            if not name.startswith("yiwang_"):
                continue
            fn = getattr(hooks, name)
            assert name in known, f"{name} 不是已定义的钩子（见 yiwang.hookspecs）"
            assert hasattr(fn, "yiwang_impl"), f"{name} 缺少 @hookimpl 装饰器"

    def test_tables_are_namespaced(self) -> None:
        for name, model in self.host().collect_items("yiwang_models"):
            if name == self.plugin:
                table = model.__tablename__
                assert table.startswith(f"{self.plugin}_"), f"表名 {table} 应以 {self.plugin}_ 开头"

    def test_templates_are_namespaced(self) -> None:
        folder = _package_dir(self.spec().package_name) / "templates"
        if not folder.is_dir():
            return
        for path in folder.rglob("*"):
            if path.is_file():
                rel = path.relative_to(folder)
                assert rel.parts[0] == self.plugin, f"模板 {rel} 应放在 templates/{self.plugin}/ 下"

    def test_templates_hold_no_chinese_outside_messages(self) -> None:
        """Interface text outside ``_()`` can never be translated (docs/i18n.md)."""
        from yiwang.web.messages import untranslatable

        left = untranslatable([_package_dir(self.spec().package_name) / "templates"])
        assert not left, "模板中有未包在 _() 里的中文（无法翻译）:\n" + "\n".join(left)

    def test_catalogs_list_and_translate_every_message(self) -> None:
        """Each catalog the plugin ships (``locale/<lang>/LC_MESSAGES/messages.po``) lists every
        message of its templates and menu items and every title of its workflows and case types
        (the case pages translate them), translated, placeholders and tags kept."""
        from yiwang.web.messages import catalogs, declared_labels, extract, problems

        folder = _package_dir(self.spec().package_name)
        host = self.host()
        menu = host.collect_items("yiwang_menu_items")
        ours = {hook: [item for name, item in host.collect_items(hook) if name == self.plugin]
                for hook in ("yiwang_workflows", "yiwang_case_types")}  # fmt: skip
        labels = declared_labels(ours["yiwang_workflows"], ours["yiwang_case_types"])
        found = extract([folder / "templates"], [item for name, item in menu if name == self.plugin], labels)
        for po_file in catalogs(folder / "locale"):
            bad = problems(po_file, found)
            assert not bad, f"{po_file.relative_to(folder)}:\n" + "\n".join(bad)

    def test_menu_items_point_into_the_plugin(self) -> None:
        for name, item in self.host().collect_items("yiwang_menu_items"):
            if name == self.plugin:
                assert item.href.startswith(f"/p/{self.plugin}/"), item

    def test_permissions_are_namespaced(self) -> None:
        for name, perm in self.host().collect_items("yiwang_permissions"):
            if name == self.plugin:
                assert perm.name.startswith(f"{self.plugin}."), f"权限 {perm.name} 应以 {self.plugin}. 开头"

    def test_every_route_declares_its_permission(self) -> None:
        from starlette.routing import Mount, Route

        from yiwang.rbac.guard import ATTR

        def walk(routes: list[Any]) -> list[Any]:
            out = []
            for r in routes:
                if isinstance(r, Mount):
                    out += walk(list(getattr(r.app, "routes", []) or []))
                elif isinstance(r, Route):
                    out.append(r)
            return out

        own = [r for name, r in self.host().collect_items("yiwang_routes") if name == self.plugin]
        missing = [r.path for r in walk(own) if getattr(r.endpoint, ATTR, None) is None]
        assert missing == [], f"这些路由没有用 requires(...) 或 public 声明权限: {missing}"

    def test_one_migration_head(self) -> None:
        from yiwang.db import migrate
        from yiwang.plugins.host import KERNEL

        host = self.host()
        spec = self.spec()
        tables = migrate.owned_tables(host)[self.plugin]
        if not spec.migrations:
            assert not tables, "插件声明了表，但没有声明 migrations"
            return
        heads = migrate.heads_by_branch(host)
        assert len(heads.get(self.plugin, [])) == 1, f"迁移分支 {self.plugin} 应恰有一个 head: {heads}"
        assert len(heads.get(KERNEL, [])) == 1, f"内核迁移分支应恰有一个 head: {heads}"

    def test_models_match_migrations(self, yiwang_db: Any) -> None:
        from yiwang.db import migrate

        host = self.host()
        tables = migrate.owned_tables(host)[self.plugin]
        assert migrate.diff(yiwang_db, host, tables) == []

    def test_imports_only_the_public_kernel_api(self) -> None:
        folder = _package_dir(self.spec().package_name)
        for path in folder.rglob("*.py"):
            if "migrations" in path.relative_to(folder).parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for node in ast.walk(tree):
                modules: list[str] = []
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules = [node.module]
                for module in modules:
                    if module == "yiwang" or module.startswith("yiwang."):
                        assert module in PUBLIC_MODULES, (
                            f"{path.name}:{getattr(node, 'lineno', '?')} 导入了内核内部模块 {module}；"
                            "插件只能使用 yiwang.api（测试中还有 yiwang.testing）"
                        )

    def test_pages_answer_404_where_inactive(self, kernel: Any, client: Any, grid: Any, login: Any) -> None:
        from starlette.routing import Route

        spec = self.spec()
        if spec.scope.value != "node":
            return
        login("province_staff", "45")
        kernel.activation.set(self.plugin, grid.get("45"), False)
        for name, route in kernel.host.collect_items("yiwang_routes"):
            if name != self.plugin or not isinstance(route, Route) or route.param_convertors:
                continue
            if "GET" not in (route.methods or ()):
                continue
            response = client.get(f"/p/{self.plugin}{route.path}")
            assert response.status_code == 404, route.path
            assert "本地区未启用该模块" in response.text
