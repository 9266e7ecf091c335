"""The block list: senders a duty manager has blocked, for a stated reason, until a time.

Keyed by the pseudonymous conversation id (for SMS a keyed hash of the number, for web chat
the browser's session id), never a phone number. A row is a block while ``lifted_at`` is
null and ``expires_at`` is in the future; a lifted or expired row stays as the record of it.
Every block and unblock is also an entry on the trail of the escalation it was made from
(``bot/escalation/blocks.py``). Created only by migration ``0015_sender_blocks.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped

from bot.store.models import Base, utcnow


class SenderBlock(Base):
    __tablename__ = "sender_blocks"

    id: Mapped[int] = Column(Integer, primary_key=True)
    conversation_id: Mapped[str] = Column(String(128), nullable=False, index=True)
    channel: Mapped[str] = Column(String(32), nullable=False, default="unknown")
    # The escalation whose conversation page it was made on: its trail has the audit entries.
    escalation_id: Mapped[int] = Column(ForeignKey("escalations.id"), nullable=False, index=True)
    reason: Mapped[str] = Column(String(500), nullable=False)
    created_by: Mapped[str] = Column(String(64), nullable=False)  # "staff:ellen"
    created_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    expires_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, index=True)
    lifted_at: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)
    lifted_by: Mapped[Optional[str]] = Column(String(64), nullable=True)
