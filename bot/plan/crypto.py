"""A plan's words, encrypted at rest with a key kept out of the database.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``, as the SMS contacts' numbers)
with a key derived from ``PLAN_KEY`` (domain-separated, so the setting's value is never used
directly as a key). A database copied without the key holds no plan anyone can read; a row
that does not decrypt (the key changed) is refused, never shown garbled.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Dict, Optional

from cryptography.fernet import Fernet, InvalidToken

from bot.settings import settings


class PlanUnreadable(ValueError):
    """The stored plan cannot be decrypted with the current PLAN_KEY."""


def _fernet(key: Optional[str] = None) -> Fernet:
    key = key if key is not None else settings().plan_key
    derived = hmac.new(key.encode("utf-8"), b"crisis-plan/v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(sections: Dict[str, str], key: Optional[str] = None) -> str:
    """The sections (section id -> the person's words) as ciphertext."""
    plain = json.dumps(sections, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return _fernet(key).encrypt(plain).decode("ascii")


def open_sealed(token: str, key: Optional[str] = None) -> Dict[str, str]:
    try:
        plain = _fernet(key).decrypt(token.encode("ascii"))
    except InvalidToken as exc:
        raise PlanUnreadable("the stored plan cannot be decrypted with the current PLAN_KEY") from exc
    data = json.loads(plain.decode("utf-8"))
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
