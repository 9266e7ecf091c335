"""The survey's database side: who may be asked, the survey's state, answers and free text.

Every function takes an optional ``session`` (the caller's transaction) and otherwise opens its
own (``bot.store.db.transaction``), as the escalation engine does. Nothing here logs what a
person wrote; a log line names the survey's id and a fixed reason word only.

A person (``person``) is their pseudonymous sender id: the same for every SMS conversation of
one number (a keyed hash), and the browser's session id on web chat (a new one after "end
chat"), so the weekly limit is per number on SMS and per browser session on web chat.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Callable, FrozenSet, List, Optional, Tuple, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.feedback import survey
from bot.feedback.questions import Questions
from bot.store.db import transaction
from bot.store.models import Escalation, utcnow
from bot.store.models.feedback import FeedbackAnswer, FeedbackComment, FeedbackPerson, FeedbackSurvey
from bot.store.models.blocks import SenderBlock
from bot.store.models.sms import SmsContact

logger = logging.getLogger(__name__)

T = TypeVar("T")

# An offer or a question nobody answered within this long is over: a "yes" next week is a
# new conversation, not an answer to last week's survey.
SURVEY_TTL = dt.timedelta(hours=12)
RESOLVED = "resolved"  # the one escalation status that is not live
TRIGGERS = ("goodbye", "resolved", "quiet")
DO_NOT_ASK_REASONS = ("opt_out", "forget")


def _in_txn(fn: Callable[..., T], session: Optional[Session], *args, **kwargs) -> T:
    if session is not None:
        return fn(session, *args, **kwargs)
    with transaction() as own:
        return fn(own, *args, **kwargs)


def _aware(at: Optional[dt.datetime]) -> Optional[dt.datetime]:
    if at is not None and at.tzinfo is None:  # SQLite gives naive UTC
        return at.replace(tzinfo=dt.timezone.utc)
    return at


def _standing(session: Session, conversation_id: str, person: str) -> survey.Standing:
    row = session.get(FeedbackPerson, person)
    contact = session.get(SmsContact, person)
    live = session.execute(
        select(Escalation.level).where(Escalation.conversation_id == conversation_id,
                                       Escalation.status != RESOLVED)
    ).scalars().all()
    return survey.Standing(
        last_asked_at=_aware(row.last_asked_at) if row else None,
        do_not_ask=bool(row and row.do_not_ask) or bool(contact and contact.opted_out),
        live_escalation=bool(live),
        imminent_unresolved="imminent" in live,
        survey_live=_live(session, conversation_id) is not None,
        blocked=session.execute(
            select(SenderBlock.id).where(SenderBlock.conversation_id.in_({conversation_id, person}),
                                         SenderBlock.lifted_at.is_(None),
                                         SenderBlock.expires_at > utcnow()).limit(1)
        ).first() is not None,
    )


def standing(conversation_id: str, person: Optional[str] = None,
             session: Optional[Session] = None) -> survey.Standing:
    return _in_txn(_standing, session, conversation_id, person or conversation_id)


@dataclass(frozen=True)
class Offered:
    survey_id: Optional[int]  # None: not asked
    reason: str  # "ok", or why not (survey.may_ask's words)
    prompt: Optional[survey.Prompt] = None
    # When the person was last asked before this offer: ``withdraw`` puts it back.
    asked_before: Optional[dt.datetime] = None


def _offer(session: Session, conversation_id: str, person: str, channel: str, trigger: str,
           audience: Optional[str], questions: Questions, now: dt.datetime) -> Offered:
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    # The person's row first, locked on PostgreSQL, so two processes ending the same
    # conversation at once (a goodbye and a resolution) do not both ask.
    row = session.execute(
        select(FeedbackPerson).where(FeedbackPerson.person == person).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        row = FeedbackPerson(person=person, do_not_ask=False)
        session.add(row)
        session.flush()
    allowed, reason = survey.may_ask(_standing(session, conversation_id, person), now)
    if not allowed:
        return Offered(None, reason)
    state = survey.first(questions, audience)
    asked_before = _aware(row.last_asked_at)
    row.last_asked_at = now
    record = FeedbackSurvey(conversation_id=conversation_id, person=person, channel=channel,
                            trigger=trigger, set_name=state.set_name, status=state.status,
                            position=0, retried=False, offered_at=now, updated_at=now)
    session.add(record)
    session.flush()
    logger.info("feedback: survey %s offered (%s, set %s)", record.id, trigger, state.set_name)
    return Offered(record.id, "ok", survey.offer(questions), asked_before)


def offer(conversation_id: str, channel: str, trigger: str, questions: Questions,
          audience: Optional[str] = None, person: Optional[str] = None,
          now: Optional[dt.datetime] = None, session: Optional[Session] = None) -> Offered:
    """Start a survey for a conversation that has ended, if the person may be asked; the
    returned prompt is the offer to send (the caller sends it)."""
    offered = _in_txn(_offer, session, conversation_id, person or conversation_id, channel,
                      trigger, audience, questions, now or utcnow())
    if offered.survey_id is not None:
        from bot.feedback import live

        live.view().note(conversation_id, True)
    return offered


def _withdraw(session: Session, survey_id: int, asked_before: Optional[dt.datetime]) -> bool:
    record = session.get(FeedbackSurvey, survey_id, with_for_update=True)
    if record is None or record.status != survey.OFFERED:
        return False  # answered already (it did reach them), or gone
    person = session.get(FeedbackPerson, record.person, with_for_update=True)
    if person is not None and _aware(person.last_asked_at) == _aware(record.offered_at):
        person.last_asked_at = asked_before
    session.delete(record)
    logger.info("feedback: survey %s withdrawn (the offer was not delivered)", survey_id)
    return True


def withdraw(survey_id: int, asked_before: Optional[dt.datetime] = None,
             session: Optional[Session] = None) -> bool:
    """Undo an offer that never reached the person (the relay refused it or could not be
    reached): the survey row goes, so the report does not count an offer nobody saw and a
    later "yes" is not taken for an answer to it, and the person's last-asked date is put
    back (``asked_before``), so the week's one offer is not spent on nothing. False when
    the survey has already been answered (then it did reach them) or is gone."""
    return _in_txn(_withdraw, session, survey_id, asked_before)


def _lapse(session: Session, survey_id: int, now: dt.datetime) -> bool:
    record = session.get(FeedbackSurvey, survey_id, with_for_update=True)
    if record is None or record.status != survey.OFFERED:
        return False
    _end(record, survey.LAPSED, now)
    logger.info("feedback: survey %s lapsed (its offer may not have been sent)", survey_id)
    return True


def lapse(survey_id: int, now: Optional[dt.datetime] = None,
          session: Optional[Session] = None) -> bool:
    """End an offer whose sending was cut off (the duty service died mid-send): whether it
    reached the person is unknown, so it is neither sent again nor left live (a later "yes"
    would be taken for an answer to an offer they may never have seen)."""
    return _in_txn(_lapse, session, survey_id, now or utcnow())


def escalation_conversation(ref: str, session: Optional[Session] = None) -> Optional[Tuple[str, str]]:
    """(conversation id, channel) of the escalation ``ref``, for the offer after staff
    resolved it; None when there is no such escalation."""
    def read(s: Session) -> Optional[Tuple[str, str]]:
        row = s.execute(select(Escalation.conversation_id, Escalation.channel)
                        .where(Escalation.ref == ref.upper())).first()
        return (row.conversation_id, row.channel) if row is not None else None
    return _in_txn(read, session)


def _live(session: Session, conversation_id: str) -> Optional[FeedbackSurvey]:
    return session.execute(
        select(FeedbackSurvey)
        .where(FeedbackSurvey.conversation_id == conversation_id,
               FeedbackSurvey.status.in_(survey.LIVE))
        .order_by(FeedbackSurvey.id.desc()).limit(1)
    ).scalar_one_or_none()


def has_live_survey(conversation_id: str, session: Optional[Session] = None) -> bool:
    """One indexed look-up: the channels ask it before each turn."""
    return _in_txn(lambda s: _live(s, conversation_id) is not None, session)


def live_conversations(session: Optional[Session] = None) -> FrozenSet[str]:
    """Every conversation with a live survey (a handful): the channels' view of them
    (``bot/feedback/live.py``) reads this at most once a second instead of a look-up a turn."""
    since = utcnow() - SURVEY_TTL
    return _in_txn(lambda s: frozenset(s.execute(
        select(FeedbackSurvey.conversation_id).distinct()
        .where(FeedbackSurvey.status.in_(survey.LIVE), FeedbackSurvey.updated_at >= since)
    ).scalars()), session)


def _end(record: FeedbackSurvey, status: str, now: dt.datetime) -> None:
    record.status, record.updated_at, record.ended_at = status, now, now


def _handle(session: Session, conversation_id: str, text: str, risk_level: str,
            questions: Questions, now: dt.datetime,
            dialogue_at: Optional[dt.datetime]) -> Optional[survey.Outcome]:
    record = _live(session, conversation_id)
    if record is None:
        return None
    if now - _aware(record.updated_at) > SURVEY_TTL:
        _end(record, survey.LAPSED, now)
        return None
    if (record.status == survey.OFFERED and dialogue_at is not None
            and _aware(record.updated_at) <= dialogue_at):
        # A message after the offer already went to the dialogue: the offer was dropped then.
        _end(record, survey.LAPSED, now)
        return None
    if record.set_name not in questions.sets:  # the file changed under a live survey
        _end(record, survey.LAPSED, now)
        return None
    state = survey.State(record.status, record.set_name, record.position, record.retried)
    outcome = survey.reply(questions, state, text, risk_level)
    if outcome.answer is not None:
        a = outcome.answer
        session.add(FeedbackAnswer(survey_id=record.id, conversation_id=conversation_id,
                                   set_name=record.set_name, question_id=a.question_id,
                                   criterion=a.criterion, choice=a.choice, value=a.value,
                                   answered_at=now))
    if outcome.comment:
        asked = questions.for_audience(record.set_name)[1]
        session.add(FeedbackComment(survey_id=record.id, conversation_id=conversation_id,
                                    question_id=asked[state.position].id, text=outcome.comment,
                                    at=now))
    new = outcome.state
    record.status, record.position, record.retried = new.status, new.position, new.retried
    record.updated_at = now
    if new.status in survey.ENDS:
        record.ended_at = now
        logger.info("feedback: survey %s ended (%s)", record.id, new.status)
    return outcome


def handle(conversation_id: str, text: str, risk_level: str, questions: Questions,
           now: Optional[dt.datetime] = None, session: Optional[Session] = None,
           dialogue_at: Optional[dt.datetime] = None) -> Optional[survey.Outcome]:
    """The live survey's step for the person's message, stored; None when no survey is live
    (the message is the dialogue's). ``dialogue_at``: when an earlier message of the
    conversation went to the dialogue unread by the survey (``bot/feedback/live.py``); an
    offer made before it has lapsed."""
    return _in_txn(_handle, session, conversation_id, text, risk_level, questions,
                   now or utcnow(), dialogue_at)


def _do_not_ask(session: Session, person: str, reason: str, now: dt.datetime) -> None:
    if reason not in DO_NOT_ASK_REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    row = session.get(FeedbackPerson, person)
    if row is None:
        row = FeedbackPerson(person=person)
        session.add(row)
    row.do_not_ask, row.do_not_ask_reason, row.do_not_ask_at = True, reason, now
    for record in session.execute(
        select(FeedbackSurvey).where(FeedbackSurvey.person == person,
                                     FeedbackSurvey.status.in_(survey.LIVE))
    ).scalars():
        _end(record, survey.STOPPED, now)


def do_not_ask(person: str, reason: str = "opt_out", now: Optional[dt.datetime] = None,
               session: Optional[Session] = None) -> None:
    """Never ask this person again (an opt-out, or forgotten), and end any live survey."""
    _in_txn(_do_not_ask, session, person, reason, now or utcnow())


def _forget(session: Session, person: str, now: dt.datetime) -> int:
    ids = select(FeedbackSurvey.id).where(FeedbackSurvey.person == person)
    gone = 0
    for table in (FeedbackComment, FeedbackAnswer):
        gone += session.execute(delete(table).where(table.survey_id.in_(ids))
                                .execution_options(synchronize_session=False)).rowcount
    session.execute(delete(FeedbackSurvey).where(FeedbackSurvey.person == person)
                    .execution_options(synchronize_session=False))
    session.expire_all()
    _do_not_ask(session, person, "forget", now)
    return gone


def forget(person: str, now: Optional[dt.datetime] = None, session: Optional[Session] = None) -> int:
    """Delete every answer and comment of ``person`` and never ask them again (the row in
    ``feedback_people`` stays, saying only that: no date of any answer). Returns how many
    answers and comments went."""
    return _in_txn(_forget, session, person, now or utcnow())


def comments(conversation_id: str, session: Optional[Session] = None) -> List[FeedbackComment]:
    """The free text of a conversation's surveys, for the console (which audits the reading)."""
    def read(s: Session) -> List[FeedbackComment]:
        rows = s.execute(select(FeedbackComment)
                         .where(FeedbackComment.conversation_id == conversation_id)
                         .order_by(FeedbackComment.id)).scalars().all()
        for r in rows:
            s.expunge(r)
        return list(rows)
    return _in_txn(read, session)

