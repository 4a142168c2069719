"""Changing a province's dictionaries: validated, audited, seen by every worker at once."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from yiwang.audit import Actor, record
from yiwang.db.epoch import bump_counter
from yiwang.dicts.cache import EPOCH, T, cache_of
from yiwang.dicts.models import DictOverride
from yiwang.errors import NotFound, ValidationError
from yiwang.grid.models import utcnow

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

MAX_LABEL = 30
CODE = re.compile(r"^[A-Za-z0-9_-]{1,30}$")


def set_item(
    kernel: Kernel, province_id: int, name: str, code: str, *, label: str, position: int,
    active: bool, actor: Actor,
) -> None:  # fmt: skip
    """Set the label, position and on/off of item ``code`` in the province (adding it when the
    dictionary is extensible and lacks it). Raises ValidationError, nothing saved."""
    cache = cache_of(kernel)
    declared = cache.declared.get(name)
    if declared is None:
        raise NotFound(f"数据字典 {name} 未声明")
    entries = {e.code: e for e in cache.entries(name, province_id)}
    label, code = label.strip(), code.strip()
    problems: list[str] = []
    if not label:
        problems.append("请填写名称")
    elif len(label) > MAX_LABEL or any(ord(ch) < 32 for ch in label):
        problems.append(f"名称不能超过 {MAX_LABEL} 个字，且不能含控制字符")
    if code not in entries:
        if not declared.extensible:
            problems.append(f"“{declared.title}”不允许新增代码（其代码由系统使用）")
        elif not CODE.match(code):
            problems.append("代码只能由 1–30 位字母、数字、下划线或连字符组成")
    elif entries[code].declared is not None and not active and not declared.extensible:
        problems.append(f"“{declared.title}”的系统代码不能停用，只能改名或调整顺序")
    if not -9999 <= position <= 9999:
        problems.append("顺序应在 -9999 到 9999 之间")
    others_on = [e for e in entries.values() if e.code != code and e.active]
    if not active and not others_on:
        problems.append("至少要保留一个启用的条目")
    if label and any(e.label == label and e.code != code for e in entries.values()):
        problems.append(f"已有名称为“{label}”的条目")
    if problems:
        raise ValidationError("数据字典未保存", problems)
    was = entries.get(code)
    with kernel.db.write() as s:
        row = s.scalars(select(DictOverride).where(
            DictOverride.node_id == province_id, DictOverride.dictionary == name, DictOverride.code == code  # type: ignore[arg-type]
        )).first()  # fmt: skip
        record(
            s, "dicts.item.set", actor=actor, object_type="dictionary", object_id=f"{name}:{code}",
            detail={"node_id": province_id, "dictionary": name, "code": code, "label": label,
                    "position": position, "active": active,
                    "was": None if was is None else {"label": was.label, "position": was.position, "active": was.active}},
        )  # fmt: skip
        if row is None:
            row = DictOverride(node_id=province_id, dictionary=name, code=code, label=label)
        row.label, row.position, row.active = label, position, active
        row.updated_by, row.updated_at = actor.user_id, utcnow()
        s.add(row)
        bump_counter(s, EPOCH)
    cache.reload()


def reset_item(kernel: Kernel, province_id: int, name: str, code: str, *, actor: Actor) -> None:
    """Give a declared item back its declared label, position and on state. Items the province
    added are switched off instead (stored records may still carry their code)."""
    cache = cache_of(kernel)
    declared = cache.declared.get(name)
    if declared is None:
        raise NotFound(f"数据字典 {name} 未声明")
    entry = next((e for e in cache.entries(name, province_id) if e.code == code), None)
    if entry is None or not entry.overridden:
        raise NotFound(f"“{declared.title}”的条目 {code} 没有本省的调整")
    if entry.declared is None:
        raise ValidationError("本省新增的条目不能恢复默认，可以停用")
    with kernel.db.write() as s:
        record(
            s, "dicts.item.reset", actor=actor, object_type="dictionary", object_id=f"{name}:{code}",
            detail={"node_id": province_id, "dictionary": name, "code": code,
                    "was": {"label": entry.label, "position": entry.position, "active": entry.active}},
        )  # fmt: skip
        s.execute(delete(T).where(T.c.node_id == province_id, T.c.dictionary == name, T.c.code == code))
        bump_counter(s, EPOCH)
    cache.reload()
