"""Masking in pages, exports and logs: the rules of DOMAIN.md §6, the Jinja filter, the log filter
installed by the kernel, and a full request whose logs carry no raw number."""

from __future__ import annotations

import logging
import types
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from yiwang.api import PluginSpec, hookimpl, mask, mask_text, public
from yiwang.privacy.masking import (
    PersonalDataFilter,
    find_personal_data,
    install_log_masking,
    mask_address,
    mask_name,
    mask_phone,
)
from yiwang.testing.logcheck import personal_data_in

ID = "450103199001011238"  # valid checksum
ID15 = "450103900101123"
MOBILE = "13812345678"


def test_id_numbers_keep_first_three_and_last_four_and_their_length() -> None:
    assert mask(ID, "id_number") == "450***********1238"
    assert len(mask(ID, "id_number")) == 18
    assert mask(ID15, "id_number") == "450********1123"
    # Too short to show both ends and still hide a birth date: fewer characters shown.
    assert mask("4501031990", "id_number") == "********90"


def test_phones() -> None:
    assert mask(MOBILE, "phone") == "138****5678"
    assert mask_phone("+86 138 1234 5678") == "+86 138 **** 5678"
    assert mask_phone("0086-138-1234-5678") == "0086-138-****-5678"
    assert mask_phone("0771-5551234") == "077*-***1234"
    assert mask_phone("5551234") == "****234"


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("张三丰", "张**"),
        ("欧阳娜娜", "欧阳**"),
        ("欧阳娜", "欧阳*"),
        ("司马", "司*"),
        ("张", "*"),
        ("买买提·艾力", "买**·**"),
        ("John Smith", "J*** *****"),
    ],
)
def test_names_keep_the_surname(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        (
            "广西壮族自治区南宁市青秀区新竹街道新竹社区民族大道12号3栋2单元501",
            "广西壮族自治区南宁市青秀区新竹街道新竹社区****",
        ),
        ("南宁市青秀区民族大道12号", "南宁市青秀区****"),
        ("某某县某某镇某某村3组12号", "某某县某某镇某某村****"),
        ("阿图什市光明路街道东葛路社区3号", "阿图什市光明路街道东葛路社区****"),
        ("青秀区凤岭小区5栋", "青秀区****"),
        ("青秀区东葛路二区5栋", "青秀区****"),
        ("民族大道东段阳光城市花园", "****"),
        ("南宁市青秀区", "南宁市青秀区"),
    ],
)
def test_addresses_keep_the_administrative_part_down_to_the_community(
    address: str, masked: str
) -> None:
    assert mask_address(address) == masked


def test_other_none_and_unknown_kinds() -> None:
    assert mask("A1234567", "other") == "********"
    assert mask(None, "id_number") == "" and mask("", "name") == ""
    with pytest.raises(ValueError, match="未知的个人信息类别"):
        mask("x", "passport")


def test_free_text_is_masked_but_codes_and_times_are_not() -> None:
    text = (
        f"查询 {ID}，旧号 {ID15}，电话 {MOBILE}、+86 138-1234-5678；"
        "网格 450107001001001，时间戳 1712345678901，请求 3f9a13912345678b，单位 450107001001"
    )
    masked = mask_text(text)
    assert (
        ID not in masked
        and ID15 not in masked
        and MOBILE not in masked
        and "1234-5678" not in masked
    )
    assert (
        "450***********1238" in masked and "138****5678" in masked and "+86 138-****-5678" in masked
    )
    for kept in ("450107001001001", "1712345678901", "3f9a13912345678b", "450107001001"):
        assert kept in masked
    assert mask_text(masked) == masked  # idempotent


def test_the_test_guard_is_precise() -> None:
    assert find_personal_data(f"id={ID} tel={MOBILE}") == ["450***********1238", "138****5678"]
    # a wrong checksum, a 19-digit number, timestamps and grid codes are not personal data
    quiet = "450103199001011231 4501031990010112381 20240101123045123 1712345678 450107001001001"
    assert find_personal_data(quiet) == []


def _record(msg: str, *args: Any, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("t", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_filter_masks_message_arguments_and_traceback() -> None:
    try:
        raise ValueError(f"号码 {ID} 重复")
    except ValueError as exc:
        record = _record("用户 %s 手机 %s", ID, int(MOBILE), exc=exc)
    assert PersonalDataFilter().filter(record) is True
    assert record.getMessage() == "用户 450***********1238 手机 138****5678"
    assert record.args == ()
    assert record.exc_text and ID not in record.exc_text and "450***********1238" in record.exc_text
    assert personal_data_in([record]) == []
    untouched = _record("节点 %s 共 %d 个", "450107001001001", 3)
    PersonalDataFilter().filter(untouched)
    assert untouched.args == ("450107001001001", 3)  # nothing to mask: the record is left as it was


def test_the_kernel_masks_every_log_record(kernel: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Kernel start installs the masking for every logger, whatever its handlers."""
    caplog.set_level(logging.INFO)
    logging.getLogger("yiwang.web.errors").warning("请求 GET /p/x/%s 失败", ID)
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /?phone=%s HTTP/1.1" 200', MOBILE)
    logging.getLogger("some.library").error("dict %(tel)s", {"tel": MOBILE})
    assert ID not in caplog.text and MOBILE not in caplog.text
    assert "450***********1238" in caplog.text and caplog.text.count("138****5678") == 2
    install_log_masking()  # idempotent: still one layer
    factory = logging.getLogRecordFactory()
    install_log_masking()
    assert logging.getLogRecordFactory() is factory


def _logging_plugin() -> PluginSpec:
    hooks = types.SimpleNamespace()
    log = logging.getLogger("ywt_privacy_log")

    @public
    def lookup_person(request: Request) -> PlainTextResponse:
        number = request.path_params["number"]
        log.warning("查找居民 %s，联系电话 %s", number, request.query_params.get("tel"))
        return PlainTextResponse("ok")

    @public
    def broken(request: Request) -> PlainTextResponse:
        raise RuntimeError(f"居民 {request.path_params['number']} 数据异常")

    @hookimpl
    def yiwang_routes() -> list[Route]:
        return [Route("/find/{number}", lookup_person), Route("/broken/{number}", broken)]

    hooks.yiwang_routes = yiwang_routes
    return PluginSpec(
        name="ywt_privacy_log", version="1.0", title="日志脱敏测试", api=">=1.0,<2", hooks=hooks
    )


@pytest.mark.with_plugins(_logging_plugin())
def test_no_raw_number_in_the_logs_of_a_request(
    app: Any, grid: Any, caplog: pytest.LogCaptureFixture
) -> None:
    grid.node("45")
    with TestClient(app, raise_server_exceptions=False) as client:
        assert (
            client.get(f"/p/ywt_privacy_log/find/{ID}", params={"tel": MOBILE}).status_code == 200
        )
        assert client.get(f"/p/ywt_privacy_log/broken/{ID}").status_code == 500
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "查找居民 450***********1238，联系电话 138****5678" in caplog.text
    assert "数据异常" in text  # the error and its traceback were logged …
    assert ID not in text and MOBILE not in text  # … masked
    assert personal_data_in(caplog.records) == []


def test_jinja_filter(kernel: Any) -> None:
    env = kernel.templates.env
    template = env.from_string(
        '{{ p.id_number|mask("id_number") }} {{ p.phone|mask("phone") }} {{ p.name|mask("name") }}'
    )
    assert template.render(p={"id_number": ID, "phone": MOBILE, "name": "欧阳娜娜"}) == (
        "450***********1238 138****5678 欧阳**"
    )
