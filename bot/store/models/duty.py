"""Tables of the duty console: staff accounts and their sessions. Tonight's sanctuary beds
are the directory's (``bot/store/models/directory.py``) and the audit trail of rota edits is
the rota's (``bot/store/models/handoff.py``, beside its versions), both re-exported.

On the project's one ``Base`` so that Alembic sees them (``bot/store/registry.py`` imports
this module); created only by migrations (``0004_staff.py``, ``0007_rota_changes.py``, ``0015_staff_2fa.py``:
the second factor, recovery codes and the accounts' trail).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    false,
)
from sqlalchemy.orm import Mapped

from bot.store.models.directory import SanctuaryBeds  # noqa: F401  the one bed count, re-exported
from bot.store.models.handoff import RotaChange  # noqa: F401  the rota's trail, beside its versions
from bot.store.models import Base, utcnow

# A commissioner sees the anonymous report and nothing else (bot/duty/auth.py).
ROLES = ("peer_worker", "duty_manager", "sanctuary_volunteer", "admin", "commissioner")


class Staff(Base):
    """A person who signs in to the console. Never holds a phone number (the rota does)."""

    __tablename__ = "staff"

    id: Mapped[int] = Column(Integer, primary_key=True)
    username: Mapped[str] = Column(String(64), nullable=False, unique=True)
    # What a person is told when this member of staff joins ("Sam", "the duty manager").
    display_name: Mapped[str] = Column(String(64), nullable=False, default="")
    # argon2id encoded hash (parameters and salt included), never the password.
    password_hash: Mapped[str] = Column(String(255), nullable=False)
    role: Mapped[str] = Column(String(32), nullable=False)
    # Sanctuary volunteers belong to one house (a rota ``sanctuaries`` id); null otherwise.
    house: Mapped[Optional[str]] = Column(String(64), nullable=True)
    active: Mapped[bool] = Column(Boolean, nullable=False, default=True)
    created_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    password_changed_at: Mapped[dt.datetime] = Column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    # Set by a manager's reset (or an account made in the console): the password is a
    # temporary one, and signing in asks for a new one before anything else.
    must_change_password: Mapped[bool] = Column(Boolean, nullable=False, default=False,
                                                server_default=false())
    # The TOTP secret, Fernet-encrypted with a key derived from STAFF_2FA_KEY
    # (bot/duty/twofactor.py); null: not enrolled.
    totp_secret: Mapped[Optional[str]] = Column(String(255), nullable=True)
    totp_enrolled_at: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)
    # The latest 30-second step signed in with: a code of that step or before is refused.
    totp_last_step: Mapped[Optional[int]] = Column(Integer, nullable=True)


class StaffSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, so a
    copy of this table cannot be replayed as sessions."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = Column(String(64), primary_key=True)
    staff_id: Mapped[int] = Column(ForeignKey("staff.id"), nullable=False, index=True)
    # Synchronizer token every POST from this session must carry.
    csrf_token: Mapped[str] = Column(String(64), nullable=False)
    created_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    # Absolute expiry (DUTY_SESSION_HOURS after sign-in); checked on every request.
    expires_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, index=True)
    # "ok": signed in. Otherwise a sign-in half done, good only for its next step and for
    # a few minutes (bot/duty/signin.py): "password" (choose a new one), "totp" (give a
    # code), "enrol" (set up the second factor).
    stage: Mapped[str] = Column(String(16), nullable=False, default="ok", server_default="ok")
    # At "enrol": the secret being set up, encrypted as Staff.totp_secret is.
    pending_secret: Mapped[Optional[str]] = Column(String(255), nullable=True)


class StaffRecoveryCode(Base):
    """A one-time recovery code of an account's second factor: only its SHA-256 is kept."""

    __tablename__ = "staff_recovery_codes"

    id: Mapped[int] = Column(Integer, primary_key=True)
    staff_id: Mapped[int] = Column(ForeignKey("staff.id"), nullable=False, index=True)
    code_hash: Mapped[str] = Column(String(64), nullable=False)
    created_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    used_at: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)


class StaffAccountChange(Base):
    """One change to a console account (``bot/duty/account_admin.py``): who did what to whom,
    when. Never a password, a code or a secret. Append-only and hash-chained like the rota's
    trail; ``python -m bot.duty verify-accounts`` checks it."""

    __tablename__ = "staff_account_changes"

    id: Mapped[int] = Column(Integer, primary_key=True)
    seq: Mapped[int] = Column(Integer, nullable=False, unique=True)
    at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    actor: Mapped[str] = Column(String(80), nullable=False)  # "staff:ellen", "cli"
    # added, disabled, enabled, password_reset, password_changed, 2fa_enrolled, 2fa_reset,
    # recovery_code_used
    action: Mapped[str] = Column(String(32), nullable=False)
    username: Mapped[str] = Column(String(64), nullable=False)  # whose account
    data: Mapped[Dict[str, Any]] = Column(JSON, nullable=False, default=dict)
    prev_hash: Mapped[str] = Column(String(64), nullable=False)
    hash: Mapped[str] = Column(String(64), nullable=False)
