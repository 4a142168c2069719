"""The tamper-evident audit trail (全程留痕).

Every mutation, denied request, login and reveal of sensitive data is recorded — with
``record(session, …)`` inside the transaction that does the work, or ``record_now(db, …)`` for
acts whose own transaction does not commit. Records form a SHA-256 hash chain; signed
checkpoints (Ed25519, key outside the database) pin it; ``verify`` recomputes it and names the
first broken record. See ``docs/audit.md``.
"""

from __future__ import annotations

from yiwang.audit.checkpoints import Checkpoint, checkpoint, maybe_checkpoint
from yiwang.audit.integrity import VerifyReport, verify
from yiwang.audit.models import AuditCheckpoint, AuditEvent, AuditHead
from yiwang.audit.query import AuditEntry, count, export_csv, iter_entries, search
from yiwang.audit.records import Actor, AuditWriteError, chain_hash, record, record_now
from yiwang.audit.retention import PurgeResult, purge, retention_floor

__all__ = [
    "Actor",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditEvent",
    "AuditHead",
    "AuditWriteError",
    "Checkpoint",
    "PurgeResult",
    "VerifyReport",
    "chain_hash",
    "checkpoint",
    "count",
    "export_csv",
    "iter_entries",
    "maybe_checkpoint",
    "purge",
    "record",
    "record_now",
    "retention_floor",
    "search",
    "verify",
]
