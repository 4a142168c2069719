"""The kernel's own jobs (declared in ``builtin.yiwang_jobs``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

#: Sign a checkpoint at least this often while records keep coming, even if fewer than
#: ``audit.checkpoint_every`` did (the ``--max-age`` of ``yiwang audit checkpoint --if-due``).
CHECKPOINT_MAX_AGE = timedelta(hours=1)


def audit_checkpoint(kernel: Kernel, now: datetime) -> int:
    """``yiwang audit checkpoint --if-due --max-age 60``: 1 when a checkpoint was signed."""
    from yiwang.audit.checkpoints import maybe_checkpoint

    return 0 if maybe_checkpoint(kernel.db, kernel.settings, CHECKPOINT_MAX_AGE) is None else 1
