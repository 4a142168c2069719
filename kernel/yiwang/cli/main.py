"""The ``yiwang`` command: init, demo, serve, db, plugins, grid — and plugins' own commands.

Every expected failure (bad config, unreachable database, bad input) is a ``YiwangError`` and
ends with its Chinese message on stderr and its exit code; nothing is left half-done.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import secrets
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from yiwang import __version__
from yiwang.errors import DatabaseUnavailable, ValidationError, YiwangError
from yiwang.settings import Settings, home_from_env, load_settings, site_file_for


class Context:
    """Lazily loaded settings and kernel, so ``init`` and ``--help`` need neither."""

    def __init__(self) -> None:
        self.overrides: dict[str, Any] = {}

    @cached_property
    def settings(self) -> Settings:
        return load_settings(overrides=self.overrides)

    @cached_property
    def kernel(self) -> Any:
        from yiwang.kernel import Kernel

        kernel = Kernel(self.settings)
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.find_root().call_on_close(kernel.db.dispose)
        return kernel


pass_ctx = click.make_pass_decorator(Context, ensure=True)


class YiwangGroup(click.Group):
    """Adds each enabled plugin's commands as ``yiwang <plugin> …`` when settings load."""

    def _plugin_groups(self, ctx: click.Context) -> dict[str, click.Command]:
        obj = ctx.ensure_object(Context)
        try:
            host = obj.kernel.host
        except YiwangError:
            return {}
        groups: dict[str, click.Command] = {}
        for name, command in host.collect_items("yiwang_cli_commands"):
            group = groups.setdefault(
                name,
                click.Group(name=name, help=f"{host.specs[name].title}（插件 {name}）的命令"),
            )
            assert isinstance(group, click.Group)
            group.add_command(_guarded(command))
        return groups

    def list_commands(self, ctx: click.Context) -> list[str]:
        own = super().list_commands(ctx)
        return own + sorted(n for n in self._plugin_groups(ctx) if n not in own)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        own = super().get_command(ctx, cmd_name)
        return own if own is not None else self._plugin_groups(ctx).get(cmd_name)


def _guarded(command: click.Command) -> click.Command:
    """A copy of a plugin command that first checks the database is reachable and migrated."""
    original = command.callback
    if original is None:
        return command

    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        _ready(click.get_current_context().ensure_object(Context).kernel)
        return original(*args, **kwargs)

    guarded = copy.copy(command)
    guarded.callback = run
    return guarded


@click.group(cls=YiwangGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="yiwang")
def cli() -> None:
    """一网 · 网格化社会治理平台。

    配置来自 config/yiwang.toml、站点文件（YIWANG_HOME/site.toml，由 init 生成）与 YIWANG_* 环境变量。
    """


# --- init --------------------------------------------------------------------------------------


def _installed_plugins() -> list[str]:
    from yiwang.plugins.loader import discover

    return sorted(name for name, cand in discover().items() if cand.spec and not cand.errors)


@cli.command()
@click.option("--database-url", default="", help="数据库地址；默认 YIWANG_HOME 下的嵌入式 SQLite。")
@click.option("--plugins", "plugins", default=None, help="启用的插件，逗号分隔；默认启用全部已安装插件。")
@click.option("--force", is_flag=True, help="覆盖已有站点文件（会生成新密钥，现有会话失效）。")
def init(database_url: str, plugins: str | None, force: bool) -> None:
    """生成站点配置文件（含随机密钥）。"""
    home = home_from_env(os.environ)
    site = site_file_for(home, os.environ)
    if site.exists() and not force:
        raise ValidationError(f"站点文件已存在: {site}（如需重建请加 --force）")
    enabled = (
        [p.strip() for p in plugins.split(",") if p.strip()]
        if plugins is not None
        else _installed_plugins()
    )
    if database_url:
        from yiwang.db import normalise_url

        normalise_url(database_url)
    home.mkdir(parents=True, exist_ok=True)
    site.parent.mkdir(parents=True, exist_ok=True)
    body = (
        "# 站点配置：由 `yiwang init` 生成。密钥须保密；可用 YIWANG_* 环境变量覆盖任一项。\n"
        "[security]\n"
        f'secret_key = "{secrets.token_urlsafe(48)}"\n\n'
        "[database]\n"
        f"url = {json.dumps(database_url)}\n\n"
        "[plugins]\n"
        f"enabled = {json.dumps(enabled, ensure_ascii=False)}\n"
    )
    tmp = site.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as fh:
        fh.write(body)  # created 0600: the secret is never readable by others
    # Prove the new file loads (unknown plugin names, bad URL) before it replaces anything;
    # the kernel needs the key files, so they are made first and removed again on failure.
    from yiwang.kernel import Kernel
    from yiwang.keys import ensure_keys

    created: list[Path] = []
    try:
        settings = load_settings({**os.environ, "YIWANG_SITE": str(tmp)})
        created = ensure_keys(settings)
        Kernel(settings).db.dispose()
    except YiwangError:
        tmp.unlink()
        for path in created:
            path.unlink(missing_ok=True)
        raise
    tmp.replace(site)
    for path in created:
        click.echo(f"已生成密钥文件 {path}（请与数据库分开备份）")
    click.echo(f"已生成站点文件 {site}")
    click.echo(f"启用插件: {', '.join(enabled) or '（无）'}")


# --- db ------------------------------------------------------------------------------------------


def _ready(kernel: Any) -> None:
    """The database answers and has every migration (else exit 3 saying what to run)."""
    from yiwang.db import migrate

    kernel.db.check()
    pending = migrate.pending(kernel.db, kernel.host)
    if pending:
        raise DatabaseUnavailable(
            f"数据库结构不是最新（待应用: {', '.join(sorted(pending))}），请先运行 `yiwang db upgrade`"
        )


@cli.group()
def db() -> None:
    """数据库结构迁移。"""


@db.command("upgrade")
@pass_ctx
def db_upgrade(obj: Context) -> None:
    """应用内核与已启用插件的全部迁移。"""
    from yiwang.db import migrate

    kernel = obj.kernel
    migrate.upgrade(kernel.db, kernel.host)
    click.echo(f"数据库已是最新结构: {kernel.db.display_url}")


@db.command("status")
@pass_ctx
def db_status(obj: Context) -> None:
    """显示各分支的当前版本与待应用的迁移。"""
    from yiwang.db import migrate

    kernel = obj.kernel
    kernel.db.check()
    for branch, heads in sorted(migrate.heads_by_branch(kernel.host).items()):
        click.echo(f"{branch}: head {', '.join(heads)}")
    pending = migrate.pending(kernel.db, kernel.host)
    click.echo("待应用: " + (", ".join(sorted(pending)) if pending else "无"))
    if pending:
        sys.exit(1)


@db.command("check")
@pass_ctx
def db_check(obj: Context) -> None:
    """检查模型与迁移后的数据库结构是否一致。"""
    from yiwang.db import migrate

    kernel = obj.kernel
    kernel.db.check()
    diffs = migrate.diff(kernel.db, kernel.host)
    if diffs:
        raise ValidationError("模型与数据库结构不一致", [repr(d) for d in diffs])
    click.echo("模型与数据库结构一致")


@db.command("revision")
@click.argument("branch")
@click.option("-m", "--message", required=True, help="迁移说明。")
@click.option("--empty", is_flag=True, help="生成空迁移，不对比模型。")
@pass_ctx
def db_revision(obj: Context, branch: str, message: str, empty: bool) -> None:
    """为 BRANCH（yiwang 或插件名）生成新迁移（开发用）。"""
    from yiwang.db import migrate

    kernel = obj.kernel
    kernel.db.check()
    path = migrate.revision(kernel.db, kernel.host, branch, message, autogenerate=not empty)
    click.echo(f"已生成 {path}")


# --- demo and serve -------------------------------------------------------------------------------


def _reset(kernel: Any) -> None:
    """Drop every table of the kernel and enabled plugins (and Alembic's record)."""
    from sqlalchemy import inspect

    from yiwang.db import migrate

    tables = set().union(*migrate.owned_tables(kernel.host).values()) | {"alembic_version"}
    with kernel.db.engine.begin() as conn:
        present = set(inspect(conn).get_table_names())
        from sqlmodel import SQLModel

        owned = [t for t in reversed(SQLModel.metadata.sorted_tables) if t.name in tables & present]
        for table in owned:
            table.drop(conn)
        if "alembic_version" in present:
            conn.exec_driver_sql("DROP TABLE alembic_version")


@cli.command()
@click.option("--scale", type=click.Choice(["small", "full"]), default="small", show_default=True,
              help="small: 快速体验；full: 全区规模（基准测试用）。")
@click.option("--seed", type=int, default=2026, show_default=True, help="随机种子（结果可复现）。")
@click.option("--reset", is_flag=True, help="先删除内核与插件的全部表再生成（会丢失数据）。")
@click.option("--if-empty", is_flag=True, help="库中已有区划数据时跳过，不报错。")
@click.option("--yes", is_flag=True, help="与 --reset 一起使用时不再确认。")
@pass_ctx
def demo(obj: Context, scale: str, seed: int, reset: bool, if_empty: bool, yes: bool) -> None:
    """生成演示数据：广西 14 个市及其县区（真实编码），以下为合成的乡镇、社区、网格与机构。"""
    import time

    from sqlalchemy import select

    from yiwang.db import migrate
    from yiwang.demo import run as run_demo
    from yiwang.grid.models import Node

    kernel = obj.kernel
    kernel.db.check()
    if reset:
        if not yes:
            click.confirm(f"将删除 {kernel.db.display_url} 中的全部业务数据，确定吗？", abort=True)
        _reset(kernel)
    migrate.upgrade(kernel.db, kernel.host)
    with kernel.db.read() as s:
        has_data = s.execute(select(Node.id).limit(1)).first() is not None  # type: ignore[call-overload]
    if has_data and if_empty:
        click.echo("库中已有区划数据，跳过演示数据生成。")
        return
    started = time.perf_counter()
    run_demo(kernel, scale=scale, seed=seed, progress=lambda name: click.echo(f"  {name}: 完成"))
    click.echo(f"演示数据已生成（{scale}，种子 {seed}），用时 {time.perf_counter() - started:.1f} 秒")
    from yiwang.auth.demo import DEMO_ACCOUNTS, DEMO_PASSWORD

    click.echo(f"演示账号（密码均为 {DEMO_PASSWORD}）: " + "、".join(a[0] for a in DEMO_ACCOUNTS))


@cli.command()
@click.option("--host", default=None, help="监听地址（默认取配置 server.host）。")
@click.option("--port", type=int, default=None, help="端口（默认取配置 server.port）。")
@click.option("--workers", type=int, default=1, show_default=True, help="工作进程数。")
@pass_ctx
def serve(obj: Context, host: str | None, port: int | None, workers: int) -> None:
    """启动 Web 服务。"""
    import uvicorn

    from yiwang.privacy.runtime import check_keys

    settings = load_settings(require_site=True)
    kernel = obj.kernel
    _ready(kernel)
    check_keys(kernel.db, kernel.privacy)
    host = host or settings.host
    port = port or settings.port
    if not 0 < port < 65536:
        raise ValidationError(f"端口超出范围: {port}")
    click.echo(f"一网 已启动: http://{host}:{port}/  （Ctrl+C 停止）")
    uvicorn.run(
        "yiwang.app:from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


# --- plugins --------------------------------------------------------------------------------------


@cli.group()
def plugins() -> None:
    """插件：列出、按地区启用或停用。"""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出。")
@pass_ctx
def plugins_list(obj: Context, as_json: bool) -> None:
    """列出已安装的插件：版本、名称、实现的钩子、是否启用、在哪些地区启用、错误。"""
    from yiwang import builtin
    from yiwang.plugins.loader import load_plugins

    settings = obj.settings
    try:
        host = load_plugins(settings.plugins_enabled, builtin=builtin)
        reports = host.reports
        load_error = ""
    except YiwangError as exc:
        # Still list what is installed; the failure is part of the answer.
        reports = load_plugins((), builtin=builtin).reports
        for rep in reports:
            rep.enabled = rep.name in settings.plugins_enabled
        load_error = str(exc)
    where = _activation_rows(obj) if not load_error else {}
    data: list[dict[str, Any]] = [
        {
            "name": r.name,
            "version": r.version,
            "title": r.title,
            "distribution": r.distribution,
            "scope": r.scope,
            "enabled": r.enabled,
            "loaded": r.loaded,
            "hooks": r.hooks,
            "active": where.get(r.name, []),
            "errors": r.errors,
        }
        for r in reports
    ]
    if as_json:
        click.echo(json.dumps({"plugins": data, "error": load_error}, ensure_ascii=False, indent=2))
    else:
        if not data:
            click.echo("没有安装任何插件。")
        for d in data:
            state = "已启用" if d["enabled"] else "未启用"
            click.echo(f"{d['name']} {d['version']}  {d['title']}  [{state}]  {d['distribution']}")
            if d["hooks"]:
                click.echo(f"    钩子: {', '.join(d['hooks'])}")
            for a in d["active"]:
                click.echo(f"    {'启用' if a['active'] else '停用'}于 {a['node']} {a['name']}")
            for e in d["errors"]:
                click.echo(f"    错误: {e}")
        if load_error:
            click.echo(load_error, err=True)
    if load_error or any(d["errors"] and d["enabled"] for d in data):
        sys.exit(4)


def _activation_rows(obj: Context) -> dict[str, list[dict[str, Any]]]:
    """Explicit activation settings by plugin; empty when the database is not set up."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from yiwang.grid.models import Node
    from yiwang.plugins.models import PluginActivation

    out: dict[str, list[dict[str, Any]]] = {}
    try:
        with obj.kernel.db.read() as s:
            rows = s.execute(
                select(PluginActivation.plugin, PluginActivation.active, Node.code, Node.name)  # type: ignore[call-overload]
                .join(Node, Node.id == PluginActivation.node_id)
                .order_by(PluginActivation.plugin, Node.path)
            ).all()
    except (SQLAlchemyError, YiwangError):
        return out
    for plugin, active, code, name in rows:
        out.setdefault(plugin, []).append({"node": code, "name": name, "active": bool(active)})
    return out


def _set_activation(obj: Context, plugin: str, code: str, active: bool | None) -> None:
    from yiwang.audit.cli import auto_checkpoint, cli_actor
    from yiwang.grid import tree

    kernel = obj.kernel
    _ready(kernel)
    with kernel.db.read() as s:
        node = tree.by_code(s, code)
    kernel.activation.set(plugin, node, active, actor=cli_actor())
    auto_checkpoint(kernel)


@plugins.command("enable-at")
@click.argument("plugin")
@click.argument("node_code")
@pass_ctx
def plugins_enable_at(obj: Context, plugin: str, node_code: str) -> None:
    """在 NODE_CODE 及其下级启用 PLUGIN（除非下级另有设置）。"""
    _set_activation(obj, plugin, node_code, True)
    click.echo(f"已在 {node_code} 启用 {plugin}")


@plugins.command("disable-at")
@click.argument("plugin")
@click.argument("node_code")
@pass_ctx
def plugins_disable_at(obj: Context, plugin: str, node_code: str) -> None:
    """在 NODE_CODE 及其下级停用 PLUGIN（数据保留，只是隐藏）。"""
    _set_activation(obj, plugin, node_code, False)
    click.echo(f"已在 {node_code} 停用 {plugin}")


@plugins.command("inherit-at")
@click.argument("plugin")
@click.argument("node_code")
@pass_ctx
def plugins_inherit_at(obj: Context, plugin: str, node_code: str) -> None:
    """删除 NODE_CODE 上的设置，改为沿用上级。"""
    _set_activation(obj, plugin, node_code, None)
    click.echo(f"{node_code} 上的 {plugin} 已改为沿用上级设置")


# --- grid -----------------------------------------------------------------------------------------


@cli.group()
def grid() -> None:
    """区划与网格：名册导入导出、移动、计数校验。"""


@grid.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None,
              help="文件格式（默认按扩展名）。")
@click.option("--update", "update_existing", is_flag=True, help="已存在的编码更新其名称。")
@pass_ctx
def grid_import(obj: Context, file: Path, fmt: str | None, update_existing: bool) -> None:
    """导入区划名册（列: code,name,parent_code,level）。任一行有错则不写入任何数据。"""
    from yiwang.audit import record
    from yiwang.audit.cli import auto_checkpoint, cli_actor, failure_recorded
    from yiwang.grid import roster

    fmt = roster.detect_format(file, fmt)
    if not file.is_file():
        raise ValidationError(f"文件不存在: {file}")
    kernel = obj.kernel
    _ready(kernel)
    detail: dict[str, Any] = {"file": file.name, "format": fmt}
    with failure_recorded(kernel, "grid.import", object_type="grid_node", detail=detail), kernel.db.write() as s:
        result = roster.import_roster(kernel, s, file.read_bytes(), fmt, update_existing=update_existing)
        detail |= {"created": result.created, "updated": result.updated}
        record(s, "grid.import", actor=cli_actor(), object_type="grid_node", detail=detail)
    auto_checkpoint(kernel)
    click.echo(f"导入完成: 新增 {result.created} 个节点，更新 {result.updated} 个节点")


@grid.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None)
@click.option("--root", default=None, help="只导出该编码的节点及其下级。")
@pass_ctx
def grid_export(obj: Context, file: Path, fmt: str | None, root: str | None) -> None:
    """导出区划名册（与导入相同的格式）。"""
    from yiwang.grid import roster

    fmt = roster.detect_format(file, fmt)
    if not file.parent.is_dir():
        raise ValidationError(f"目录不存在: {file.parent}")
    kernel = obj.kernel
    _ready(kernel)
    tmp = file.with_name(file.name + ".part")
    try:
        with kernel.db.read() as s:
            count = roster.write_export(roster.export_rows(s, root), tmp, fmt)
        tmp.replace(file)
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"已导出 {count} 个节点到 {file}")


@grid.command("move")
@click.argument("code")
@click.argument("new_parent_code")
@click.option("--new-code", default=None, help="节点的新编码（新上级编码不同前缀时必填）。")
@pass_ctx
def grid_move(obj: Context, code: str, new_parent_code: str, new_code: str | None) -> None:
    """把 CODE 及其全部下级移到 NEW_PARENT_CODE 之下（一个事务内完成）。"""
    from yiwang.audit import record
    from yiwang.audit.cli import auto_checkpoint, cli_actor, failure_recorded
    from yiwang.grid import tree
    from yiwang.grid.service import move_node

    kernel = obj.kernel
    _ready(kernel)
    detail = {"code": code, "new_parent": new_parent_code, "new_code": new_code}
    with failure_recorded(kernel, "grid.move", object_type="grid_node", detail=detail), kernel.db.write() as s:
        node = tree.by_code(s, code)
        parent = tree.by_code(s, new_parent_code)
        moved = move_node(kernel, s, node, parent, new_code)
        record(s, "grid.move", actor=cli_actor(), object_type="grid_node", object_id=node.id or "",
               detail={**detail, "moved": moved})  # fmt: skip
    auto_checkpoint(kernel)
    click.echo(f"已移动 {moved} 个节点")


@grid.command("recount")
@click.option("--check", is_flag=True, help="只检查，不修复；有差异时退出码非零。")
@pass_ctx
def grid_recount(obj: Context, check: bool) -> None:
    """核对并修复各节点的下级数与网格数。"""
    from yiwang.grid import tree

    kernel = obj.kernel
    _ready(kernel)
    from yiwang.audit import record
    from yiwang.audit.cli import cli_actor

    with kernel.db.write() as s:
        wrong = tree.recount(s, repair=not check)
        if wrong and not check:
            record(s, "grid.recount", actor=cli_actor(), object_type="grid_node",
                   detail={"repaired": len(wrong)})  # fmt: skip
    for code, column, kept, actual in wrong[:20]:
        click.echo(f"{code} {column}: 记录 {kept}，实际 {actual}")
    if check and wrong:
        raise ValidationError(f"{len(wrong)} 处计数不一致")
    click.echo("计数一致" if not wrong else f"已修复 {len(wrong)} 处计数")


# --- entry point ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn expected errors into a message and an exit code."""
    try:
        cli.main(args=argv, prog_name="yiwang", standalone_mode=False)
    except YiwangError as exc:
        click.echo(f"错误: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("已取消", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


def _register_groups() -> None:
    from yiwang.calendar.cli import calendar_group
    from yiwang.cases.cli import workflow_group
    from yiwang.cli.users import user_group
    from yiwang.files.cli import files_group
    from yiwang.jobs.cli import jobs_group
    from yiwang.notify.cli import notify_group
    from yiwang.stats.cli import stats_group

    cli.add_command(user_group)
    cli.add_command(stats_group)
    cli.add_command(files_group)
    cli.add_command(jobs_group)
    cli.add_command(calendar_group)
    cli.add_command(notify_group)
    cli.add_command(workflow_group)


_register_groups()


def _register_audit() -> None:
    from yiwang.audit.cli import audit_group

    cli.add_command(audit_group)


_register_audit()
