"""The console's second factor: TOTP codes (RFC 6238), their secrets at rest, recovery codes.

TOTP is ``cryptography``'s (``hazmat.primitives.twofactor.totp``, already pinned and kept by
the PyCA): 6 digits, 30-second steps, SHA-1, the parameters every authenticator app uses. A
code is accepted for the step before and after the server's (a phone's clock a little out),
and only for a step later than the last one this account used, so a code seen over someone's
shoulder, or sent twice, is refused (``verify``).

Secrets are stored encrypted: Fernet with a key derived from ``STAFF_2FA_KEY`` (a setting,
never in the database), as ``bot/sms/pseudonym.py`` does for phone numbers, so a copy of the
database (a backup, a replica) cannot mint codes. Neither a secret nor a code is ever logged.

Recovery codes: ten per enrolment, 60 random bits each (``xxxx-xxxx-xxxx``), shown once and
stored as SHA-256 digests (their randomness, not a slow hash, is what makes them unguessable);
each is used at most once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Optional
from urllib.parse import quote, urlencode

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

DIGITS = 6
STEP_S = 30
# Steps either side of the server's that are accepted (a phone's clock 30 s out still works).
DRIFT_STEPS = 1
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation
RECOVERY_CODES = 10
ISSUER = "Crisis line duty console"
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off a sheet of paper


def new_secret() -> str:
    """A fresh secret, base32 without padding (what authenticator apps are given)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def _key_bytes(secret: str) -> bytes:
    padded = secret.upper() + "=" * (-len(secret) % 8)
    return base64.b32decode(padded)


def _totp(secret: str) -> TOTP:
    # enforce_key_length off: a 160-bit key is fine; the check only wants at least 128 bits.
    return TOTP(_key_bytes(secret), DIGITS, SHA1(), STEP_S, enforce_key_length=False)


def code_at(secret: str, at: float) -> str:
    """The code an authenticator app shows at time ``at`` (tests and the CLI use it too)."""
    return _totp(secret).generate(int(at)).decode("ascii")


def step_of(at: float) -> int:
    return int(at) // STEP_S


def clean_code(raw: str) -> str:
    """What a person typed, without the spaces and dashes apps and sheets show."""
    return "".join(ch for ch in (raw or "")[:64] if ch not in " -\t").lower()


def verify(secret: str, code: str, last_step: Optional[int], at: Optional[float] = None) -> Optional[int]:
    """The step ``code`` belongs to when it is right and not yet used, else None.

    ``last_step``: the latest step this account has signed in with (None: never). A code of
    that step or an earlier one is refused even when right: it has been used (replay).
    """
    code = clean_code(code)
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = time.time() if at is None else at
    totp = _totp(secret)
    matched = None
    for step in range(step_of(now) - DRIFT_STEPS, step_of(now) + DRIFT_STEPS + 1):
        expected = totp.generate(step * STEP_S)
        # Compare every candidate, so the time taken says nothing about which one matched.
        if hmac.compare_digest(expected, code.encode("ascii")):
            matched = step
    if matched is None or (last_step is not None and matched <= last_step):
        return None
    return matched


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (typed or pasted; RFC 6238 defaults)."""
    label = quote(f"{ISSUER}:{username}", safe="")
    query = urlencode({"secret": secret, "issuer": ISSUER, "algorithm": "SHA1",
                       "digits": DIGITS, "period": STEP_S}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"


def spaced(secret: str) -> str:
    """The secret in groups of four, easier to type into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


# --- secrets at rest ---------------------------------------------------------------------------


def _fernet(key: str) -> Fernet:
    # Domain-separated from the setting's value, as bot/sms/pseudonym.py derives its key.
    derived = hmac.new(key.encode("utf-8"), b"staff-totp-secret/v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(secret: str, key: str) -> str:
    return _fernet(key).encrypt(secret.encode("ascii")).decode("ascii")


def unseal(token: str, key: str) -> Optional[str]:
    """The secret, or None when it cannot be decrypted (STAFF_2FA_KEY changed since)."""
    try:
        return _fernet(key).decrypt(token.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError):
        return None


# --- recovery codes ----------------------------------------------------------------------------


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    def one() -> str:
        chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
        return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"

    return [one() for _ in range(count)]


def recovery_hash(code: str) -> str:
    return hashlib.sha256(clean_code(code).encode("utf-8", "surrogateescape")).hexdigest()


def looks_like_recovery(code: str) -> bool:
    cleaned = clean_code(code)
    return len(cleaned) == 12 and all(ch in _CODE_ALPHABET for ch in cleaned)
