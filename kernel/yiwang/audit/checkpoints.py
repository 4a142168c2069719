"""Signed checkpoints: "the chain ended at record N with hash H", signed with the Ed25519 key
from ``yiwang.keys`` (a file the database never holds), stored in ``audit_checkpoint`` and
appended as one JSON line to ``settings.audit_checkpoint_log`` (a file outside the database).

Someone who can write the database but not read the key can rewrite or cut records after the
newest checkpoint, but nothing a checkpoint covers, and cannot forge or alter a checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import String, insert, select, type_coerce
from sqlalchemy.orm import Session

from yiwang.audit.models import GENESIS_HASH, AuditCheckpoint
from yiwang.audit.records import format_time, lock_head, utcnow
from yiwang.db import Database
from yiwang.errors import AuditTampered, SettingsError
from yiwang.keys import audit_public_key, audit_signing_key
from yiwang.settings import Settings

CHECKPOINT = AuditCheckpoint.__table__  # type: ignore[attr-defined]
KINDS = ("auto", "manual", "purge")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_time(value: Any) -> datetime:
    """A stored time as an aware UTC datetime; SQLite's text is parsed here, so a mangled value
    raises ValueError/TypeError (a finding) instead of aborting a read."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise TypeError(f"not a time: {value!r}")


def checkpoint_columns(dialect: str) -> list[Any]:
    """Columns of ``audit_checkpoint`` with the time as raw text on SQLite (see ``parse_time``)."""
    cols: list[Any] = list(CHECKPOINT.c)
    if dialect == "sqlite":
        cols = [type_coerce(c, String).label("time") if c.name == "time" else c for c in cols]
    return cols


def key_id(public: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 of the raw public key: names the key that signed."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint. ``seq`` numbers checkpoints 1, 2, …; ``count`` =
    ``last_id - first_id + 1`` records present in the chain when it was signed."""

    seq: int
    kind: str
    time: datetime
    first_id: int
    last_id: int
    last_hash: str
    count: int
    key_id: str
    signature: str

    def payload(self) -> bytes:
        """The signed bytes: compact JSON, sorted keys, ``v`` = 1."""
        body = {
            "v": 1,
            "seq": self.seq,
            "kind": self.kind,
            "time": format_time(self.time),
            "first_id": self.first_id,
            "last_id": self.last_id,
            "last_hash": self.last_hash,
            "count": self.count,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def valid(self, public: Ed25519PublicKey) -> bool:
        try:
            public.verify(base64.b64decode(self.signature, validate=True), self.payload())
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def to_line(self) -> str:
        body = json.loads(self.payload())
        body |= {"key": self.key_id, "sig": self.signature}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> Checkpoint:
        """Parse a log line; ValueError when it is not a checkpoint line."""
        try:
            body = json.loads(line)
            if not isinstance(body, dict) or body.get("v") != 1:
                raise ValueError("unknown format")
            values = {
                "seq": body["seq"], "kind": body["kind"], "first_id": body["first_id"],
                "last_id": body["last_id"], "last_hash": body["last_hash"], "count": body["count"],
                "key_id": body["key"], "signature": body["sig"],
            }  # fmt: skip
            time = datetime.strptime(body["time"], _TIME_FORMAT)
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(str(exc)) from None
        ints = ("seq", "first_id", "last_id", "count")
        if not all(isinstance(values[k], int) and not isinstance(values[k], bool) for k in ints):
            raise ValueError("non-integer field")
        if not all(isinstance(values[k], str) for k in ("kind", "last_hash", "key_id", "signature")):
            raise ValueError("non-string field")
        return cls(time=time.replace(tzinfo=UTC), **values)

    @classmethod
    def from_row(cls, row: Any) -> Checkpoint:
        """From an ``audit_checkpoint`` row; TypeError/ValueError when a field is mangled."""
        return cls(
            seq=int(row.id), kind=str(row.kind), time=parse_time(row.time), first_id=int(row.first_id),
            last_id=int(row.last_id), last_hash=str(row.last_hash), count=int(row.count),
            key_id=str(row.key_id), signature=str(row.signature),
        )  # fmt: skip

    def same(self, other: Checkpoint) -> bool:
        """Equal as signed (times compared in their canonical form)."""
        return self.payload() == other.payload() and self.signature == other.signature

    def describe(self) -> str:
        return f"检查点 #{self.seq}（{format_time(self.time)}，记录至 #{self.last_id}）"


def sign(
    key: Ed25519PrivateKey, *, seq: int, kind: str, time: datetime, first_id: int, last_id: int,
    last_hash: str, count: int,
) -> Checkpoint:  # fmt: skip
    unsigned = Checkpoint(seq, kind, time, first_id, last_id, last_hash, count, key_id(key.public_key()), "")
    signature = base64.b64encode(key.sign(unsigned.payload())).decode("ascii")
    return Checkpoint(**{**asdict(unsigned), "signature": signature})


def append_log(path: Path, checkpoint: Checkpoint) -> None:
    """Append one line to the checkpoint log with a single ``write`` (``O_APPEND``) and fsync."""
    data = (checkpoint.to_line() + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SettingsError(
            f"无法写入审计检查点日志 {path}: {exc}（检查点 #{checkpoint.seq} 已存入数据库）"
        ) from None


def trusted_anchor(session: Session, public: Ed25519PublicKey) -> tuple[int, str]:
    """``(id, hash)`` the chain starts after: the newest purge checkpoint, else the genesis."""
    cols = checkpoint_columns(session.connection().dialect.name)
    row = session.execute(
        select(*cols).where(CHECKPOINT.c.kind == "purge").order_by(CHECKPOINT.c.id.desc()).limit(1)
    ).first()
    if row is None:
        return 0, GENESIS_HASH
    cp = Checkpoint.from_row(row)
    if not cp.valid(public):
        raise AuditTampered(f"数据库中的{cp.describe()}签名无效，请运行 `yiwang audit verify`")
    return cp.last_id, cp.last_hash


def _latest(session: Session, public: Ed25519PublicKey) -> Checkpoint | None:
    cols = checkpoint_columns(session.connection().dialect.name)
    row = session.execute(select(*cols).order_by(CHECKPOINT.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    cp = Checkpoint.from_row(row)
    if not cp.valid(public):
        raise AuditTampered(f"数据库中的{cp.describe()}签名无效，请运行 `yiwang audit verify`")
    return cp


def write_checkpoint(
    session: Session, key: Ed25519PrivateKey, kind: str, *, last_id: int, last_hash: str, first_id: int
) -> Checkpoint:
    """Sign and insert a checkpoint in the caller's transaction (which holds the chain head)."""
    latest = session.execute(select(CHECKPOINT.c.id).order_by(CHECKPOINT.c.id.desc()).limit(1)).scalar()
    cp = sign(
        key, seq=int(latest or 0) + 1, kind=kind, time=utcnow(), first_id=first_id,
        last_id=last_id, last_hash=last_hash, count=last_id - first_id + 1,
    )  # fmt: skip
    values = asdict(cp)
    values["id"] = values.pop("seq")
    session.execute(insert(CHECKPOINT).values(**values))
    return cp


def checkpoint(
    db: Database,
    settings: Settings,
    *,
    kind: str = "manual",
    if_due: bool = False,
    max_age: timedelta | None = None,
) -> Checkpoint | None:
    """Sign the current end of the chain; store it and append it to the checkpoint log.

    The records since the previous checkpoint are checked first (links and hashes) so a
    checkpoint never vouches for a broken segment (AuditTampered). With ``if_due`` nothing is
    written unless ``settings.audit_checkpoint_every`` records came since the previous one —
    or, with ``max_age``, any new record did and the previous checkpoint is older than that.
    """
    from yiwang.audit.integrity import check_segment

    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}")
    key = audit_signing_key(settings)
    public = key.public_key()
    with db.write() as s:
        last_id, last_hash = lock_head(s)
        anchor_id, anchor_hash = trusted_anchor(s, public)
        latest = _latest(s, public)
        since_id, since_hash = anchor_id, anchor_hash
        if latest is not None and latest.last_id > anchor_id:
            since_id, since_hash = latest.last_id, latest.last_hash
        if if_due:
            fresh = last_id - since_id
            stale = (
                max_age is not None
                and fresh > 0
                and (latest is None or utcnow() - latest.time >= max_age)
            )
            if fresh < settings.audit_checkpoint_every and not stale:
                return None
        check_segment(s, since_id, since_hash, last_id, last_hash)
        cp = write_checkpoint(
            s, key, kind, last_id=last_id, last_hash=last_hash, first_id=anchor_id + 1
        )
    append_log(settings.audit_checkpoint_log, cp)
    return cp


def maybe_checkpoint(
    db: Database, settings: Settings, max_age: timedelta | None = None
) -> Checkpoint | None:
    """A checkpoint if ``audit_checkpoint_every`` records came since the last one (or, with
    ``max_age``, any did and the last is that old), else None."""
    return checkpoint(db, settings, kind="auto", if_due=True, max_age=max_age)


def public_key(settings: Settings) -> Ed25519PublicKey:
    return audit_public_key(settings)
