"""Staff accounts and console sessions: blocking functions the handlers run in the DB pool.

Passwords are hashed with argon2id (argon2-cffi's defaults, re-hashed on sign-in when those
defaults change). A session cookie carries 32 random bytes; the table keeps only their
SHA-256, so reading the table (a backup, a replica) does not let anyone sign in as staff.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Optional

from argon2 import PasswordHasher
from zxcvbn import zxcvbn
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.duty import account_trail
from bot.store.models.duty import ROLES, Staff, StaffSession
from bot.store.models import utcnow

# Module-level so tests can swap in cheap parameters; production keeps argon2-cffi's defaults
# (argon2id, 64 MiB, 3 passes), which are RFC 9106's second recommended option.
hasher = PasswordHasher()

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_CHARS = 12
# zxcvbn's score (0-4): 3 is "safely unguessable" (about 10^10 guesses), what a console that
# opens transcripts of people in crisis needs; 2 lets through "Summer2026!".
MIN_PASSWORD_SCORE = 3
MAX_DISPLAY_NAME_CHARS = 40
_dummy_hash: Optional[str] = None


class AccountError(ValueError):
    """A request to create or change an account that cannot be honoured (message says why)."""


@dataclass(frozen=True)
class Principal:
    """Who is signed in, as handlers see it (no password hash, no ORM object)."""

    staff_id: int
    username: str
    display_name: str
    role: str
    house: Optional[str]
    csrf_token: str
    expires_at: dt.datetime

    @property
    def actor(self) -> str:
        # The audit trail's convention for people ("staff:ellen"; "assistant", "system").
        return f"staff:{self.username}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes; everything stored here is UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def normalise_username(raw: str) -> str:
    return raw.strip().lower()


def password_problem(password: str, username: str, display_name: str = "") -> Optional[str]:
    """Why a password is too easy to guess (a sentence for the person choosing it), or None.

    zxcvbn (Dropbox's estimator) knows common passwords, names, words, dates, keyboard walks
    and repeats; given the username and display name it also refuses passwords made of them.
    """
    if len(password) < MIN_PASSWORD_CHARS:
        return f"password must be at least {MIN_PASSWORD_CHARS} characters"
    lowered = password.lower()
    for own in {username, display_name.strip()}:
        if own and own.lower() in lowered:
            return "password must not contain the username or display name"
    # zxcvbn's time grows with length; its strength is settled long before 100 characters.
    result = zxcvbn(password[:100], user_inputs=[username, display_name])
    if result["score"] >= MIN_PASSWORD_SCORE:
        return None
    feedback = result.get("feedback") or {}
    reason = feedback.get("warning") or next(iter(feedback.get("suggestions") or []), "")
    return "password is too easy to guess" + (f": {reason}" if reason else "") + (
        " Try three or four unrelated words."
    )


def validate_new_account(
    username: str, password: str, role: str, house: Optional[str], display_name: str = ""
) -> None:
    if not display_name.strip():
        # What people are told when this person joins a conversation ("Ellen has joined");
        # a username (ellen.smith2) is not a name to show the public.
        raise AccountError("a display name is needed (--display-name: a first name or a role)")
    if len(display_name.strip()) > MAX_DISPLAY_NAME_CHARS:
        raise AccountError(f"display name: at most {MAX_DISPLAY_NAME_CHARS} characters")
    if not USERNAME_RE.match(username):
        raise AccountError(
            "username: 2-64 characters, lower-case letters, digits, '.', '_' or '-'"
        )
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if role == "sanctuary_volunteer" and not house:
        raise AccountError("a sanctuary volunteer needs --house (the rota's sanctuary id)")
    if role != "sanctuary_volunteer" and house:
        raise AccountError("only sanctuary volunteers belong to a house")
    problem = password_problem(password, username, display_name)
    if problem:
        raise AccountError(problem)


def create_staff(
    engine: Engine,
    username: str,
    password: str,
    role: str,
    house: Optional[str] = None,
    display_name: str = "",
    replace_password: bool = False,
    actor: str = account_trail.CLI_ACTOR,
) -> int:
    """Create an account (or, with ``replace_password``, reset an existing one's password).

    ``display_name`` is required: it is what the person in the conversation is told. The
    change goes on the accounts' trail (``account_trail``) as ``actor``'s.
    """
    username = normalise_username(username)
    display_name = display_name.strip()
    validate_new_account(username, password, role, house, display_name)
    encoded = hasher.hash(password)
    with Session(engine, future=True) as session, session.begin():
        existing = session.execute(
            select(Staff).where(Staff.username == username)
        ).scalar_one_or_none()
        if existing is not None:
            if not replace_password:
                raise AccountError(f"an account named {username!r} already exists")
            existing.password_hash = encoded
            existing.role = role
            existing.display_name = display_name
            existing.house = house
            existing.active = True
            existing.password_changed_at = utcnow()
            existing.must_change_password = False
            # A password reset signs every browser of that account out.
            session.execute(delete(StaffSession).where(StaffSession.staff_id == existing.id))
            account_trail.append(session, actor, "password_reset", username, {"role": role})
            return existing.id
        staff = Staff(
            username=username,
            display_name=display_name,
            password_hash=encoded,
            role=role,
            house=house,
            active=True,
        )
        session.add(staff)
        session.flush()
        account_trail.append(session, actor, "added", username, {"role": role, "house": house})
        return staff.id


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


def authenticate(engine: Engine, username: str, password: str) -> Optional[int]:
    """The staff id when the password is right for an active account, else None.

    An unknown name costs the same argon2 verification as a known one, so response times do
    not reveal which usernames exist.
    """
    username = normalise_username(username)
    with Session(engine, future=True) as session, session.begin():
        staff = session.execute(
            select(Staff).where(Staff.username == username)
        ).scalar_one_or_none()
        encoded = staff.password_hash if staff is not None else _dummy()
        try:
            hasher.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if staff is None or not staff.active:
            return None
        if hasher.check_needs_rehash(encoded):
            staff.password_hash = hasher.hash(password)
        return staff.id


def open_session(engine: Engine, staff_id: int, hours: float, now: Optional[dt.datetime] = None,
                 stage: str = "ok", pending_secret: Optional[str] = None) -> str:
    """Start a session; returns the cookie token (the only time it exists in clear).

    ``stage`` other than "ok" is a sign-in half done (``bot/duty/signin.py``): no page of the
    console accepts it (``load_session``), only its next step."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    with Session(engine, future=True) as session, session.begin():
        # Expired rows are of no use to anyone; sweeping at sign-in keeps the table small.
        session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
        session.add(
            StaffSession(
                token_hash=token_hash(token),
                staff_id=staff_id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + dt.timedelta(hours=hours),
                stage=stage,
                pending_secret=pending_secret,
            )
        )
    return token


def load_session(engine: Engine, token: str, now: Optional[dt.datetime] = None) -> Optional[Principal]:
    """The principal for a cookie token, or None when unknown, expired or the account is off."""
    now = now or utcnow()
    with Session(engine, future=True) as session:
        row = session.execute(
            select(StaffSession, Staff)
            .join(Staff, Staff.id == StaffSession.staff_id)
            .where(StaffSession.token_hash == token_hash(token))
        ).one_or_none()
        if row is None:
            return None
        sess, staff = row
        expires = _aware(sess.expires_at)
        # Every request checks the account: a disabled account's sessions end at once, even
        # one whose row a crash left behind (account_admin also deletes them when disabling).
        if expires <= now or not staff.active or sess.stage != "ok":
            return None
        return Principal(
            staff_id=staff.id,
            username=staff.username,
            display_name=staff.display_name,
            role=staff.role,
            house=staff.house,
            csrf_token=sess.csrf_token,
            expires_at=expires,
        )


def close_session(engine: Engine, token: str) -> None:
    with Session(engine, future=True) as session, session.begin():
        session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))
