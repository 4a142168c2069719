"""The classification of personal fields (个人信息分类), declared by plugins and checked at start.

Plugins return ``PersonalField`` records from ``yiwang_personal_fields``; the kernel keeps them
per ``Kernel`` (``kernel.privacy``) and refuses to start when a declaration names a field that
does not exist, a sensitive field is not encrypted, or an encrypted field of a declared model
is not classified.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.exc import NoInspectionAvailable

from yiwang.errors import PluginError
from yiwang.privacy.fields import PERSONAL_INFO, Encrypted, blind_index_pairs, classification
from yiwang.privacy.masking import KINDS

if TYPE_CHECKING:
    from yiwang.plugins.host import PluginHost


@dataclass(frozen=True)
class PersonalField:
    """One personal field of a model and how it is protected.

    Parameters
    ----------
    model: the SQLModel table class.
    field: the attribute name.
    kind: ``id_number``, ``phone``, ``name``, ``address`` or ``other`` (decides masking).
    sensitive: True for sensitive personal information (敏感个人信息): encrypted at rest
        (declare the column with ``sensitive_field``); False for general (一般个人信息).
    title: Chinese name, e.g. ``"公民身份号码"``.
    plugin: set by the kernel to the declaring plugin's name.
    """

    model: type
    field: str
    kind: str
    sensitive: bool
    title: str
    plugin: str = ""

    @property
    def key(self) -> tuple[type, str]:
        return (self.model, self.field)


def personal_fields_of(*models: type) -> list[PersonalField]:
    """The records for every field declared with ``sensitive_field`` / ``personal_field`` on
    ``models`` — what most plugins return from ``yiwang_personal_fields``."""
    out = []
    for model in models:
        for prop in _mapper(model, "").column_attrs:
            info = classification(prop.columns[0])
            if info is not None:
                out.append(
                    PersonalField(model, prop.key, info["kind"], info["sensitive"], info["title"])
                )
    return out


def _mapper(model: Any, plugin: str) -> Any:
    try:
        return inspect(model)
    except NoInspectionAvailable:
        name = getattr(model, "__name__", repr(model))
        raise PluginError(f"插件 {plugin} 声明的个人信息字段所属的 {name} 不是数据表模型") from None


def _column(model: type, field: str) -> Any:
    mapper: Any = inspect(model)
    prop = mapper.column_attrs.get(field)
    return None if prop is None else prop.columns[0]


class PrivacyRegistry:
    """The personal fields of one kernel's plugins, checked."""

    def __init__(self, fields: Iterable[PersonalField] = ()) -> None:
        self._fields: dict[tuple[type, str], PersonalField] = {}
        for f in fields:
            self._fields[f.key] = f

    @classmethod
    def collect(cls, host: PluginHost) -> PrivacyRegistry:
        """Collect ``yiwang_personal_fields`` from the kernel and each plugin, and check them.

        Raises ``PluginError`` naming the plugin and the field on the first problem.
        """
        declared: dict[tuple[type, str], PersonalField] = {}
        for plugin, record in host.collect_items("yiwang_personal_fields"):
            if not isinstance(record, PersonalField):
                raise PluginError(
                    f"插件 {plugin} 的 yiwang_personal_fields 应返回 PersonalField，收到 {record!r}"
                )
            record = replace(record, plugin=plugin)
            _check(record)
            if record.key in declared:
                raise PluginError(
                    f"个人信息字段 {record.model.__name__}.{record.field} 被重复声明"
                    f"（{declared[record.key].plugin} 与 {plugin}）"
                )
            declared[record.key] = record
        for plugin, model in host.collect_items("yiwang_models"):
            mapper = _mapper(model, plugin)
            for prop in mapper.column_attrs:
                column = prop.columns[0]
                if isinstance(column.type, Encrypted) and (model, prop.key) not in declared:
                    raise PluginError(
                        f"插件 {plugin}: 加密字段 {model.__name__}.{prop.key} 未在 yiwang_personal_fields 中声明"
                    )
            try:
                blind_index_pairs(mapper)
            except Exception as exc:
                raise PluginError(f"插件 {plugin}: {exc}") from None
        for record in declared.values():
            column = _column(record.model, record.field)
            column.info.setdefault(PERSONAL_INFO, _info(record))  # masked_row reads it
        return cls(declared.values())

    @property
    def fields(self) -> tuple[PersonalField, ...]:
        return tuple(self._fields.values())

    def get(self, model: type, field: str) -> PersonalField | None:
        return self._fields.get((model, field))

    def of(self, model: type) -> list[PersonalField]:
        """The declared fields of ``model``, in declaration order."""
        return [f for f in self._fields.values() if f.model is model]

    @property
    def has_sensitive(self) -> bool:
        return any(f.sensitive for f in self._fields.values())

    def __len__(self) -> int:
        return len(self._fields)


def _info(record: PersonalField) -> dict[str, Any]:
    return {"kind": record.kind, "sensitive": record.sensitive, "title": record.title}


def _check(record: PersonalField) -> None:
    plugin, name = (
        record.plugin,
        f"{getattr(record.model, '__name__', record.model)}.{record.field}",
    )
    _mapper(record.model, plugin)
    column = _column(record.model, record.field)
    if column is None:
        raise PluginError(f"插件 {plugin} 声明的个人信息字段 {name} 不存在")
    if record.kind not in KINDS:
        raise PluginError(
            f"插件 {plugin}: 个人信息字段 {name} 的类别 {record.kind!r} 未知（可选: {', '.join(KINDS)}）"
        )
    if not record.title.strip():
        raise PluginError(f"插件 {plugin}: 个人信息字段 {name} 缺少中文名称 title")
    encrypted = isinstance(column.type, Encrypted)
    if record.sensitive and not encrypted:
        raise PluginError(
            f"插件 {plugin}: 敏感字段 {name} 必须加密存储（用 sensitive_field() 声明该列）"
        )
    if encrypted and not record.sensitive:
        raise PluginError(f"插件 {plugin}: 字段 {name} 已加密，应声明为敏感（sensitive=True）")
    if encrypted and column.type.kind != record.kind:
        raise PluginError(
            f"插件 {plugin}: 字段 {name} 声明的类别 {record.kind} 与列定义的 {column.type.kind} 不一致"
        )
    stored = classification(column)
    if stored is not None and (stored["kind"], stored["sensitive"]) != (
        record.kind,
        record.sensitive,
    ):
        raise PluginError(
            f"插件 {plugin}: 字段 {name} 的声明与模型中的 personal_field/sensitive_field 不一致"
        )


__all__ = ["PersonalField", "PrivacyRegistry", "personal_fields_of"]
