"""Handling identifying data: link tokens, phone numbers, national identity numbers, encryption.

Pure functions, no I/O. The rules from the design:

- link tokens have at least 128 bits from ``secrets``; only their SHA-256 is stored;
- phone numbers are validated and normalised to E.164 with ``phonenumbers`` and stored only as
  an HMAC keyed with ``SECRET_KEY``, enough to find re-contacts and not readable;
- free text holding a Norwegian national identity number (11 digits that pass the fødselsnummer
  check digits, D- and H-numbers included, via ``python-stdnum``) is refused;
- free text kept at rest (a nurse's note and risk groups, a leader's answer) and what must be
  kept readable for a while (an SMS waiting to be sent) is encrypted with Fernet, keys derived
  from ``SECRET_KEY`` per purpose, rotated with ``MultiFernet`` (``python -m bot keys rotate``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Sequence
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.problems import N_, Problem

TOKEN_BYTES = 17  # 136 bits; token_urlsafe gives 23 characters of [A-Za-z0-9_-]
DEFAULT_REGION = "NO"  # numbers written without +47 are Norwegian


def new_token() -> str:
    """A fresh, unguessable link token (URL-safe, 23 characters, 136 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def telegram_token(page_token: str) -> str:
    """The Telegram deep link's token for an advice page's token: derived one way (HMAC-SHA256
    keyed with the page token), so the page can offer "continue in Telegram" while only hashes
    are stored, and a deep link never reveals the page's URL. 23 characters, 136 bits."""
    digest = hmac.new(page_token.encode(), b"sikkerhetsnett:telegram-link", "sha256").digest()
    return base64.urlsafe_b64encode(digest[:TOKEN_BYTES]).decode().rstrip("=")


def token_hash(token: str) -> str:
    """What is stored for a token: its SHA-256 (the token itself has full entropy)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_key() -> str:
    return "sn_" + secrets.token_urlsafe(32)


class PhoneError(ValueError):
    """A phone number that cannot be a real caller's number; ``problem`` says why, in any
    language."""

    def __init__(self, template: str) -> None:
        super().__init__(template)
        self.problem = Problem(template)


_NOT_A_NUMBER = N_("it must be a phone number, e.g. +4791234567")


def normalise_phone(raw: str) -> str:
    """The number in E.164 (``+4791234567``); Norwegian if written without a country code."""
    import phonenumbers  # its metadata is ~30 ms of import: paid by the first number, not a start

    text = raw.strip()
    if not text or len(text) > 32 or not re.fullmatch(r"[+0-9 ().-]+", text):
        raise PhoneError(_NOT_A_NUMBER)
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise PhoneError(_NOT_A_NUMBER) from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(
            N_("it is not a valid phone number (check the digits and the country code)")
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def sms_reachable(e164: str, countries: Sequence[str]) -> Literal["ok", "country", "not_mobile"]:
    """Whether an SMS may go to this number: a mobile number (by ``phonenumbers``' number type)
    in one of ``countries`` (ISO codes). Landlines, toll-free, premium and shared-cost numbers
    never get one: sending to them costs money and reaches no caller (SMS pumping)."""
    import phonenumbers

    kinds = phonenumbers.PhoneNumberType
    mobile = (kinds.MOBILE, kinds.FIXED_LINE_OR_MOBILE)
    number = phonenumbers.parse(e164, DEFAULT_REGION)
    if phonenumbers.region_code_for_number(number) not in countries:
        return "country"
    if phonenumbers.number_type(number) not in mobile:
        return "not_mobile"
    return "ok"


def phone_hash(secret: bytes, e164: str) -> str:
    """The keyed hash stored in place of a phone number."""
    return hmac.new(secret, b"phone:" + e164.encode(), hashlib.sha256).hexdigest()


# What people (and their phones) put between the digit groups of a number: spaces of every kind,
# dashes of every kind (phones turn "-" into "–"), the minus sign, dots and slashes.
_SEPARATOR = " "
_SEPARATORS = frozenset("./·\u2212")
_MAX_SEPARATORS = 4  # "010190 - 00083", "010190 – 00083" and double spaces are still one number
_GROUPS = re.compile(rf"[0-9]+(?: {{1,{_MAX_SEPARATORS}}}[0-9]+)*")


def _canonical(text: str) -> str:
    """The text with every way of writing digits and separators reduced to ASCII digits and
    spaces: NFKC, format characters (zero-width, soft hyphen, bidi marks) dropped, digits of
    any script as ASCII, whitespace and dash characters as one space each."""
    out = []
    for char in unicodedata.normalize("NFKC", text):
        category = unicodedata.category(char)
        if category == "Cf":
            continue  # zero-width space and joiners, soft hyphen, bidi marks, BOM
        if category == "Nd":
            out.append(str(unicodedata.decimal(char)))
        elif char.isspace() or category in ("Zs", "Zl", "Zp", "Pd") or char in _SEPARATORS:
            out.append(_SEPARATOR)
        else:
            out.append(char)
    return "".join(out)


def contains_national_id(text: str) -> bool:
    """True if the text holds a Norwegian fødselsnummer, D-number or H-number.

    However it is written: digit groups may be split by up to four spaces, dashes, dots or
    slashes of any kind (``010190 – 00083``), with invisible characters between the digits, in
    full-width or other scripts' digits. Eleven digits that start and end at the edges of digit
    groups (so a longer number is not cut to fit) and pass the check digits count.
    """
    from stdnum.no import fodselsnummer  # python-stdnum imports pydoc: not paid by every start

    for match in _GROUPS.finditer(_canonical(text)):
        groups = match.group().split()
        for first in range(len(groups)):
            digits = ""
            for group in groups[first:]:
                digits += group
                if len(digits) >= 11:
                    break
            if len(digits) == 11 and fodselsnummer.is_valid(digits):
                return True
    return False


class Cipher:
    """Fernet with keys derived from ``SECRET_KEY`` (and ``SECRET_KEY_FALLBACKS``) per purpose.

    The first secret encrypts; every one decrypts (``MultiFernet``), so data made before a key
    rotation stays readable until ``rotate`` has moved it to the new key.
    """

    def __init__(self, secrets: bytes | Sequence[bytes], purpose: str) -> None:
        keys = [secrets] if isinstance(secrets, bytes) else list(secrets)
        if not keys:
            raise ValueError("a Cipher needs at least one secret")
        self._fernets = [Fernet(_fernet_key(secret, purpose)) for secret in keys]
        self._multi = MultiFernet(self._fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str | None:
        """The plaintext; None if no key in use made it (SECRET_KEY changed, no fallback)."""
        try:
            return self._multi.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            return None

    def is_current(self, ciphertext: str) -> bool:
        """Whether the current key (the first) made it."""
        try:
            self._fernets[0].decrypt(ciphertext.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, ciphertext: str) -> str | None:
        """The same plaintext encrypted with the current key; None if no key in use reads it."""
        try:
            return self._multi.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            return None


def _fernet_key(secret: bytes, purpose: str) -> bytes:
    return base64.urlsafe_b64encode(
        hashlib.sha256(b"fernet:" + purpose.encode() + b":" + secret).digest()
    )
