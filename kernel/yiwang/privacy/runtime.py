"""What the kernel does for privacy when it starts (``Kernel.__init__``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from yiwang.keys import data_keys
from yiwang.privacy.crypto import bind_data_keys, keys_of
from yiwang.privacy.masking import install_log_masking
from yiwang.privacy.registry import PrivacyRegistry

if TYPE_CHECKING:
    from yiwang.db import Database
    from yiwang.plugins.host import PluginHost
    from yiwang.settings import Settings


def start(settings: Settings, db: Database, host: PluginHost) -> PrivacyRegistry:
    """Bind the deployment's data keys to its engine, mask every log record of the process,
    and collect and check the declared personal fields.

    The key file is read on first use; ``yiwang serve`` reads it before it starts (``check_keys``)
    so a missing key stops the server with its message rather than the first page that needs it,
    while commands that never touch personal data (``db upgrade``, ``plugins list``) need none.
    """
    bind_data_keys(db.engine, lambda: data_keys(settings))
    install_log_masking()
    return PrivacyRegistry.collect(host)


def check_keys(db: Database, registry: PrivacyRegistry) -> None:
    """Read the data key now when any sensitive field is declared (fail fast at start-up)."""
    if registry.has_sensitive:
        keys_of(db.engine)
