"""Pseudonymous conversation ids, and the phone number kept encrypted at rest.

The Rasa sender id is a keyed hash (HMAC-SHA256 with ``PSEUDONYM_KEY``) of the E.164 number,
so the tracker store, escalations and logs never hold a number, and without the key a leaked
database cannot be turned back into numbers by hashing every UK mobile.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken

from bot.settings import settings

PREFIX = "sms-"
# Where a number written without a country code (07700 900123) is from: the line is in the UK.
HOME_REGION = "GB"


class BadNumber(ValueError):
    """The sender is not an E.164 phone number (the message cannot be answered by SMS)."""


def normalise_number(raw: str, region: str | None = None) -> str:
    """The number in E.164 form (``+447700900123``), parsed by ``phonenumbers``.

    Spaces, dashes, brackets and a ``(0)`` some people and gateways add are dropped. With
    ``region=None`` (the SMS webhook: Twilio always sends E.164) a number must start with its
    country code; with ``region="GB"`` (staff numbers typed into the rota) a national number
    such as ``07700 900123`` is read as a UK one, so both spellings are the same person.

    A number is accepted when its length is possible for its country, not only when it is in
    a range the library's metadata lists as allocated (``is_valid_number``): that check
    refuses Ofcom's drama ranges (07700 900xxx) and, worse, any range allocated after the
    installed metadata was built, and a person in crisis texting from a new number must
    still get an answer.
    """
    text = raw or ""
    try:
        # Letters are refused here, not by the library: it reads "0800 FLOWERS" as a vanity
        # number and "ext. 2" as an extension, and a typo (07700 9OO123) must not become a
        # different person's number.
        parsed = None if any(ch.isalpha() for ch in text) else phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        parsed = None
    # IS_POSSIBLE only: the library's is_possible_number also passes a number that could be
    # dialled only locally (12345 in the UK), which cannot be texted.
    if parsed is None or (phonenumbers.is_possible_number_with_reason(parsed)
                          != phonenumbers.ValidationResult.IS_POSSIBLE):
        # The message names no number on purpose: it may reach a log.
        raise BadNumber("sender is not an E.164 phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_uk_number(raw: str) -> str | None:
    """E.164 for a UK number in national form (``07700 900123``) or any international one
    (``+44 7700 900123``); None when it is not a phone number."""
    try:
        return normalise_number(raw, region=HOME_REGION)
    except BadNumber:
        return None


def pseudonym(number: str, key: str | None = None) -> str:
    """The conversation id for ``number``: stable for one key, meaningless without it."""
    key = key if key is not None else settings().pseudonym_key
    digest = hmac.new(key.encode("utf-8"), normalise_number(number).encode("utf-8"), hashlib.sha256)
    # 160 bits is far beyond any chance of two callers colliding, and keeps ids short in logs.
    return PREFIX + digest.hexdigest()[:40]


def _fernet(key: str | None = None) -> Fernet:
    key = key if key is not None else settings().pseudonym_key
    # A separate key derived from the pseudonym key (domain-separated), so the value used as
    # a hash key is never used directly as an encryption key.
    derived = hmac.new(key.encode("utf-8"), b"sms-contact-number/v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_number(number: str, key: str | None = None) -> str:
    return _fernet(key).encrypt(normalise_number(number).encode("utf-8")).decode("ascii")


def decrypt_number(token: str, key: str | None = None) -> str:
    try:
        return _fernet(key).decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        # Raised when PSEUDONYM_KEY changed since the contact was stored.
        raise ValueError("stored number cannot be decrypted with the current PSEUDONYM_KEY") from exc
