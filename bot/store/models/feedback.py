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
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, false
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
