"""The rules for identifying data: national identity numbers are found however they are
written, phone numbers are normalised before hashing, tokens are long and stored hashed."""

from __future__ import annotations

import pytest

from bot.privacy import (
    Cipher,
    PhoneError,
    contains_national_id,
    new_token,
    normalise_phone,
    phone_hash,
    token_hash,
)

VALID = "01019000083"  # passes both fødselsnummer check digits


@pytest.mark.parametrize(
    "text",
    [
        f"Pasient {VALID} har feber",
        "fnr 010190 00083",
        "fnr 010190-00083",
        "født 01.01.90 00083",
        "0101 9000 083",
        "010190\u00a000083",  # a no-break space, as word processors paste
        "".join(chr(0xFF10 + int(d)) for d in VALID),  # full-width digits
    ],
)
def test_a_national_identity_number_is_found_however_it_is_written(text: str) -> None:
    assert contains_national_id(text)


@pytest.mark.parametrize(
    "text",
    [
        "01019000084",  # wrong check digit
        "Ring 912 34 567 i kveld",
        "Kontonummer 1234.56.78903",
        "Temperatur 38,5 kl. 22 og 04",
        "0101900008312",  # part of a longer number
    ],
)
def test_other_numbers_are_not_taken_for_one(text: str) -> None:
    assert not contains_national_id(text)


def test_a_number_is_hashed_the_same_however_it_was_written() -> None:
    secret = b"k" * 32
    forms = ["91234567", "+47 912 34 567", "+4791234567", "912-34-567", "(+47) 91234567"]
    assert {normalise_phone(f) for f in forms} == {"+4791234567"}
    digest = phone_hash(secret, "+4791234567")
    assert "91234567" not in digest and len(digest) == 64
    assert phone_hash(b"x" * 32, "+4791234567") != digest  # keyed: useless without the key


@pytest.mark.parametrize("bad", ["123", "+47 12", "hello", "", "+999 1234 5678", "9" * 40])
def test_a_number_that_cannot_be_real_is_refused(bad: str) -> None:
    with pytest.raises(PhoneError):
        normalise_phone(bad)


def test_tokens_are_long_random_and_stored_only_as_a_hash() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(t) >= 22 for t in tokens)  # ≥ 128 bits in URL-safe base64
    token = tokens.pop()
    assert token not in token_hash(token) and len(token_hash(token)) == 64


def test_encrypted_text_reads_back_only_with_the_same_key() -> None:
    box = Cipher(b"a" * 32, "sms").encrypt("+4791234567")
    assert "91234567" not in box
    assert Cipher(b"a" * 32, "sms").decrypt(box) == "+4791234567"
    assert Cipher(b"b" * 32, "sms").decrypt(box) is None
