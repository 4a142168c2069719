"""Migrations: one Alembic environment, one branch for the kernel and one per plugin.

The kernel's branch is labelled ``yiwang``; each plugin's branch is labelled with the plugin's
name, starts from no parent and ``depends_on`` a kernel revision, so plugin tables may reference
kernel tables. ``upgrade`` applies every head of the kernel and of the enabled plugins.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from yiwang.db.engine import Database
from yiwang.errors import PluginError, ValidationError
from yiwang.plugins.host import KERNEL, PluginHost

HERE = Path(__file__).resolve().parent / "migrations"


def owned_tables(host: PluginHost) -> dict[str, set[str]]:
    """Tables per owner — the kernel (``yiwang``) and each enabled plugin — as each declares
    them through ``yiwang_models``."""
    out: dict[str, set[str]] = {KERNEL: set(), **{name: set() for name in host.specs}}
    for name, model in host.collect_items("yiwang_models"):
        out[name].add(model.__tablename__)
    return out


def versions_dir(package: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise PluginError(f"找不到迁移包 {package}: {exc}") from None
    paths = list(getattr(module, "__path__", []))
    if not paths:
        raise PluginError(f"迁移包 {package} 不是一个包")
    return Path(paths[0])


def branch_dirs(host: PluginHost) -> dict[str, Path]:
    dirs = {KERNEL: HERE / "versions"}
    for spec in host.specs.values():
        if spec.migrations:
            dirs[spec.name] = versions_dir(spec.migrations)
    return dirs


def alembic_config(host: PluginHost, connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option(
        "version_locations", os.pathsep.join(str(p) for p in branch_dirs(host).values())
    )
    cfg.attributes["include_tables"] = set().union(*owned_tables(host).values())
    cfg.attributes["connection"] = connection
    return cfg


def script(host: PluginHost) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(host))


def upgrade(db: Database, host: PluginHost, target: str = "heads") -> None:
    """Apply every pending migration of the kernel and the enabled plugins."""
    db.check()
    with db.engine.begin() as conn:
        command.upgrade(alembic_config(host, conn), target)


def current(db: Database, host: PluginHost) -> set[str]:
    with db.engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def pending(db: Database, host: PluginHost) -> set[str]:
    """Heads not yet applied (empty when the schema is up to date)."""
    heads = set(script(host).get_heads())
    applied = current(db, host)
    sd = script(host)
    done: set[str] = set()
    for rev in applied:
        done |= {r.revision for r in sd.iterate_revisions(rev, "base")}
    return heads - done


def _branch_of(sd: ScriptDirectory, rev_id: str) -> str:
    """The label of the branch a revision belongs to, following ``down_revision`` only
    (``depends_on`` links a plugin's branch to the kernel's without making it part of it)."""
    rev = sd.get_revision(rev_id)
    while rev is not None:
        if rev.branch_labels:
            return sorted(rev.branch_labels)[0]
        down = rev.down_revision
        if not down:
            break
        rev = sd.get_revision(down if isinstance(down, str) else down[0])
    return "?"


def heads_by_branch(host: PluginHost) -> dict[str, list[str]]:
    """Each branch's head revisions; a healthy branch has exactly one."""
    sd = script(host)
    out: dict[str, list[str]] = {}
    for rev_id in sd.get_heads():
        out.setdefault(_branch_of(sd, rev_id), []).append(rev_id)
    return out


def diff(db: Database, host: PluginHost, tables: set[str] | None = None) -> list[Any]:
    """Differences between the models and the migrated schema (empty when they agree)."""
    cfg = alembic_config(host)
    wanted: set[str] = tables if tables is not None else cfg.attributes["include_tables"]

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            return name in wanted
        table = getattr(obj, "table", None)
        return table is None or table.name in wanted

    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": include, "compare_type": True}
        )
        return list(compare_metadata(ctx, SQLModel.metadata))


def revision(
    db: Database, host: PluginHost, branch: str, message: str, *, autogenerate: bool = True
) -> Path:
    """Write a new migration for ``branch`` (``yiwang`` or an enabled plugin's name)."""
    dirs = branch_dirs(host)
    if branch not in dirs:
        raise ValidationError(f"没有名为 {branch} 的迁移分支（插件须已启用并声明 migrations）")
    heads = heads_by_branch(host)
    kernel_head = heads.get(KERNEL, [])
    own = heads.get(branch, [])
    tables = owned_tables(host)[branch]
    with db.engine.begin() as conn:
        cfg = alembic_config(host, conn)
        cfg.attributes["include_tables"] = tables
        kwargs: dict[str, Any] = {"version_path": str(dirs[branch])}
        if own:
            kwargs["head"] = f"{branch}@head"
        else:
            kwargs |= {"head": "base", "branch_label": branch}
            if branch != KERNEL and kernel_head:
                kwargs["depends_on"] = kernel_head[0]
        existing = [p for p in dirs[branch].glob("*.py") if p.name != "__init__.py"]
        rev_id = f"{branch}_{len(existing) + 1:04d}"
        out = command.revision(cfg, message, autogenerate=autogenerate, rev_id=rev_id, **kwargs)
    scripts = out if isinstance(out, list) else [out]
    assert scripts and scripts[0] is not None
    return Path(scripts[0].path)
