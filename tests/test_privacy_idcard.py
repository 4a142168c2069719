"""GB 11643 citizen identity numbers: checksum, real dates, 15-digit upgrade, sex, area warnings."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yiwang.api import IdInfo, InvalidIdNumber, validate_id
from yiwang.privacy.idcard import WEIGHTS, check_char, is_valid_id, upgrade_15

TODAY = date(2026, 6, 1)

areas = st.sampled_from(["450103", "110105", "310115", "440305", "650102", "540102"])
births = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
sequences = st.integers(min_value=0, max_value=999)


def make_id(area: str, born: date, seq: int) -> str:
    first17 = f"{area}{born:%Y%m%d}{seq:03d}"
    return first17 + check_char(first17)


def with_wrong_check(number: str) -> str:
    return number[:-1] + ("0" if number[-1] != "0" else "1")


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    return make_id(draw(areas), draw(births), draw(sequences))


def test_check_character_follows_the_standard() -> None:
    assert WEIGHTS == (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    # The standard's own example (GB 11643-1999 appendix): 11010519491231002X.
    assert check_char("11010519491231002") == "X"
    assert validate_id("11010519491231002X", today=TODAY).sex == "女"
    # Σ dᵢ·wᵢ mod 11 indexes "10X98765432".
    first17 = "44030519900101123"
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    assert check_char(first17) == "10X98765432"[total % 11]


@given(area=areas, born=births, seq=sequences)
def test_valid_numbers_are_accepted_and_decoded(area: str, born: date, seq: int) -> None:
    number = make_id(area, born, seq)
    info = validate_id(number, today=TODAY)
    assert info == IdInfo(number, born, "男" if seq % 2 else "女", area, (), False)
    assert info.sex_code == (1 if seq % 2 else 2)


@given(number=valid_ids(), position=st.integers(min_value=0, max_value=17), delta=st.integers(1, 9))
def test_changing_any_one_character_is_rejected(number: str, position: int, delta: int) -> None:
    old = number[position]
    new = str(delta) if old == "X" else str((int(old) + delta) % 10)
    mutated = number[:position] + new + number[position + 1 :]
    with pytest.raises(InvalidIdNumber):
        validate_id(mutated, today=TODAY)


@given(number=valid_ids(), position=st.integers(min_value=0, max_value=15))
def test_swapping_two_neighbouring_digits_is_rejected(number: str, position: int) -> None:
    a, b = number[position], number[position + 1]
    if a == b:
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    assert not is_valid_id(swapped, today=TODAY)


@given(
    area=areas,
    born=st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31)),
    seq=sequences,
)
def test_fifteen_digit_numbers_upgrade_and_round_trip(area: str, born: date, seq: int) -> None:
    legacy = f"{area}{born:%y%m%d}{seq:03d}"
    info = validate_id(legacy, today=TODAY)
    assert info.number == make_id(area, born, seq)
    assert info.legacy and info.birth_date == born
    assert any("15 位" in w for w in info.warnings)
    # back: drop "19" and the check character
    assert info.number[:6] + info.number[8:17] == legacy
    assert upgrade_15(legacy) == info.number
    assert validate_id(info.number, today=TODAY).number == info.number


def test_input_is_normalised() -> None:
    number = make_id("450103", date(1985, 7, 9), 123)
    assert (
        validate_id(f"  {number[:6]} {number[6:14]} {number[14:]} ", today=TODAY).number == number
    )
    full_width = number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert validate_id(full_width, today=TODAY).number == number
    with_x = "11010519491231002x"
    assert validate_id(with_x, today=TODAY).number == "11010519491231002X"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "为空"),
        ("45010319850709", "应为 18 位"),
        ("4501031985070912345", "应为 18 位"),
        ("45010319850709123A", "前 17 位应为数字"),
        ("4501031985X709123X", "前 17 位应为数字"),
        ("45010385070912A", "应全部为数字"),
        # Digits of another script pass ``\d`` and survive NFKC: a Chinese rejection, not a crash.
        ("١١٠١٠١١٩٩٠٠١٠١٠٠١X", "前 17 位应为数字"),
        ("١١٠١٠١٩٠٠١٠١٠٠١", "应全部为数字"),
        (with_wrong_check(make_id("450103", date(1985, 7, 9), 123)), "校验位"),
    ],
)
def test_malformed_numbers_are_rejected_in_chinese(value: str, message: str) -> None:
    with pytest.raises(InvalidIdNumber, match=message):
        validate_id(value, today=TODAY)


def test_dates_must_be_real_and_in_range() -> None:
    feb30 = "45010319900230123"
    with pytest.raises(InvalidIdNumber, match="不是有效日期"):
        validate_id(feb30 + check_char(feb30), today=TODAY)
    leap = make_id("450103", date(2000, 2, 29), 1)
    assert validate_id(leap, today=TODAY).birth_date == date(2000, 2, 29)
    not_leap = "45010319000229001"
    with pytest.raises(InvalidIdNumber, match="不是有效日期"):
        validate_id(not_leap + check_char(not_leap), today=TODAY)
    old = "45010318991231001"
    with pytest.raises(InvalidIdNumber, match="早于 1900"):
        validate_id(old + check_char(old), today=TODAY)
    tomorrow = make_id("450103", TODAY + timedelta(days=1), 1)
    with pytest.raises(InvalidIdNumber, match="晚于今天"):
        validate_id(tomorrow, today=TODAY)
    assert validate_id(make_id("450103", TODAY, 1), today=TODAY)
    with pytest.raises(InvalidIdNumber, match="不是有效日期"):
        validate_id("450103850230123", today=TODAY)


def test_messages_never_repeat_the_number_or_the_birth_date() -> None:
    bad = with_wrong_check(make_id("450103", date(1985, 7, 9), 123))
    with pytest.raises(InvalidIdNumber) as exc:
        validate_id(bad, today=TODAY)
    assert bad[:17] not in str(exc.value) and "19850709" not in str(exc.value)


@pytest.mark.parametrize("value", [450103198507091234, 4.501031985070912e17, True, None, b"4501"])
def test_spreadsheet_numbers_are_rejected_with_advice(value: object) -> None:
    with pytest.raises(InvalidIdNumber, match="文本"):
        validate_id(value, today=TODAY)


def test_unknown_area_code_is_a_warning_never_a_rejection() -> None:
    unknown_province = make_id("990101", date(1990, 1, 1), 11)  # 9…: foreign permanent residents
    assert validate_id(unknown_province, today=TODAY).warnings == ()
    no_such_province = make_id("790101", date(1990, 1, 1), 11)
    info = validate_id(no_such_province, today=TODAY)
    assert info.number == no_such_province and "省级代码 79" in info.warnings[0]
    known = make_id("450103", date(1990, 1, 1), 11)
    assert validate_id(known, known_areas={"450103"}, today=TODAY).warnings == ()
    renamed = make_id("452101", date(1990, 1, 1), 11)  # an old code, still valid on the card
    info = validate_id(renamed, known_areas={"450103"}, today=TODAY)
    assert info.number == renamed and "452101" in info.warnings[0]
