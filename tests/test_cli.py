"""The ``yiwang`` command: each test runs in its own YIWANG_HOME, mostly in-process via main()."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import click
import pytest
from sqlalchemy import text

from yiwang.cli.main import Context, cli, main
from yiwang.db import Database
from yiwang.settings import load_settings

UNREACHABLE_PG = "postgresql://gx:s3cret-pw@127.0.0.1:1/yiwang"


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def clean_env(mp: pytest.MonkeyPatch, home: Path, env: dict[str, str]) -> None:
    """Only this test's YIWANG_* settings: none leak in from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("YIWANG_") and not name.startswith("YIWANG_TEST_"):
            mp.delenv(name)
    mp.setenv("YIWANG_HOME", str(home))
    for name, value in env.items():
        mp.setenv(name, value)


def yiwang(home: Path, *args: str, **env: str) -> Outcome:
    """Run ``yiwang ARGS`` in-process the way the console script does."""
    out, err = StringIO(), StringIO()
    with pytest.MonkeyPatch.context() as mp, redirect_stdout(out), redirect_stderr(err):
        clean_env(mp, home, env)
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return Outcome(code, out.getvalue(), err.getvalue())


def ok(home: Path, *args: str, **env: str) -> str:
    result = yiwang(home, *args, **env)
    assert result.code == 0, result
    return result.out


def node_codes(home: Path) -> list[str]:
    db = Database(f"sqlite:///{home / 'yiwang.db'}")
    try:
        with db.read() as s:
            return list(s.execute(text("SELECT code FROM grid_node ORDER BY code")).scalars())
    finally:
        db.dispose()


def secret_of(home: Path) -> str:
    return load_settings({"YIWANG_HOME": str(home)}).secret_key


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def ready(home: Path) -> Path:
    """An initialised, migrated home with notice enabled and no data."""
    ok(home, "init", "--plugins", "notice")
    ok(home, "db", "upgrade")
    return home


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the small demo net (built once for the module)."""
    home = tmp_path_factory.mktemp("demo") / "home"
    ok(home, "init", "--plugins", "notice")
    ok(home, "db", "upgrade")
    assert "演示数据已生成（small" in ok(home, "demo", "--scale", "small")
    return home


# --- init -----------------------------------------------------------------------------------------


def test_init_writes_a_private_site_file_with_a_long_random_secret(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert "已生成站点文件" in ok(a, "init", "--plugins", "notice")
    ok(b, "init", "--plugins", "notice")
    site = a / "site.toml"
    assert stat.S_IMODE(site.stat().st_mode) == 0o600
    assert len(secret_of(a)) >= 43  # at least 256 bits, URL-safe base64
    assert secret_of(a) != secret_of(b)
    assert load_settings({"YIWANG_HOME": str(a)}).plugins_enabled == ("notice",)


def test_init_enables_every_installed_plugin_by_default(home: Path) -> None:
    ok(home, "init")
    assert "notice" in load_settings({"YIWANG_HOME": str(home)}).plugins_enabled


def test_init_refuses_to_overwrite_without_force(home: Path) -> None:
    ok(home, "init", "--plugins", "")
    before = (home / "site.toml").read_text(encoding="utf-8")
    again = yiwang(home, "init", "--plugins", "")
    assert again.code == 5
    assert "站点文件已存在" in again.err and "--force" in again.err
    assert (home / "site.toml").read_text(encoding="utf-8") == before
    old = secret_of(home)
    ok(home, "init", "--plugins", "", "--force")
    assert secret_of(home) != old


def test_init_rejects_an_unknown_plugin_and_leaves_no_site_file(home: Path) -> None:
    result = yiwang(home, "init", "--plugins", "notice,nosuchplugin")
    assert result.code == 4
    assert "nosuchplugin" in result.err and "未安装" in result.err
    assert list(home.glob("site*")) == []


def test_failed_forced_init_keeps_the_existing_site_file(home: Path) -> None:
    ok(home, "init", "--plugins", "notice")
    before = (home / "site.toml").read_bytes()
    assert yiwang(home, "init", "--force", "--plugins", "nosuchplugin").code == 4
    assert (home / "site.toml").read_bytes() == before
    assert list(home.glob("site*")) == [home / "site.toml"]


def test_init_rejects_an_unsupported_database_url(home: Path) -> None:
    result = yiwang(home, "init", "--database-url", "mysql://root@localhost/yiwang")
    assert result.code == 2
    assert "不支持的数据库类型 mysql" in result.err
    assert not (home / "site.toml").exists()


# --- db -------------------------------------------------------------------------------------------


def test_db_status_reports_pending_migrations_until_upgrade(home: Path) -> None:
    ok(home, "init", "--plugins", "notice")
    before = yiwang(home, "db", "status")
    assert before.code == 1
    assert re.search(r"待应用: notice_0001, yiwang_\d{4}\n", before.out)
    assert "数据库已是最新结构" in ok(home, "db", "upgrade")
    after = ok(home, "db", "status")
    assert re.search(r"yiwang: head yiwang_\d{4}\n", after) and "notice: head notice_0001" in after
    assert "待应用: 无" in after
    assert "模型与数据库结构一致" in ok(home, "db", "check")


@pytest.mark.parametrize("url", [UNREACHABLE_PG, "sqlite:////nonexistent-yiwang-dir/y.db"])
def test_db_upgrade_with_an_unreachable_database_exits_3(home: Path, url: str) -> None:
    result = yiwang(home, "db", "upgrade", YIWANG_DATABASE_URL=url)
    assert result.code == 3
    assert result.err.startswith("错误: 无法连接数据库")
    assert "s3cret-pw" not in result.err + result.out
    assert "Traceback" not in result.err


def test_malformed_database_url_exits_2_without_showing_the_password(home: Path) -> None:
    result = yiwang(home, "db", "upgrade", YIWANG_DATABASE_URL="postgresql://gx:s3cret-pw@db:port/x")
    assert result.code == 2
    assert "数据库地址格式错误" in result.err
    assert "s3cret-pw" not in result.err


def test_malformed_site_file_exits_2_naming_the_file(home: Path) -> None:
    home.mkdir()
    (home / "site.toml").write_text("[database\nurl = ''\n", encoding="utf-8")
    result = yiwang(home, "db", "upgrade")
    assert result.code == 2
    assert "配置文件格式错误" in result.err and str(home / "site.toml") in result.err


def test_unknown_key_in_site_file_exits_2_naming_the_key(home: Path) -> None:
    home.mkdir()
    (home / "site.toml").write_text('[database]\nurll = ""\n', encoding="utf-8")
    result = yiwang(home, "db", "upgrade")
    assert result.code == 2 and "database.urll" in result.err


# --- demo and the roster ----------------------------------------------------------------------------


def test_demo_if_empty_skips_when_the_net_has_data(demo_home: Path) -> None:
    before = node_codes(demo_home)
    assert "跳过演示数据生成" in ok(demo_home, "demo", "--if-empty")
    assert node_codes(demo_home) == before


def test_demo_if_empty_fills_an_empty_database(ready: Path) -> None:
    assert "演示数据已生成" in ok(ready, "demo", "--if-empty")
    assert "45" in node_codes(ready)


def test_roster_exported_from_one_home_imports_into_a_fresh_one(demo_home: Path, tmp_path: Path) -> None:
    exported, again = tmp_path / "x.csv", tmp_path / "y.csv"
    codes = node_codes(demo_home)
    assert f"已导出 {len(codes)} 个节点" in ok(demo_home, "grid", "export", str(exported))
    fresh = tmp_path / "fresh"
    ok(fresh, "init", "--plugins", "")
    ok(fresh, "db", "upgrade")
    assert f"新增 {len(codes)} 个节点" in ok(fresh, "grid", "import", str(exported))
    assert node_codes(fresh) == codes
    ok(fresh, "grid", "export", str(again))
    assert again.read_bytes() == exported.read_bytes()
    assert not list(tmp_path.glob("*.part"))


def test_grid_import_of_a_bad_file_reports_each_row_and_writes_nothing(ready: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("code,name,parent_code,level\n45,广西壮族自治区,,1\n4501,南宁市,45,2\n", encoding="utf-8")
    ok(ready, "grid", "import", str(good))
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "编码,名称,上级编码,层级\n"
        "450102,兴宁区,4501,3\n"  # valid on its own: must not be written either
        "45010x,青秀区,4501,3\n"
        "450105,江南区,4501,县\n"
        "450107,西乡塘区,4501,区县\n",
        encoding="utf-8",
    )
    result = yiwang(ready, "grid", "import", str(bad))
    assert result.code == 5
    assert "未导入任何数据" in result.err
    assert "第 3 行" in result.err and "第 5 行" in result.err
    assert node_codes(ready) == ["45", "4501"]


def test_grid_command_before_db_upgrade_says_to_upgrade(home: Path, tmp_path: Path) -> None:
    ok(home, "init", "--plugins", "")
    roster = tmp_path / "r.csv"
    roster.write_text("code,name,parent_code,level\n45,广西壮族自治区,,1\n", encoding="utf-8")
    for args in (("grid", "import", str(roster)), ("grid", "export", str(tmp_path / "o.csv"))):
        result = yiwang(home, *args)
        assert result.code == 3, result
        assert "yiwang db upgrade" in result.err


def test_grid_export_into_a_missing_folder_is_a_clear_error(ready: Path, tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "x.csv"
    result = yiwang(ready, "grid", "export", str(target))
    assert result.code == 5
    assert str(target.parent) in result.err


def test_grid_import_of_a_missing_file_is_a_clear_error(ready: Path, tmp_path: Path) -> None:
    result = yiwang(ready, "grid", "import", str(tmp_path / "nope.csv"))
    assert result.code == 5 and "文件不存在" in result.err


# --- plugin commands ------------------------------------------------------------------------------


def test_notice_commands_post_and_list_when_enabled(ready: Path, tmp_path: Path) -> None:
    roster = tmp_path / "r.csv"
    roster.write_text("code,name,parent_code,level\n45,广西壮族自治区,,1\n4501,南宁市,45,2\n", encoding="utf-8")
    ok(ready, "grid", "import", str(roster))
    assert "已在 广西壮族自治区 发布通知 #1" in ok(
        ready, "notice", "post", "45", "--title", "防汛通知", "--urgency", "urgent"
    )
    listed = ok(ready, "notice", "list", "4501")
    assert "#1" in listed and "防汛通知" in listed
    missing = yiwang(ready, "notice", "list", "4599")
    assert missing.code == 6 and "4599" in missing.err


def test_plugin_command_group_is_absent_when_the_plugin_is_disabled(ready: Path) -> None:
    result = yiwang(ready, "notice", "list", "45", YIWANG_PLUGINS="")
    assert result.code == 2
    assert "No such command 'notice'" in result.err


# --- help -----------------------------------------------------------------------------------------


def command_paths(home: Path) -> list[tuple[str, ...]]:
    """Every command and group, plugin groups included, as argument paths."""
    paths: list[tuple[str, ...]] = [()]
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, home, {})
        with click.Context(cli, obj=Context()) as ctx:

            def walk(group: click.Group, ctx: click.Context, at: tuple[str, ...]) -> None:
                for name in group.list_commands(ctx):
                    command = group.get_command(ctx, name)
                    assert command is not None
                    paths.append((*at, name))
                    if isinstance(command, click.Group):
                        walk(command, click.Context(command, parent=ctx), (*at, name))

            walk(cli, ctx, ())
            ctx.obj.kernel.db.dispose()
    return paths


def test_every_command_and_group_answers_help(home: Path) -> None:
    ok(home, "init", "--plugins", "notice")
    paths = command_paths(home)
    assert {("db", "upgrade"), ("grid", "import"), ("notice",), ("notice", "post")} <= set(paths)
    for path in paths:
        for flag in ("--help", "-h"):
            result = yiwang(home, *path, flag)
            assert result.code == 0, (path, result)
            assert "Usage: yiwang" in result.out, path


def test_help_works_even_with_a_broken_site_file(home: Path) -> None:
    home.mkdir()
    (home / "site.toml").write_text("[oops\n", encoding="utf-8")
    assert "init" in ok(home, "--help")


# --- the installed console script -----------------------------------------------------------------


def test_console_script_reports_errors_with_exit_codes(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "yiwang"
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIWANG_")}
    env |= {"YIWANG_HOME": str(tmp_path / "home"), "YIWANG_DATABASE_URL": UNREACHABLE_PG}
    done = subprocess.run(
        [str(script), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done
    assert "无法连接数据库" in done.stderr and "s3cret-pw" not in done.stderr
    assert "Traceback" not in done.stderr
    version = subprocess.run([str(script), "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("yiwang, version ")


@pytest.fixture(autouse=True)
def _no_stray_environment() -> Iterator[None]:
    """Tests in this module must not leave YIWANG_HOME behind for others."""
    before = os.environ.get("YIWANG_HOME")
    yield
    assert os.environ.get("YIWANG_HOME") == before


def test_user_commands_manage_accounts_and_are_audited(home: Path) -> None:
    ok(home, "init", "--plugins", "")
    ok(home, "db", "upgrade")
    roster = home / "r.csv"
    roster.write_text(
        "code,name,parent_code,level\n45,广西壮族自治区,,1\n4501,南宁市,45,2\n450107,西乡塘区,4501,3\n",
        encoding="utf-8",
    )
    ok(home, "grid", "import", str(roster))
    created = ok(home, "user", "create", "zhangsan", "--role", "county_staff", "--node", "450107", "--name", "张三")
    assert "临时密码" in created
    assert "zhangsan" in ok(home, "user", "list")
    ok(home, "user", "disable", "zhangsan")
    ok(home, "user", "unlock", "zhangsan")
    assert yiwang(home, "user", "assign", "zhangsan", "audit_admin", "450107").code == 0
    clash = yiwang(home, "user", "assign", "zhangsan", "system_admin", "450107")
    assert clash.code == 5 and "不能由同一账号兼任" in clash.err
    trail = ok(home, "audit", "export", str(home / "trail.csv"), "--action", "user.*")
    assert "user" in trail
    text = (home / "trail.csv").read_text(encoding="utf-8-sig")
    for action in ("user.create", "user.disable", "user.unlock", "user.assign"):
        assert action in text
