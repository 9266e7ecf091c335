"""Tables of the duty console: staff accounts and their sessions. Tonight's sanctuary beds
are the directory's (``bot/store/models/directory.py``) and the audit trail of rota edits is
the rota's (``bot/store/models/handoff.py``, beside its versions), both re-exported.

On the project's one ``Base`` so that Alembic sees them (``bot/store/registry.py`` imports
this module); created only by migrations (``0004_staff.py``, ``0007_rota_changes.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
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
