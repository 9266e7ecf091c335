"""The quiet period's database side: which conversations went quiet, claiming one, and what
came of it (``feedback_quiet``; the loop is ``bot/feedback/quiet_watch.py``).

A conversation went quiet when the person has written nothing for the quiet period
(``FEEDBACK_QUIET_MINUTES``) and the conversation did not end with a goodbye (the goodbye
offers, or declines to, itself). Its **quiet spell** is keyed by the tracker row of the
person's last message: when they write again, a later spell may be offered for (the weekly
limit still holds).

Once per spell, across restarts and several duty services: ``claim`` takes a spell by
inserting the conversation's row or moving its ``last_event_id`` forward in one conditional
``UPDATE``, so of two duty services only one changes the row; the checks and the offer are
in that same transaction, so a claim and its survey commit together or not at all. The offer
is then sent (``bot/feedback/offers.py``) and ``settle`` records how it went. A duty service
that dies after the commit and before ``settle`` leaves ``sending``; ``reap`` ends such an
offer's survey (lapsed) rather than sending it again: a survey is never worth a second text.

Never what a person wrote: ids, channel names, fixed outcome words.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.feedback import store, tracker
from bot.feedback.questions import Questions
from bot.store.db import transaction
from bot.store.models import utcnow
from bot.store.models.feedback import FeedbackQuiet

logger = logging.getLogger(__name__)

TRIGGER = "quiet"
# Outcomes (``feedback_quiet.outcome``).
SENDING = "sending"  # claimed and offered; the offer is on its way
OFFERED = "offered"  # the relay took it
UNSENT = "unsent"  # the relay could not be reached: taken again on a later pass
ABSENT = "absent"  # web chat with no page open: nobody to ask
LOST = "lost"  # a duty service died while sending: its survey lapsed
GOODBYE = "goodbye"  # the person said goodbye: that offer decided
EMERGENCY = "emergency"  # the conversation's emergency is still on
CHANNEL = "channel"  # a channel the line cannot write to unprompted (rest)
# Sent again at most this many times in all when the relay could not be reached.
MAX_ATTEMPTS = 3
# Channels the staff relay delivers on (bot/channels/relay.py).
RELAYED = ("sms", "socketio")


@dataclass(frozen=True)
class Claimed:
    conversation_id: str
    channel: str
    last_event_id: int
    outcome: str  # SENDING when an offer is to be sent, else why not
    offered: Optional[store.Offered] = None


def _insert(session: Session):
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def claim(session: Session, conversation_id: str, last_event_id: int, now: dt.datetime) -> bool:
    """Take the quiet spell after tracker row ``last_event_id``; False when another duty
    service (or an earlier pass) has it."""
    inserted = session.execute(
        _insert(session)(FeedbackQuiet)
        .values(conversation_id=conversation_id, last_event_id=last_event_id, outcome=SENDING,
                attempts=1, claimed_at=now, updated_at=now)
        .on_conflict_do_nothing()
    ).rowcount
    if inserted:
        return True
    c = FeedbackQuiet
    moved = session.execute(
        update(c)
        .where(c.conversation_id == conversation_id)
        .where(or_(c.last_event_id < last_event_id,
                   and_(c.last_event_id == last_event_id, c.outcome == UNSENT,
                        c.attempts < MAX_ATTEMPTS)))
        # Another try at the same spell counts; a new spell starts again at one.
        .values(attempts=case((c.last_event_id == last_event_id, c.attempts + 1), else_=1),
                last_event_id=last_event_id, outcome=SENDING, survey_id=None,
                claimed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(moved)


def _outcome(session: Session, conversation_id: str, outcome: str, now: dt.datetime,
             survey_id: Optional[int] = None) -> None:
    session.execute(
        update(FeedbackQuiet)
        .where(FeedbackQuiet.conversation_id == conversation_id)
        .values(outcome=outcome, survey_id=survey_id, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def claim_and_offer(found: tracker.QuietConversation, questions: Questions,
                    now: Optional[dt.datetime] = None) -> Optional[Claimed]:
    """One quiet conversation, in one transaction: claim its spell, check it, offer.

    None when the spell was someone else's. Otherwise what was decided: ``SENDING`` with the
    offer (the survey is recorded; the caller sends the prompt and ``settle``s), or why not.
    """
    now = now or utcnow()
    cid = found.conversation_id
    with transaction() as s:
        if not claim(s, cid, found.last_event_id, now):
            return None
        if found.channel not in RELAYED:
            outcome = CHANNEL
        elif tracker.said_goodbye_after(s, cid, found.last_event_id):
            outcome = GOODBYE
        else:
            slots = tracker.latest_slots(s, cid, (tracker.SLOT_EMERGENCY, tracker.SLOT_AUDIENCE))
            if slots.get(tracker.SLOT_EMERGENCY) is True:
                # Imminent risk shown and not stood down: the person is asked nothing until
                # staff have resolved it (then the resolution offers).
                outcome = EMERGENCY
            else:
                audience = slots.get(tracker.SLOT_AUDIENCE)
                offered = store.offer(cid, found.channel, TRIGGER, questions,
                                      audience if isinstance(audience, str) else None,
                                      now=now, session=s)
                if offered.prompt is not None:
                    _outcome(s, cid, SENDING, now, offered.survey_id)
                    return Claimed(cid, found.channel, found.last_event_id, SENDING, offered)
                outcome = offered.reason
        _outcome(s, cid, outcome, now)
    logger.info("feedback: quiet conversation not asked (%s)", outcome)
    return Claimed(cid, found.channel, found.last_event_id, outcome)


def settle(conversation_id: str, outcome: str, survey_id: Optional[int] = None,
           now: Optional[dt.datetime] = None) -> None:
    """Record how sending the offer went (``OFFERED``, ``UNSENT``, ``ABSENT``)."""
    with transaction() as s:
        _outcome(s, conversation_id, outcome, now or utcnow(), survey_id)


def reap(older_than: dt.timedelta, now: Optional[dt.datetime] = None) -> int:
    """Offers left ``sending`` longer than ``older_than`` (their duty service died while
    sending): lapse their survey and mark them ``lost``. Returns how many."""
    now = now or utcnow()
    with transaction() as s:
        rows = s.execute(
            select(FeedbackQuiet)
            .where(FeedbackQuiet.outcome == SENDING, FeedbackQuiet.updated_at < now - older_than)
            .with_for_update(skip_locked=True)
        ).scalars().all()
        for row in rows:
            if row.survey_id is not None:
                store.lapse(row.survey_id, now=now, session=s)
            row.outcome, row.updated_at = LOST, now
    if rows:
        logger.warning("feedback: %d quiet-period offers cut off while sending; lapsed", len(rows))
    return len(rows)


def find(now: dt.datetime, quiet_s: float, window_s: float, limit: int = 200
         ) -> list[tracker.QuietConversation]:
    """The quiet conversations to look at now (``tracker.quiet_conversations``)."""
    with transaction() as s:
        return tracker.quiet_conversations(s, now.timestamp(), quiet_s, window_s,
                                           MAX_ATTEMPTS, limit)
