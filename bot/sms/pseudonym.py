"""Pseudonymous conversation ids, and the phone number kept encrypted at rest.

The Rasa sender id is a keyed hash (HMAC-SHA256 with ``PSEUDONYM_KEY``) of the E.164 number,
so the tracker store, escalations and logs never hold a number, and without the key a leaked
database cannot be turned back into numbers by hashing every UK mobile.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from cryptography.fernet import Fernet, InvalidToken

from bot.settings import settings

PREFIX = "sms-"
# E.164: a plus, a non-zero digit, at most 15 digits in all.
_E164 = re.compile(r"^\+[1-9][0-9]{5,14}$")


class BadNumber(ValueError):
    """The sender is not an E.164 phone number (the message cannot be answered by SMS)."""


def normalise_number(raw: str) -> str:
    """The number in E.164 form; spaces and dashes some gateways add are dropped."""
    number = re.sub(r"[\s\-()]", "", raw or "")
    if not _E164.match(number):
        # The message names no number on purpose: it may reach a log.
        raise BadNumber("sender is not an E.164 phone number")
    return number


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
