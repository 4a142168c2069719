"""Declared workflows and case types, and the stored versions of every workflow definition.

``yiwang_workflows`` and ``yiwang_case_types`` are collected once per kernel. Each distinct
definition of a workflow is stored in ``case_workflow`` as the next version number; cases keep
the version they started with and are always run by that stored definition.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from yiwang.cases.models import WorkflowVersion
from yiwang.cases.workflow import CaseType, Workflow, problems
from yiwang.errors import NotFound, PluginError

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

WF = WorkflowVersion.__table__  # type: ignore[attr-defined]


class CaseRegistry:
    """What a kernel knows about cases: workflows, case types and stored versions."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.workflows: dict[str, Workflow] = {}
        self.types: dict[str, CaseType] = {}
        for plugin, wf in kernel.host.collect_items("yiwang_workflows"):
            if plugin != "yiwang" and not wf.name.startswith(f"{plugin}."):
                raise PluginError(f"插件 {plugin} 声明的流程 {wf.name} 应以 {plugin}. 开头")
            if wf.name in self.workflows:
                raise PluginError(f"流程 {wf.name} 被重复声明")
            self.workflows[wf.name] = wf
        for plugin, ct in kernel.host.collect_items("yiwang_case_types"):
            if plugin != "yiwang" and not ct.name.startswith(f"{plugin}."):
                raise PluginError(f"插件 {plugin} 声明的事件类型 {ct.name} 应以 {plugin}. 开头")
            if ct.name in self.types:
                raise PluginError(f"事件类型 {ct.name} 被重复声明")
            if ct.workflow not in self.workflows:
                raise PluginError(f"事件类型 {ct.name} 使用的流程 {ct.workflow} 未声明")
            self.types[ct.name] = CaseType(
                ct.name, ct.title, ct.workflow, tuple(ct.fields), ct.limits, ct.category, plugin
            )
        self._current: dict[str, int] = {}
        self._stored: dict[tuple[str, int], Workflow] = {}
        self._lock = threading.Lock()

    # --- checks ---------------------------------------------------------------------------------

    def problems(self) -> dict[str, list[str]]:
        """Problems of every declared workflow (``yiwang workflow check``), by name."""
        from yiwang.rbac.sync import declared_permissions

        perms = declared_permissions(self.kernel)
        return {name: problems(wf, perms) for name, wf in self.workflows.items()}

    def case_type(self, name: str) -> CaseType:
        try:
            return self.types[name]
        except KeyError:
            raise NotFound(f"事件类型不存在: {name}") from None

    # --- versions -------------------------------------------------------------------------------

    def sync(self, session: Session) -> dict[str, int]:
        """Store each declared definition that differs from the newest stored version."""
        out: dict[str, int] = {}
        for name, wf in self.workflows.items():
            digest = wf.digest()
            row = session.execute(
                select(WF.c.version, WF.c.digest)
                .where(WF.c.name == name)
                .order_by(WF.c.version.desc())
                .limit(1)
            ).first()
            if row is not None and row.digest == digest:
                out[name] = int(row.version)
                continue
            version = (int(row.version) if row else 0) + 1
            data = json.dumps(wf.as_data(), ensure_ascii=False, sort_keys=True)
            try:
                with session.begin_nested():
                    session.execute(
                        insert(WF).values(
                            name=name, version=version, digest=digest, definition=data
                        )
                    )
            except IntegrityError:
                # Another worker stored it first: take the newest.
                version = int(
                    session.execute(
                        select(func.max(WF.c.version)).where(WF.c.name == name)
                    ).scalar_one()
                )
            out[name] = version
        with self._lock:
            self._current = out
        return out

    def current_version(self, session: Session, name: str) -> int:
        """The version new cases of workflow ``name`` start with (synced on first use)."""
        if name not in self._current:
            self.sync(session)
        return self._current[name]

    def definition(self, session: Session, name: str, version: int) -> Workflow:
        """The stored definition a case runs by."""
        key = (name, version)
        wf = self._stored.get(key)
        if wf is None:
            text = session.execute(
                select(WF.c.definition).where(WF.c.name == name, WF.c.version == version)
            ).scalar()
            if text is None:
                raise NotFound(f"流程 {name} 第 {version} 版不存在")
            wf = Workflow.from_data(json.loads(text))
            with self._lock:
                self._stored[key] = wf
        return wf
