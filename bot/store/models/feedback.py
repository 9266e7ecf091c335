"""Tables of the feedback survey (docs/feedback.md, "Tables"; bot/feedback/ writes them).

Nothing here knows a phone number: a person is their pseudonymous sender id (for SMS the
keyed hash ``sms-...``, for web chat the browser's session id), the same id escalations use
as ``conversation_id``. What a person wrote in their own words is in ``feedback_comments``,
apart from the counted answers, so the report can read ``feedback_answers`` without ever
touching free text.

- ``feedback_people``: one row per person ever asked or opted out: when they were last asked
  (never more than once a week) and whether they must never be asked (STOP, or forgotten).
- ``feedback_surveys``: one row per offer: the set asked, where it has got to, how it ended.
- ``feedback_answers``: one row per question answered or skipped (``choice`` NULL: skipped).
- ``feedback_comments``: the free-text answer; read only in the console, with an audit entry.
- ``feedback_comment_views``: that audit: every reading of free text in the console, by whom
  and which comments, hash-chained like an escalation's trail (migration 0013).
- ``feedback_quiet``: the quiet-period watcher's claims, one row per conversation: which
  message's quiet spell was handled and how, so two duty services, or one restarted, offer
  once (migration 0013).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Optional

from sqlalchemy import (
    JSON, Boolean, Column, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, false,
)
from sqlalchemy.orm import Mapped

from bot.store.models import Base, utcnow


class FeedbackPerson(Base):
    __tablename__ = "feedback_people"

    person: Mapped[str] = Column(String(128), primary_key=True)
    last_asked_at: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)
    do_not_ask: Mapped[bool] = Column(Boolean, nullable=False, default=False, server_default=false())
    # opt_out (STOP, or the opt-out intent) | forget; NULL while they may be asked.
    do_not_ask_reason: Mapped[Optional[str]] = Column(String(16), nullable=True)
    do_not_ask_at: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)


class FeedbackSurvey(Base):
    __tablename__ = "feedback_surveys"

    id: Mapped[int] = Column(Integer, primary_key=True)
    conversation_id: Mapped[str] = Column(String(128), nullable=False, index=True)
    person: Mapped[str] = Column(String(128), nullable=False, index=True)
    channel: Mapped[str] = Column(String(32), nullable=False)  # sms | socketio | rest | ...
    # What ended the conversation: goodbye | resolved | quiet.
    trigger: Mapped[str] = Column(String(16), nullable=False)
    set_name: Mapped[str] = Column(String(48), nullable=False)  # default | carers | ...
    # bot/feedback/survey.py: offered | asking, then done | declined | lapsed | stopped |
    # gave_up | risk.
    status: Mapped[str] = Column(String(16), nullable=False, index=True)
    position: Mapped[int] = Column(Integer, nullable=False, default=0)
    retried: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    offered_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    ended_at: Mapped[Optional[dt.datetime]] = Column(DateTime(timezone=True), nullable=True)


class FeedbackAnswer(Base):
    __tablename__ = "feedback_answers"
    __table_args__ = (UniqueConstraint("survey_id", "question_id"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    survey_id: Mapped[int] = Column(ForeignKey("feedback_surveys.id"), nullable=False, index=True)
    conversation_id: Mapped[str] = Column(String(128), nullable=False, index=True)
    set_name: Mapped[str] = Column(String(48), nullable=False)
    question_id: Mapped[str] = Column(String(48), nullable=False)
    # One of the seven criteria (bot/feedback/questions.py CRITERIA).
    criterion: Mapped[str] = Column(String(16), nullable=False, index=True)
    # 1-based position of the answer among the question's choices; NULL: skipped.
    choice: Mapped[Optional[int]] = Column(Integer, nullable=True)
    # The choice's word as the questions file had it ("yes", "partly"); NULL: skipped.
    value: Mapped[Optional[str]] = Column(String(64), nullable=True)
    answered_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)


class FeedbackComment(Base):
    __tablename__ = "feedback_comments"

    id: Mapped[int] = Column(Integer, primary_key=True)
    survey_id: Mapped[int] = Column(ForeignKey("feedback_surveys.id"), nullable=False, index=True)
    conversation_id: Mapped[str] = Column(String(128), nullable=False, index=True)
    question_id: Mapped[str] = Column(String(48), nullable=False)
    text: Mapped[str] = Column(Text, nullable=False)
    at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class FeedbackCommentView(Base):
    """One reading of free text in the console (``bot/feedback/reading.py``): who, when and
    which comments (ids only, never their words), written and committed before the words are
    read. Append-only and hash-chained (each ``hash`` covers the previous one), like an
    escalation's trail, but one chain for all of it: a comment belongs to a conversation,
    which may have no escalation. ``python -m bot.duty verify-comment-views`` checks it."""

    __tablename__ = "feedback_comment_views"

    id: Mapped[int] = Column(Integer, primary_key=True)
    seq: Mapped[int] = Column(Integer, nullable=False, unique=True)
    at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    actor: Mapped[str] = Column(String(64), nullable=False)  # "staff:ellen"
    kind: Mapped[str] = Column(String(32), nullable=False)  # comments_viewed
    reason: Mapped[str] = Column(String(200), nullable=False, default="")
    # {"comment_ids": [...]}: which comments were shown.
    data: Mapped[Dict[str, Any]] = Column(JSON, nullable=False, default=dict)
    prev_hash: Mapped[str] = Column(String(64), nullable=False)
    hash: Mapped[str] = Column(String(64), nullable=False)


class FeedbackQuiet(Base):
    """The quiet-period watcher's claim on a conversation (``bot/feedback/quiet.py``).

    ``last_event_id``: the tracker row of the person's last message before the quiet spell
    this row handled. A duty service takes a spell by moving it forward in one conditional
    write (or by inserting the row), so of two services, or a restarted one, only one offers
    for that spell; the next spell (the person wrote again) is a later id. ``outcome``:
    ``sending`` (offered, the offer on its way), ``offered``, or why not (``goodbye``,
    ``emergency``, ``absent``, ``unsent``, ``lost``, or ``bot.feedback.survey.may_ask``'s
    word). ``unsent`` (the relay did not answer) is taken again, at most ``attempts`` 3."""

    __tablename__ = "feedback_quiet"

    conversation_id: Mapped[str] = Column(String(128), primary_key=True)
    last_event_id: Mapped[int] = Column(Integer, nullable=False)
    outcome: Mapped[str] = Column(String(24), nullable=False)
    attempts: Mapped[int] = Column(Integer, nullable=False, default=1)
    survey_id: Mapped[Optional[int]] = Column(Integer, nullable=True)
    claimed_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
