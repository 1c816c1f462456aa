from __future__ import annotations

import pytest

from modelgrid.review.pii import find_pii, id_check_digit, luhn_valid, mask, valid_id_number

VALID_ID = "11010519491231002X"  # the standard's worked example


def kinds(text: str) -> list[str]:
    return [s.kind for s in find_pii(text)]


def test_id_check_digit() -> None:
    assert id_check_digit(VALID_ID[:17]) == "X"
    assert valid_id_number(VALID_ID)
    assert valid_id_number(VALID_ID.lower())
    assert not valid_id_number(VALID_ID[:17] + "3")  # wrong check digit
    assert not valid_id_number("110105194913310021")  # month 13


def test_id_detected_only_with_valid_check_digit() -> None:
    assert kinds(f"身份证号{VALID_ID}。") == ["id_number"]
    assert kinds("身份证号110105194912310023。") == []


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_bank_card_detection() -> None:
    assert kinds("card 4111 1111 1111 1111 ok") == ["bank_card"]
    assert kinds("card 4111-1111-1111-1112 ok") == []


@pytest.mark.parametrize(
    "phone", ["13812345678", "138 1234 5678", "138-1234-5678", "+86 13812345678"]
)
def test_phone_variants(phone: str) -> None:
    assert kinds(f"call {phone} now") == ["phone"]


def test_not_a_phone() -> None:
    assert kinds("call 12812345678 now") == []  # second digit 2 is not a mobile prefix
    assert kinds("order 138123456789012") == []  # too long, not Luhn-valid either


def test_email() -> None:
    (span,) = find_pii("write to alice.w@example.com.")
    assert span.kind == "email"


def test_mask_original_text() -> None:
    text = f"手机 138-1234-5678，邮箱 alice@example.com，身份证 {VALID_ID}，卡 4111 1111 1111 1111"
    masked = mask(text, find_pii(text))
    assert masked == (
        "手机 138-****-5678，邮箱 a***e@example.com，"
        "身份证 **************002X，卡 **** **** **** 1111"
    )


def test_mask_without_spans_is_identity() -> None:
    assert mask("nothing here", []) == "nothing here"
