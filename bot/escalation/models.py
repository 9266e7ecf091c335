"""Tables of the handoff: alert jobs (the ladder's timers).

A job is "alert tier N of this escalation's ladder at ``due_at``". ``record_escalation``
writes the first one in the same transaction as the escalation, so an escalation can never
exist without its alert being owed; the dispatcher (``bot.escalation.dispatch``) claims due
jobs with a lease, and processing a job (writing the SMS outbox rows, the audit entry and the
next tier's job) is one transaction, so a job is done exactly once however many dispatchers
run or die.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped

from bot.store.models import Base, utcnow

JOB_PENDING = "pending"
JOB_CLAIMED = "claimed"
JOB_DONE = "done"
JOB_CANCELLED = "cancelled"  # the escalation was acknowledged (or raised) before it fell due

KIND_TIER = "tier"  # alert the on-call people of ladder step ``step``
KIND_EXHAUSTED = "exhausted"  # nobody acknowledged: tell the person, alert the duty manager
KIND_TELL_ACCEPTED = "tell_accepted"  # tell the person a sanctuary house can take them
KIND_TELL_DECLINED = "tell_declined"  # tell the person the house cannot, and staff are on it


class AlertJob(Base):
    __tablename__ = "escalation_alerts"
    # One job per escalation, level and step: a retried or raced insert cannot alert twice.
    __table_args__ = (UniqueConstraint("escalation_id", "level", "kind", "step"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    escalation_id: Mapped[int] = Column(ForeignKey("escalations.id"), nullable=False, index=True)
    level: Mapped[str] = Column(String(16), nullable=False)
    kind: Mapped[str] = Column(String(16), nullable=False, default=KIND_TIER)
    step: Mapped[int] = Column(Integer, nullable=False, default=0)
    status: Mapped[str] = Column(String(16), nullable=False, default=JOB_PENDING, index=True)
    due_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, index=True)
    lease_owner: Mapped[Optional[str]] = Column(String(64), nullable=True)
    lease_until: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = Column(Integer, nullable=False, default=0)
    created_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    done_at: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)
