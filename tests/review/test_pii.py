from __future__ import annotations

import random
import re

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


def test_full_width_numbers_are_found_and_masked_in_place() -> None:
    text = "电话：１３８１２３４５６７８，卡号４１１１ １１１１ １１１１ １１１１。"
    spans = find_pii(text)
    assert [s.kind for s in spans] == ["phone", "bank_card"]
    assert mask(text, spans) == "电话：１３８****５６７８，卡号**** **** **** １１１１。"


def test_emails_found_from_their_at_sign_as_a_pattern_would() -> None:
    # What the detector replaced: one pattern tried at every position, left to right.
    pattern = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
    rng = random.Random(5)
    alphabet = "ab.-_%+@ 9Z中"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        text += rng.choice(["", ".com", "@x.cn", " a@b.org"])
        expected = [(m.start(), m.end()) for m in pattern.finditer(text)]
        assert [(s.start, s.end) for s in find_pii(text) if s.kind == "email"] == expected, text
