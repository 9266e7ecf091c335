"""Tables of the handoff: alert jobs (the ladder's timers), and the rota's versions.

A job is "alert tier N of this escalation's ladder at ``due_at``". ``record_escalation``
writes the first one in the same transaction as the escalation, so an escalation can never
exist without its alert being owed; the dispatcher (``bot.escalation.dispatch``) claims due
jobs with a lease, and processing a job (writing the SMS outbox rows, the audit entry and the
next tier's job) is one transaction, so a job is done exactly once however many dispatchers
run or die.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Optional

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
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
KIND_REALERT = "realert"  # still nobody after the ladder: the duty managers again, and again

# Why a staff SMS was sent (``AlertSms.purpose``).
PURPOSE_TIER = "tier"  # a ladder tier's alert
PURPOSE_EXHAUSTED = "exhausted"  # NOBODY ACKNOWLEDGED to the duty managers
PURPOSE_REALERT = "realert"  # the repeats after that
PURPOSE_HELD_RISK = "held_risk"  # risk in a conversation a human holds
PURPOSE_REFERRAL = "referral"  # a sanctuary house's volunteers


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


class AlertSms(Base):
    """Which escalation (and ladder job) each staff SMS in the outbox was sent for.

    Written in the same transaction as the outbox row, so that when Twilio refuses the number
    for good the sender can find the escalation, put the refusal on its trail and, for a
    ladder alert, bring the next tier forward (``dispatch.alert_undeliverable``). Holds no
    number and no text: the outbox row has the text, ``sms_contacts`` the number.
    """

    __tablename__ = "escalation_alert_sms"

    outbox_id: Mapped[int] = Column(ForeignKey("sms_outbox.id"), primary_key=True, autoincrement=False)
    escalation_id: Mapped[int] = Column(ForeignKey("escalations.id"), nullable=False, index=True)
    job_id: Mapped[Optional[int]] = Column(Integer, nullable=True)
    purpose: Mapped[str] = Column(String(16), nullable=False)
    staff_id: Mapped[str] = Column(String(64), nullable=False)
    created_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    # Set once when the SMS turned out undeliverable, so that the refusal is handled once.
    failed_at: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)


class HeldWatch(Base):
    """The risk watcher's cursor for one escalation: the last of the conversation's tracker
    events it has looked at (``events.id`` in Rasa's tracker store).

    One row per escalation, locked (``FOR UPDATE``) while a watcher reads past it and writes
    any alert, in one transaction: two duty services never alert twice for one message, and a
    restart carries on from the row, missing nothing.
    """

    __tablename__ = "escalation_watch"

    escalation_id: Mapped[int] = Column(ForeignKey("escalations.id"), primary_key=True,
                                        autoincrement=False)
    last_event_id: Mapped[int] = Column(Integer, nullable=False, default=0)
    updated_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class RiskNetCursor(Base):
    """The risk safety net's cursor over Rasa's whole ``events`` table (one row, ``name``
    ``"events"``): every event up to ``last_event_id`` has been looked at.

    Locked (``FOR UPDATE SKIP LOCKED``) while a duty service reads past it and records any
    escalation, in one transaction: a second duty service skips the pass instead of reading
    the same rows, and a restart carries on from the row. ``gap_at``/``gap_since``: the first
    missing id after the cursor and when it was first seen missing; ids can commit out of
    order across conversations, so the net waits a little for a gap to fill before moving
    past it (see ``bot/escalation/safety_net.py``).
    """

    __tablename__ = "risk_net_cursor"

    name: Mapped[str] = Column(String(32), primary_key=True)
    last_event_id: Mapped[int] = Column(Integer, nullable=False, default=0)
    gap_at: Mapped[Optional[int]] = Column(Integer, nullable=True)
    gap_since: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class RotaVersion(Base):
    """One version of the whole rota; the current rota is the highest ``version``.

    Append-only: an edit in the console, an import (``python -m bot.escalation rota import``)
    or the first import of the example at setup writes a new row, and nothing updates one.
    ``version`` is unique, so of two editors who both read version 7 only one can write 8;
    the other is told the rota changed under them (``bot/escalation/rota_store.py``).

    ``text`` is the YAML as staff wrote it, comments included (what ``rota export`` gives
    back and what the console edits); ``document`` is the same rota validated, as JSON, so
    that the database can be read without a YAML parser. Staff phone numbers are in both,
    as they were in the file: never log a row.
    """

    __tablename__ = "rota_versions"

    id: Mapped[int] = Column(Integer, primary_key=True)
    version: Mapped[int] = Column(Integer, nullable=False, unique=True)
    document: Mapped[Dict[str, Any]] = Column(JSON, nullable=False)
    text: Mapped[str] = Column(Text, nullable=False)
    # SHA-256 of ``text``: what console forms carry and the rota trail's file_before/after name.
    sha256: Mapped[str] = Column(String(64), nullable=False)
    at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    actor: Mapped[str] = Column(String(64), nullable=False)  # "staff:ellen", "system:setup"
    summary: Mapped[str] = Column(Text, nullable=False)  # what changed and why


class RotaChange(Base):
    """One change of the rota: a shift edited in the console (``bot/duty/rota_edit.py``) or the
    whole rota imported over the one in use (``rota_store.import_text``).

    Append-only and hash-chained (each ``hash`` covers the previous one), like an
    escalation's trail but one chain for the whole rota, since a rota edit belongs to no
    escalation. Never holds a phone number: shifts name staff by id.
    """

    __tablename__ = "rota_changes"

    id: Mapped[int] = Column(Integer, primary_key=True)
    seq: Mapped[int] = Column(Integer, nullable=False, unique=True)
    at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    actor: Mapped[str] = Column(String(64), nullable=False)  # "staff:ellen"
    action: Mapped[str] = Column(String(16), nullable=False)  # add, change, remove, import
    team: Mapped[str] = Column(String(64), nullable=False)  # tier or sanctuary house id ("" for an import)
    summary: Mapped[str] = Column(Text, nullable=False)
    # {"team", "index", "before": shift or null, "after": shift or null}
    data: Mapped[Dict[str, Any]] = Column(JSON, nullable=False, default=dict)
    # SHA-256 of the rota's text before and after (``RotaVersion.sha256``), to match an
    # entry to a version or to an exported copy.
    file_before: Mapped[str] = Column(String(64), nullable=False)
    file_after: Mapped[str] = Column(String(64), nullable=False)
    prev_hash: Mapped[str] = Column(String(64), nullable=False)
    hash: Mapped[str] = Column(String(64), nullable=False)
