"""SQLAlchemy models for the project's own tables (Rasa's tracker store keeps its own).

Here: the declarative ``Base`` with its naming convention, ``utcnow``, and the escalations with
their audit trail, which every area refers to. The other tables are one module per area beside
this one (``sms``, ``directory``, ``handoff``, ``duty``), all in the store so that no layer
above it has to be imported to know the schema (``bot/store/registry.py``).

Every schema change goes through an Alembic migration in ``bot/store/migrations``; nothing
creates tables at run time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, declarative_base, relationship
from sqlalchemy import Column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Base = declarative_base(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Escalation(Base):
    """One request for a human: created by the assistant when it sees risk or is asked."""

    __tablename__ = "escalations"

    id: Mapped[int] = Column(Integer, primary_key=True)
    # Short reference staff quote (``ACK E7K2Q``); never derived from the person's number.
    ref: Mapped[str] = Column(String(12), nullable=False, unique=True)
    # Pseudonymous conversation id (the Rasa sender id; for SMS a keyed hash of the number).
    conversation_id: Mapped[str] = Column(String(128), nullable=False, index=True)
    channel: Mapped[str] = Column(String(32), nullable=False, default="unknown")
    level: Mapped[str] = Column(String(16), nullable=False)
    status: Mapped[str] = Column(String(16), nullable=False, default="open")
    signals: Mapped[List[str]] = Column(JSON, nullable=False, default=list)
    # "Tell it once": risk, what was suggested, places and needs, consent.
    summary: Mapped[Dict[str, Any]] = Column(JSON, nullable=False, default=dict)
    created_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    acknowledged_at: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)
    resolved_at: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)

    events: Mapped[List["EscalationEvent"]] = relationship(
        "EscalationEvent", order_by="EscalationEvent.seq", back_populates="escalation"
    )


class EscalationEvent(Base):
    """Append-only audit trail: each entry's hash covers the previous entry's hash."""

    __tablename__ = "escalation_events"
    __table_args__ = (UniqueConstraint("escalation_id", "seq"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    escalation_id: Mapped[int] = Column(ForeignKey("escalations.id"), nullable=False, index=True)
    seq: Mapped[int] = Column(Integer, nullable=False)
    at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    kind: Mapped[str] = Column(String(32), nullable=False)
    actor: Mapped[str] = Column(String(64), nullable=False)
    reason: Mapped[str] = Column(Text, nullable=False, default="")
    data: Mapped[Dict[str, Any]] = Column(JSON, nullable=False, default=dict)
    prev_hash: Mapped[str] = Column(String(64), nullable=False)
    hash: Mapped[str] = Column(String(64), nullable=False)

    escalation: Mapped[Escalation] = relationship("Escalation", back_populates="events")
