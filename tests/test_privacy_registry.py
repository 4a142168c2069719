"""``yiwang_personal_fields``: the kernel keeps each plugin's classification and refuses to start
on a declaration that names a missing field or leaves a sensitive one unprotected."""

from __future__ import annotations

import dataclasses
import types
from typing import Any

import pytest
from sqlmodel import Field, SQLModel

from yiwang.api import (
    PersonalField,
    PluginSpec,
    blind_index_field,
    hookimpl,
    masked_row,
    personal_field,
    personal_fields_of,
    sensitive_field,
)
from yiwang.errors import PluginError, SettingsError
from yiwang.kernel import Kernel


class Household(SQLModel, table=True):
    __tablename__ = "test_privacy_household"

    id: int | None = Field(default=None, primary_key=True)
    head_name: str = personal_field("name", "户主姓名")
    head_id_number: str = sensitive_field("id_number", "户主身份证号")
    head_id_number_bidx: str | None = blind_index_field()
    phone: str | None = sensitive_field("phone", "联系电话", default=None)
    remark: str = ""


class Contact(SQLModel, table=True):
    """Plain columns, classified by an explicit declaration only."""

    __tablename__ = "test_privacy_contact"

    id: int | None = Field(default=None, primary_key=True)
    name: str = ""
    mobile: str = ""


class Broken(SQLModel, table=True):
    __tablename__ = "test_privacy_broken"

    id: int | None = Field(default=None, primary_key=True)
    remark: str = ""
    remark_bidx: str | None = blind_index_field()


def plugin(name: str, fields: Any, models: Any = ()) -> PluginSpec:
    hooks = types.SimpleNamespace()

    @hookimpl
    def yiwang_personal_fields() -> Any:
        return fields() if callable(fields) else fields

    @hookimpl
    def yiwang_models() -> Any:
        return list(models)

    hooks.yiwang_personal_fields = yiwang_personal_fields
    hooks.yiwang_models = yiwang_models
    return PluginSpec(name=name, version="1.0", title=name, api=">=1.0,<2", hooks=hooks)


def start(settings: Any, db: Any, *specs: PluginSpec) -> Kernel:
    settings = dataclasses.replace(settings, plugins_enabled=tuple(s.name for s in specs))
    return Kernel(settings, extra_plugins=specs, db=db)


@pytest.mark.sqlite_only("the registry does not touch the database")
def test_declared_fields_are_kept_per_kernel_with_their_plugin(
    settings: Any, yiwang_db: Any
) -> None:
    households = plugin("ywt_households", lambda: personal_fields_of(Household), [Household])
    contacts = plugin(
        "ywt_contacts",
        [
            PersonalField(Contact, "name", "name", False, "联系人"),
            PersonalField(Contact, "mobile", "phone", False, "手机"),
        ],
    )
    baseline = len(start(settings, yiwang_db).privacy)  # the kernel's own (User fields)
    kernel = start(settings, yiwang_db, households, contacts)
    assert [
        (f.field, f.kind, f.sensitive, f.title, f.plugin) for f in kernel.privacy.of(Household)
    ] == [
        ("head_name", "name", False, "户主姓名", "ywt_households"),
        ("head_id_number", "id_number", True, "户主身份证号", "ywt_households"),
        ("phone", "phone", True, "联系电话", "ywt_households"),
    ]
    assert kernel.privacy.get(Contact, "mobile").plugin == "ywt_contacts"  # type: ignore[union-attr]
    assert kernel.privacy.get(Household, "remark") is None and len(kernel.privacy) == baseline + 5
    # an explicit declaration is enough for masking helpers to know the kind
    assert masked_row(Contact(name="张三", mobile="13812345678"), ["name", "mobile"]) == {
        "name": "张*",
        "mobile": "138****5678",
    }
    assert len(start(settings, yiwang_db).privacy) == baseline  # another kernel, other plugins


BAD = [
    (
        [PersonalField(Household, "nickname", "name", False, "昵称")],
        [],
        "Household.nickname 不存在",
    ),
    ([PersonalField(Household, "remark", "name", True, "备注")], [], "必须加密存储"),
    ([PersonalField(Household, "phone", "phone", False, "联系电话")], [], "应声明为敏感"),
    (
        [PersonalField(Household, "phone", "id_number", True, "联系电话")],
        [],
        "类别 id_number 与列定义的 phone 不一致",
    ),
    ([PersonalField(Household, "remark", "passport", False, "备注")], [], "类别 'passport' 未知"),
    ([PersonalField(Household, "remark", "other", False, " ")], [], "缺少中文名称"),
    ([PersonalField(Household, "head_name", "address", False, "户主")], [], "不一致"),
    ([PersonalField(dict, "x", "name", False, "x")], [], "不是数据表模型"),
    (["head_id_number"], [], "应返回 PersonalField"),
    (
        [PersonalField(Household, "head_name", "name", False, "户主姓名")],
        [Household],
        "加密字段 Household.head_id_number 未在 yiwang_personal_fields 中声明",
    ),
    ([], [Broken], "盲索引字段须对应同表的加密字段 remark"),
]


@pytest.mark.sqlite_only("the registry does not touch the database")
@pytest.mark.parametrize(("fields", "models", "message"), BAD)
def test_bad_declarations_stop_start_up(
    settings: Any, yiwang_db: Any, fields: Any, models: Any, message: str
) -> None:
    with pytest.raises(PluginError, match=message) as exc:
        start(settings, yiwang_db, plugin("ywt_bad", fields, models))
    assert "ywt_bad" in str(exc.value)


@pytest.mark.sqlite_only("the registry does not touch the database")
def test_a_field_is_declared_once(settings: Any, yiwang_db: Any) -> None:
    one = plugin("ywt_one", [PersonalField(Contact, "name", "name", False, "联系人")])
    two = plugin("ywt_two", [PersonalField(Contact, "name", "name", False, "姓名")])
    with pytest.raises(PluginError, match="被重复声明（ywt_one 与 ywt_two）"):
        start(settings, yiwang_db, one, two)


@pytest.mark.sqlite_only("the registry does not touch the database")
def test_sensitive_fields_need_the_data_key_at_start(settings: Any, yiwang_db: Any) -> None:
    from yiwang.privacy.runtime import check_keys

    settings.data_key_file.unlink()
    kernel = start(  # building a kernel reads no key (db upgrade, plugins list need none)...
        settings, yiwang_db, plugin("ywt_households", lambda: personal_fields_of(Household), [Household])
    )
    with pytest.raises(SettingsError, match="数据密钥文件不存在"):  # ...serving checks it first
        check_keys(kernel.db, kernel.privacy)
