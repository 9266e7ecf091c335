"""Tables of the SMS channel: contacts, inbox, outbox and opt-outs.

The phone number lives only in ``sms_contacts`` (encrypted); every other table, the tracker
store and the logs know a person by the pseudonym (a keyed hash of the number).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Column, DateTime, Integer, String, Text, false
from sqlalchemy.orm import Mapped

from bot.store.models import Base, utcnow

# Inbox statuses. A row moves received -> processing -> done | failsafe | failed, or is
# written as ``keyword`` when it was an opt-out/opt-in handled at the webhook.
INBOX_RECEIVED = "received"
INBOX_PROCESSING = "processing"
INBOX_DONE = "done"
INBOX_FAILSAFE = "failsafe"  # answered with the fail-safe reply (turn raised or was too slow)
INBOX_FAILED = "failed"  # gave up after repeated crashes; staff were told
INBOX_KEYWORD = "keyword"

# Outbox statuses. ``sent`` means Twilio accepted the message (it has a Twilio SID);
# ``delivery_status`` then follows Twilio's status callbacks.
OUT_PENDING = "pending"
OUT_SENDING = "sending"
OUT_SENT = "sent"
OUT_FAILED = "failed"  # permanent error or attempts exhausted; error_code says which
OUT_NOT_SENT_LOCAL = "not_sent_local"  # local mode: recorded, NOT sent to anyone
OUT_SUPPRESSED = "suppressed_opted_out"  # the person texted STOP; Twilio would refuse it


class SmsContact(Base):
    """The only place a phone number is kept, so that replies can be addressed."""

    __tablename__ = "sms_contacts"

    pseudonym: Mapped[str] = Column(String(64), primary_key=True)
    # Fernet token of the E.164 number (key derived from PSEUDONYM_KEY); never logged.
    number_enc: Mapped[str] = Column(Text, nullable=False)
    opted_out: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    opted_out_at: Mapped[dt.datetime | None] = Column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class SmsInbox(Base):
    """Every inbound message, written before Twilio gets its answer (the durable queue)."""

    __tablename__ = "sms_inbox"

    id: Mapped[int] = Column(Integer, primary_key=True)
    # Twilio retries a webhook it thinks failed; the unique SID makes a repeat a no-op.
    message_sid: Mapped[str] = Column(String(64), nullable=False, unique=True)
    pseudonym: Mapped[str] = Column(String(64), nullable=False, index=True)
    # Cleared when the row is finished: the tracker store keeps the conversation, the queue
    # need not keep a second copy of what a person in crisis wrote.
    body: Mapped[str | None] = Column(Text, nullable=True)
    num_media: Mapped[int] = Column(Integer, nullable=False, default=0)
    kind: Mapped[str] = Column(String(16), nullable=False, default="message")
    # Risk seen at receipt (``gate.shows_risk``: the risk-word check, then the NLU's own
    # detector once the model is loaded): the row is claimed first and skips the rate limit,
    # and the opt-out handling knows the conversation showed risk.
    risk_hint: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    status: Mapped[str] = Column(String(16), nullable=False, default=INBOX_RECEIVED, index=True)
    attempts: Mapped[int] = Column(Integer, nullable=False, default=0)
    lease_owner: Mapped[str | None] = Column(String(64), nullable=True)
    lease_until: Mapped[dt.datetime | None] = Column(DateTime(timezone=True), nullable=True)
    received_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    started_at: Mapped[dt.datetime | None] = Column(DateTime(timezone=True), nullable=True)
    done_at: Mapped[dt.datetime | None] = Column(DateTime(timezone=True), nullable=True)
    # A short machine reason (exception class, "timeout"); never message text.
    error: Mapped[str | None] = Column(String(200), nullable=True)


class SmsOutbox(Base):
    """Every outbound SMS part, written before it is posted to Twilio."""

    __tablename__ = "sms_outbox"

    id: Mapped[int] = Column(Integer, primary_key=True)
    pseudonym: Mapped[str] = Column(String(64), nullable=False, index=True)
    inbox_id: Mapped[int | None] = Column(Integer, nullable=True, index=True)
    # reply (from the bot), failsafe, help, staff
    kind: Mapped[str] = Column(String(16), nullable=False, default="reply")
    body: Mapped[str] = Column(Text, nullable=False)
    part: Mapped[int] = Column(Integer, nullable=False, default=1)
    parts: Mapped[int] = Column(Integer, nullable=False, default=1)
    encoding: Mapped[str] = Column(String(8), nullable=False, default="GSM-7")
    segments: Mapped[int] = Column(Integer, nullable=False, default=1)
    status: Mapped[str] = Column(String(24), nullable=False, default=OUT_PENDING, index=True)
    attempts: Mapped[int] = Column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    lease_owner: Mapped[str | None] = Column(String(64), nullable=True)
    lease_until: Mapped[dt.datetime | None] = Column(DateTime(timezone=True), nullable=True)
    # When a sender first claimed the row to post it: any copy Twilio created is no older.
    first_attempt_at: Mapped[dt.datetime | None] = Column(DateTime(timezone=True), nullable=True)
    # An earlier post may have reached Twilio without the row being marked (its process died
    # with the row ``sending``, or the request timed out or broke after it was sent). The next
    # post then first looks for it among Twilio's recent messages. It stays set until the row
    # is finished: a request that timed out can still be accepted after a later look found
    # nothing.
    in_doubt: Mapped[bool] = Column(Boolean, nullable=False, default=False, server_default=false())
    twilio_sid: Mapped[str | None] = Column(String(64), nullable=True, unique=True)
    delivery_status: Mapped[str | None] = Column(String(24), nullable=True)
    error_code: Mapped[str | None] = Column(String(32), nullable=True)
    created_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = Column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class SmsOptOut(Base):
    """Append-only record of STOP / START keywords, for staff and for the audit."""

    __tablename__ = "sms_opt_outs"

    id: Mapped[int] = Column(Integer, primary_key=True)
    pseudonym: Mapped[str] = Column(String(64), nullable=False, index=True)
    action: Mapped[str] = Column(String(8), nullable=False)  # opt_out | opt_in
    keyword: Mapped[str] = Column(String(16), nullable=False)
    message_sid: Mapped[str] = Column(String(64), nullable=False)
    at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    # True when the conversation had a live escalation and staff were told at once.
    staff_flagged: Mapped[bool] = Column(Boolean, nullable=False, default=False)
