"""Declaring personal fields on models: encrypted columns, blind-index companions, lookups.

A plugin writes::

    class Person(SQLModel, table=True):
        __tablename__ = "population_person"
        id: int | None = Field(default=None, primary_key=True)
        name: str = personal_field("name", "姓名")
        id_number: str = sensitive_field("id_number", "公民身份号码")
        id_number_bidx: str | None = blind_index_field()

``id_number`` is stored encrypted (``Encrypted``) and read back as plain text; the unit of work
fills ``id_number_bidx`` with its blind index on every insert and on every update that changes
``id_number``; ``lookup(session, Person.id_number, "4501…")`` finds people by number without
decrypting the table. Encrypted columns refuse SQL comparisons: use ``blind_equals``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, ColumnElement, String, Table, Text, bindparam, event, select
from sqlalchemy.orm import Mapper, attributes
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

from yiwang.keys import DataKeys
from yiwang.privacy.crypto import (
    BLIND_INDEX_LENGTH,
    PrivacyError,
    blind_index,
    blind_index_with,
    decrypt,
    encrypt,
    encrypt_with,
    index_mac,
    keys_of,
)
from yiwang.privacy.masking import KINDS

#: Key of ``Column.info`` holding a personal field's classification (kind, sensitive, title).
PERSONAL_INFO = "yiwang.personal"
#: Key of ``Column.info`` on a blind-index column: the name of the column it indexes.
BLIND_INDEX_INFO = "yiwang.blind_index_of"
BLIND_INDEX_SUFFIX = "_bidx"

_ALLOWED_OPS = frozenset({operators.is_, operators.is_not})
_NULL_OPS = frozenset({operators.eq, operators.ne})


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise PrivacyError(f"未知的个人信息类别 {kind!r}（可选: {', '.join(KINDS)}）")


class Encrypted(TypeDecorator[str]):
    """Text stored as AES-256-GCM ciphertext, read back as plain text.

    Parameters
    ----------
    kind: the personal-information kind (decides masking and blind-index normalisation).
    aad: associated data; default ``<table>.<column>``, set when the column joins its table.
        Pass the old name explicitly after renaming a table or column, or re-encrypt.
    """

    impl = Text
    cache_ok = True
    #: What migrations store (``render_item`` writes ``sa.Text()``).
    migration_type = Text()

    class comparator_factory(Text.Comparator[str]):
        """Only ``IS [NOT] NULL``: ciphertexts are random, equality in SQL can never match."""

        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if op in _ALLOWED_OPS or (op in _NULL_OPS and other and other[0] is None):
                return super().operate(op, *other, **kwargs)
            raise PrivacyError(
                f"加密字段不能在 SQL 中比较或排序（{getattr(op, '__name__', op)}）；"
                "按号码查找请用 blind_equals / lookup"
            )

        def reverse_operate(self, op: Any, other: Any, **kwargs: Any) -> Any:
            return self.operate(op, other, **kwargs)

    def __init__(self, kind: str = "other", aad: str | None = None) -> None:
        _check_kind(kind)
        super().__init__()
        self.kind = kind
        self.aad = aad
        self.derived_aad = False

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise PrivacyError(f"加密字段 {self._aad()} 只接受文本，收到 {type(value).__name__}")
        return encrypt(keys_of(dialect).encryption, self._aad(), value)

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return decrypt(keys_of(dialect).encryption, self._aad(), value)

    def _aad(self) -> str:
        if not self.aad:
            raise PrivacyError("加密字段尚未归属任何表列，无法确定关联数据（table.column）")
        return self.aad


@event.listens_for(Column, "after_parent_attach")
def _bind_aad(column: Column[Any], parent: Any) -> None:
    """Name the associated data after the table and column the type ends up in."""
    type_ = column.type
    if not isinstance(type_, Encrypted) or not isinstance(parent, Table):
        return
    name = f"{parent.name}.{column.name}"
    if type_.aad is None:
        type_.aad = name
        type_.derived_aad = True
    elif type_.derived_aad and type_.aad != name:
        # One type instance shared by two columns (a field inherited by two tables).
        copy = Encrypted(type_.kind, aad=name)
        copy.derived_aad = True
        column.type = copy


class BlindIndexParam(TypeDecorator[str]):
    """A query parameter that becomes the blind index of its value when executed."""

    impl = String
    cache_ok = True

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return blind_index(keys_of(dialect).index, self.kind, str(value))


# --- model helpers ----------------------------------------------------------------------------


def _info_kwargs(kwargs: dict[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
    column_kwargs = dict(kwargs.pop("sa_column_kwargs", None) or {})
    column_kwargs["info"] = {**column_kwargs.get("info", {}), **info}
    return column_kwargs


def sensitive_field(
    kind: str, title: str = "", *, aad: str | None = None, **field_kwargs: Any
) -> Any:
    """A sensitive personal field (敏感个人信息): encrypted at rest, masked by default.

    Parameters
    ----------
    kind: ``id_number``, ``phone``, ``name``, ``address`` or ``other``.
    title: Chinese name shown in exports and audit pages, e.g. ``"公民身份号码"``.
    aad: associated data if not ``<table>.<column>`` (after a rename).
    field_kwargs: passed to ``sqlmodel.Field`` (``default``, ``nullable``…); an encrypted
        column cannot be indexed or unique — add a ``blind_index_field`` for lookups.
    """
    _check_kind(kind)
    if field_kwargs.get("index") or field_kwargs.get("unique"):
        raise PrivacyError("加密字段不能建索引或唯一约束；请配合 blind_index_field() 使用")
    info = {PERSONAL_INFO: {"kind": kind, "sensitive": True, "title": title}}
    column_kwargs = _info_kwargs(field_kwargs, info)
    field_kwargs.setdefault("repr", False)  # keep plain text out of reprs, logs, tracebacks
    return Field(sa_type=Encrypted(kind, aad=aad), sa_column_kwargs=column_kwargs, **field_kwargs)


def personal_field(kind: str, title: str = "", **field_kwargs: Any) -> Any:
    """A general personal field (一般个人信息): stored as is, masked by default on display."""
    _check_kind(kind)
    info = {PERSONAL_INFO: {"kind": kind, "sensitive": False, "title": title}}
    column_kwargs = _info_kwargs(field_kwargs, info)
    field_kwargs.setdefault("repr", False)
    return Field(sa_column_kwargs=column_kwargs, **field_kwargs)


def blind_index_field(of: str | None = None, *, unique: bool = False) -> Any:
    """The blind-index companion of a sensitive field, filled by the unit of work.

    Name it ``<field>_bidx`` or pass ``of="<field>"``. Annotate it ``str | None``. It is
    indexed; ``unique=True`` makes the number unique in the table.
    """
    return Field(
        default=None,
        max_length=BLIND_INDEX_LENGTH,
        index=True,
        unique=unique,
        sa_column_kwargs={"info": {BLIND_INDEX_INFO: of}},
    )


# --- companions and the unit of work -----------------------------------------------------------


@dataclass(frozen=True)
class _Pair:
    source: str  # attribute key of the encrypted field
    index: str  # attribute key of its blind index
    kind: str


def blind_index_pairs(mapper: Mapper[Any]) -> tuple[_Pair, ...]:
    """The (sensitive field, blind index) pairs of a mapped class; raises on a bad declaration."""
    cached = _PAIRS.get(mapper)
    if cached is not None:
        return cached
    by_column = {prop.columns[0].name: prop.key for prop in mapper.column_attrs}
    pairs = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if BLIND_INDEX_INFO not in column.info:
            continue
        source = column.info[BLIND_INDEX_INFO] or _strip_suffix(column.name, mapper)
        target = mapper.local_table.c.get(source) if isinstance(mapper.local_table, Table) else None
        if target is None or not isinstance(target.type, Encrypted):
            raise PrivacyError(
                f"{mapper.class_.__name__}.{prop.key}: 盲索引字段须对应同表的加密字段 {source}"
                "（用 sensitive_field() 声明）"
            )
        pairs.append(_Pair(by_column[source], prop.key, target.type.kind))
    result = tuple(pairs)
    _PAIRS[mapper] = result
    return result


def _strip_suffix(name: str, mapper: Mapper[Any]) -> str:
    if not name.endswith(BLIND_INDEX_SUFFIX):
        raise PrivacyError(
            f"{mapper.class_.__name__}.{name}: 盲索引字段应命名为 <字段>{BLIND_INDEX_SUFFIX}，"
            '或用 blind_index_field(of="<字段>") 指明'
        )
    return name[: -len(BLIND_INDEX_SUFFIX)]


# Derived from the (immutable) mappers; holds no deployment state.
_PAIRS: dict[Mapper[Any], tuple[_Pair, ...]] = {}


def _fill(pairs: Sequence[_Pair], mapper: Mapper[Any], connection: Any, target: Any) -> None:
    key = keys_of(connection).index
    for pair in pairs:
        value = getattr(target, pair.source)
        if value is not None and not isinstance(value, str):
            raise PrivacyError(
                f"加密字段 {mapper.class_.__name__}.{pair.source} 只接受文本，收到 {type(value).__name__}"
            )
        setattr(target, pair.index, None if value is None else blind_index(key, pair.kind, value))


def _fill_on_insert(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    pairs = blind_index_pairs(mapper)
    if pairs:
        _fill(pairs, mapper, connection, target)


def _fill_on_update(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    pairs = [
        p
        for p in blind_index_pairs(mapper)
        if attributes.get_history(target, p.source).has_changes()
    ]
    if pairs:
        _fill(pairs, mapper, connection, target)


@event.listens_for(Mapper, "mapper_configured")
def _watch_blind_indexes(mapper: Mapper[Any], class_: type) -> None:
    """Fill blind indexes in the unit of work of classes that have them."""
    table = mapper.local_table
    if isinstance(table, Table) and any(BLIND_INDEX_INFO in c.info for c in table.columns):
        if not event.contains(mapper, "before_insert", _fill_on_insert):
            event.listen(mapper, "before_insert", _fill_on_insert)
            event.listen(mapper, "before_update", _fill_on_update)


# --- lookups ----------------------------------------------------------------------------------


def _encrypted_and_companion(field: Any) -> tuple[Encrypted, Any]:
    """The Encrypted type of ``field`` (ORM attribute or Core column) and its blind-index
    column, taken from the same entity or alias."""
    parent = getattr(field, "parent", None)  # ORM attribute: its Mapper or AliasedInsp
    if parent is not None and hasattr(parent, "mapper"):
        mapper = parent.mapper
        prop = mapper.get_property(field.key)
        column = prop.columns[0]
        if not isinstance(column.type, Encrypted):
            raise PrivacyError(f"{mapper.class_.__name__}.{field.key} 不是加密字段")
        for pair in blind_index_pairs(mapper):
            if pair.source == field.key:
                return column.type, getattr(parent.entity, pair.index)
        raise PrivacyError(
            f"{mapper.class_.__name__}.{field.key} 没有盲索引字段（blind_index_field）"
        )
    type_ = _column_type(field)
    for other in field.table.c:
        if BLIND_INDEX_INFO in other.info:
            source = other.info[BLIND_INDEX_INFO] or other.name.removesuffix(BLIND_INDEX_SUFFIX)
            if source == field.name:
                return type_, other
    raise PrivacyError(f"{field} 没有盲索引字段（blind_index_field）")


def blind_equals(field: Any, value: str) -> ColumnElement[bool]:
    """SQL condition "``field`` equals ``value``" through the blind index (no decryption).

    ``select(Person).where(blind_equals(Person.id_number, "450103199001011234"))``. Values are
    normalised as for indexing, so a 15-digit number or ``138 1234 5678`` match too.
    """
    type_, companion = _encrypted_and_companion(field)
    return companion == bindparam(None, value, type_=BlindIndexParam(type_.kind))  # type: ignore[no-any-return]


def blind_in(field: Any, values: Iterable[str]) -> ColumnElement[bool]:
    """SQL condition "``field`` is one of ``values``" through the blind index."""
    type_, companion = _encrypted_and_companion(field)
    param = bindparam(None, list(values), type_=BlindIndexParam(type_.kind), expanding=True)
    return companion.in_(param)  # type: ignore[no-any-return]


def lookup(session: Any, field: Any, value: str) -> Sequence[Any]:
    """Objects whose ``field`` equals ``value``, found through the blind index."""
    entity = field.parent.entity
    return session.execute(select(entity).where(blind_equals(field, value))).scalars().all()  # type: ignore[no-any-return]


# --- raw rows (bulk import) --------------------------------------------------------------------


class Codec:
    """Encryption and blind indexes for code that bypasses the ORM unit of work.

    ``Codec(session)`` (or a connection or engine) uses that database's keys. Core inserts
    (``conn.execute(table.insert(), rows)``) encrypt by themselves but leave blind indexes to
    ``row(table, values)``; a raw driver (PostgreSQL ``COPY``) needs ``encrypt=True`` as well.

    A codec pickles *with its keys*: that is how a bulk load hands sealing to a worker process
    it starts itself (``multiprocessing``; the population importer does). Never store, log or
    send a pickled codec anywhere else.
    """

    def __init__(self, bind: Any) -> None:
        self._set_keys(keys_of(bind))

    def _set_keys(self, keys: DataKeys) -> None:
        self._keys = keys
        # Made once per codec: a bulk load seals millions of values.
        self._aead = AESGCM(keys.encryption)
        self._mac = index_mac(keys.index)

    @classmethod
    def _from_keys(cls, keys: DataKeys) -> Codec:
        codec = cls.__new__(cls)
        codec._set_keys(keys)
        return codec

    def __reduce__(self) -> tuple[Any, tuple[DataKeys]]:
        # The cipher and MAC states do not pickle; the keys do, and rebuild them.
        return (Codec._from_keys, (self._keys,))

    def blind_index(self, kind: str, value: str) -> str:
        return blind_index_with(self._mac, kind, value)

    def encrypt(self, column: Any, value: str) -> str:
        return encrypt_with(self._aead, _column_type(column)._aad(), value)

    def decrypt(self, column: Any, token: str) -> str:
        return decrypt(self._keys.encryption, _column_type(column)._aad(), token)

    def row(
        self, table: Table, values: Mapping[str, Any], *, encrypt: bool = False
    ) -> dict[str, Any]:
        """``values`` (by column name) with blind indexes filled and, for a raw driver,
        encrypted columns sealed."""
        out = dict(values)
        for column in table.c:
            if BLIND_INDEX_INFO in column.info:
                source = column.info[BLIND_INDEX_INFO] or column.name.removesuffix(
                    BLIND_INDEX_SUFFIX
                )
                plain = values.get(source)
                kind = _column_type(table.c[source]).kind
                out[column.name] = None if plain is None else self.blind_index(kind, plain)
        if encrypt:
            for column in table.c:
                if isinstance(column.type, Encrypted) and out.get(column.name) is not None:
                    out[column.name] = self.encrypt(column, out[column.name])
        return out


def _column_type(column: Any) -> Encrypted:
    type_ = getattr(column, "type", None)
    if not isinstance(type_, Encrypted):
        raise PrivacyError(f"{column} 不是加密字段")
    return type_


def encrypted_columns(table: Table) -> list[Column[Any]]:
    return [c for c in table.c if isinstance(c.type, Encrypted)]


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Alembic ``render_item``: kernel column types with a ``migration_type`` (``Encrypted``)
    are written to migrations as that plain SQLAlchemy type, e.g. ``sa.Text()``."""
    storage = getattr(obj, "migration_type", None) if type_ == "type" else None
    return f"sa.{storage!r}" if storage is not None else False


def classification(column: Any) -> Mapping[str, Any] | None:
    """The personal-field classification stored on a column (``None`` if not personal)."""
    info = getattr(column, "info", None)
    return info.get(PERSONAL_INFO) if info else None


__all__ = [
    "BLIND_INDEX_INFO",
    "Codec",
    "Encrypted",
    "PERSONAL_INFO",
    "blind_equals",
    "blind_in",
    "blind_index_field",
    "blind_index_pairs",
    "classification",
    "encrypted_columns",
    "lookup",
    "personal_field",
    "render_item",
    "sensitive_field",
]
