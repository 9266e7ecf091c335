"""Tables of the person's own crisis plan (docs/plan.md; ``bot/plan/`` writes them).

A plan belongs to a pseudonymous id (``conversation_id``: the keyed hash ``sms-...`` of a
number, the same for every SMS conversation of it; the browser's session id on web chat), the
id escalations use. Its words are never stored in clear: ``ciphertext`` is Fernet with a key
derived from ``PLAN_KEY``, which is kept out of the database (``bot/plan/crypto.py``).

- ``crisis_plans``: one row per plan: the encrypted sections, and the person's answer to
  "may the person who joins see your plan?" (``share``: NULL not asked, true, false) with when.
- ``plan_sessions``: one row per conversation building or editing its plan: which step is
  out (no words here; each answer goes straight into the plan).
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Boolean, Column, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped

from bot.store.models import Base, utcnow


class CrisisPlan(Base):
    __tablename__ = "crisis_plans"

    conversation_id: Mapped[str] = Column(String(128), primary_key=True)
    ciphertext: Mapped[str] = Column(Text, nullable=False)
    share: Mapped[Optional[bool]] = Column(Boolean, nullable=True)
    share_at: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class PlanSession(Base):
    __tablename__ = "plan_sessions"

    conversation_id: Mapped[str] = Column(String(128), primary_key=True)
    # bot/plan/flow.py: offered | building | consent
    stage: Mapped[str] = Column(String(16), nullable=False)
    position: Mapped[int] = Column(Integer, nullable=False, default=0)
    editing: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    channel: Mapped[str] = Column(String(32), nullable=False)
    updated_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False,
                                             default=utcnow, index=True)
