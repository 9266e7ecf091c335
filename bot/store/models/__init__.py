"""SQLAlchemy models for the project's own tables (Rasa's tracker store keeps its own).

Here: the declarative ``Base`` with its naming convention, ``utcnow``, and the escalations with
their audit trail and its signed checkpoints, which every area refers to. The other tables are
one module per area beside this one (``sms``, ``directory``, ``handoff``, ``duty``), all in the
store so that no layer above it has to be imported to know the schema
(``bot/store/registry.py``).

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


# How an audit entry's hash is made (``EscalationEvent.chain_version``; docs/audit.md):
# 1: SHA-256 of the entry and the previous hash (entries written before migration 0015, kept
# as they were); 2: HMAC-SHA256 of the same with ``AUDIT_KEY``, which is not in the database.
CHAIN_SHA256 = 1
CHAIN_HMAC = 2


class EscalationEvent(Base):
    """Append-only audit trail: each entry's hash covers the previous entry's hash.

    On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE of this table (migration 0015).
    """

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
    # No server default: a writer that does not know about keyed hashes (an old process still
    # running after the upgrade) is refused rather than writing an unkeyed entry.
    chain_version: Mapped[int] = Column(Integer, nullable=False, default=CHAIN_HMAC)

    escalation: Mapped[Escalation] = relationship("Escalation", back_populates="events")


class AuditCheckpoint(Base):
    """A signed anchor of the whole audit trail (``bot/escalation/checkpoints.py``).

    Written by the duty service at start and hourly, and by every export. ``signature`` is an
    HMAC with ``AUDIT_KEY`` over every other column but ``id``, and over the previous
    checkpoint's signature, so the checkpoints form a chain of their own; ``prev_signature``
    is unique, so two writers cannot fork it. Append-only like the trail (a trigger on
    PostgreSQL).
    """

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = Column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    # start, hourly, export, manual; who (``system:duty``, ``cli:<user>``, ``staff:<name>``).
    reason: Mapped[str] = Column(String(16), nullable=False)
    actor: Mapped[str] = Column(String(64), nullable=False)
    # The trail's last entry (highest id; 0 and the genesis hash when it is empty) and how many
    # entries have an id up to it.
    head_id: Mapped[int] = Column(Integer, nullable=False)
    head_hash: Mapped[str] = Column(String(64), nullable=False)
    entries: Mapped[int] = Column(Integer, nullable=False)
    # The entries written before keyed hashes (chain version 1): the highest id, how many, and
    # a SHA-256 over their ids and hashes in id order; the same in every checkpoint.
    legacy_upto: Mapped[int] = Column(Integer, nullable=False)
    legacy_entries: Mapped[int] = Column(Integer, nullable=False)
    legacy_digest: Mapped[str] = Column(String(64), nullable=False)
    # Which key signed it (an HMAC of a constant with the key, not the key).
    key_id: Mapped[str] = Column(String(16), nullable=False)
    prev_signature: Mapped[str] = Column(String(64), nullable=False, unique=True)
    signature: Mapped[str] = Column(String(64), nullable=False)
