"""Kernel: one deployment's runtime — settings, database, plugins, activation, templates.

The web app and the CLI each build one from Settings; nothing lives in module globals, so
tests can run several side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from yiwang.db import Database
from yiwang.plugins.activation import Activation, NodeLike
from yiwang.plugins.loader import load_plugins
from yiwang.plugins.spec import PluginSpec
from yiwang.rbac.authz import Authz
from yiwang.settings import Settings

if TYPE_CHECKING:
    from yiwang.cases.registry import CaseRegistry
    from yiwang.web.templating import Templates


class Kernel:
    """The assembled kernel of one deployment.

    Parameters
    ----------
    settings: validated settings.
    extra_plugins: specs treated as installed without entry points (tests, embedding).
    db: an existing Database to share (tests); default: one built from settings.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        extra_plugins: Sequence[PluginSpec] = (),
        db: Database | None = None,
    ) -> None:
        from yiwang import builtin
        from yiwang.privacy.runtime import start as start_privacy

        self.settings = settings
        self.db = db or Database(
            settings.database_url,
            busy_timeout_ms=settings.busy_timeout_ms,
            pool_size=settings.pool_size,
            echo=settings.echo_sql,
            threads=settings.threads,
        )
        self.host = load_plugins(settings.plugins_enabled, extra=extra_plugins, builtin=builtin)
        self.activation = Activation(self.db, self.host, settings.activation_refresh_seconds)
        #: Declared personal fields (``yiwang_personal_fields``); also binds the data keys.
        self.privacy = start_privacy(settings, self.db, self.host)
        self.authz = Authz(self.db, personal=self.personal_permissions)

    @cached_property
    def cases(self) -> CaseRegistry:
        """Declared workflows and case types, and the stored workflow versions."""
        from yiwang.cases.registry import CaseRegistry

        return CaseRegistry(self)

    @cached_property
    def templates(self) -> Templates:
        from yiwang.web.templating import Templates

        return Templates(self)

    def hook_at(self, node: NodeLike | None) -> Any:
        """Hook callers reaching only the plugins active at ``node`` (node hooks)."""
        return self.activation.hook_at(node)

    def sync_declarations(self) -> int:
        """Create declared roles and apply new default grants (idempotent); reload decisions.
        Also checks the declared indicators and jobs, and stores new workflow versions."""
        from yiwang.jobs import declared_jobs
        from yiwang.rbac.sync import sync
        from yiwang.stats import declared_indicators

        declared_indicators(self)
        declared_jobs(self)
        with self.db.write() as s:
            applied = sync(self, s)
            self.cases.sync(s)
        self.authz.reload()
        return applied

    def close(self) -> None:
        """Stop the kernel's background helpers (notification delivery); idempotent."""
        from yiwang.notify.worker import stop

        stop(self)

    def personal_permissions(self) -> list[str]:
        """Names of declared permissions that reveal personal data (``Permission.personal``)."""
        from yiwang.rbac.sync import declared_permissions

        return [p.name for p in declared_permissions(self).values() if p.personal]

    @property
    def hook(self) -> Any:
        """Hook callers reaching every enabled plugin (data hooks)."""
        return self.host.hook
