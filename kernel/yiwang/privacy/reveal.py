"""Revealing sensitive values (查看明文): permission, stated purpose, audit record — all three.

The route decides the permission (it knows the user, the object's node and the RBAC layer)
and passes the decision as ``allowed``; this module refuses without it, refuses without a
purpose, and queues the ``privacy.reveal`` audit record on the same unit of work. The record
is written when that unit commits, so callers use the plain text only after the
``with write(...)`` block has ended: a failed audit write then means nothing was shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from yiwang.db.engine import _WRITE
from yiwang.errors import Forbidden, ValidationError
from yiwang.privacy.crypto import PrivacyError
from yiwang.privacy.fields import classification

if TYPE_CHECKING:
    from yiwang.audit import Actor

ACTION = "privacy.reveal"
MIN_PURPOSE = 4


def check_purpose(purpose: str | None) -> str:
    """The stated purpose, stripped; ``ValidationError`` when it is shorter than 4 characters."""
    text = (purpose or "").strip()
    if len(text) < MIN_PURPOSE:
        raise ValidationError(
            f"查看敏感信息须填写用途（至少 {MIN_PURPOSE} 个字），例如“核实身份办理低保”"
        )
    return text


def audit_reveal(
    session: Session,
    actor: Actor,
    *,
    object_type: str,
    object_id: str | int,
    fields: Sequence[str],
    purpose: str,
    allowed: bool,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Check ``allowed`` and the purpose, then queue the audit record of a reveal.

    For reveals that are not one field of one object — e.g. an unmasked export: one record with
    ``object_id="export"`` and ``detail={"count": n}``. ``reveal`` uses it for single values.
    """
    if not allowed:
        raise Forbidden("您没有查看该敏感信息的权限")
    text = check_purpose(purpose)
    if not session.get_bind().get_execution_options().get(_WRITE, False):
        raise PrivacyError("查看敏感信息须在写事务（write()）中进行，审计记录随事务提交写入")
    from yiwang.audit import record  # imported here: the audit trail need not load with the API

    info: dict[str, Any] = {"field": fields[0]} if len(fields) == 1 else {"fields": list(fields)}
    record(
        session,
        ACTION,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        purpose=text,
        detail={**info, **(detail or {})},
    )


def reveal(
    session: Session, actor: Actor, obj: Any, field: str, purpose: str, *, allowed: bool
) -> str:
    """The plain text of a personal ``field`` of ``obj`` (a loaded model instance).

    Parameters
    ----------
    session: the write unit ``obj`` was loaded in (the audit record commits with it).
    actor: who asks (``yiwang.audit.Actor``).
    field: a field declared with ``sensitive_field`` / ``personal_field`` or
        ``yiwang_personal_fields``.
    purpose: why (at least 4 characters); stored in the audit record.
    allowed: the route's permission decision (e.g. ``<plugin>.reveal`` at the object's node).

    Raises ``Forbidden`` when not allowed, ``ValidationError`` without a purpose.
    """
    state = inspect(obj)
    mapper = state.mapper
    prop = mapper.column_attrs.get(field)
    if prop is None or classification(prop.columns[0]) is None:
        raise PrivacyError(f"{mapper.class_.__name__}.{field} 不是已声明的个人信息字段")
    identity = state.identity
    if identity is None:
        raise PrivacyError("只能查看已保存对象的敏感信息")
    audit_reveal(
        session,
        actor,
        object_type=mapper.local_table.name,
        object_id=":".join(str(part) for part in identity),
        fields=[field],
        purpose=purpose,
        allowed=allowed,
    )
    value = getattr(obj, field)
    return "" if value is None else str(value)


__all__ = ["ACTION", "audit_reveal", "check_purpose", "reveal"]
