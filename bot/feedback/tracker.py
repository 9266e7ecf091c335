"""What the survey reads of Rasa's tracker store (the ``events`` table): the person's last
message per conversation, whether the conversation ended with a goodbye, and slots.

The duty service offers the survey after staff resolve an escalation and after a quiet
period; neither has Rasa's tracker in hand, so both read the table, as the console's
transcripts and the held-risk watcher do (``bot/store/rasa_events.py``). Reads only: ids,
timestamps, channel names and slot values, never what a person wrote.

Finding quiet conversations must not scan the whole table each pass (it only grows, and only
``sender_id`` is indexed). Rasa stamps each event as it happens and saves a turn's events
within seconds, so the primary key follows time closely enough to search: ``first_id_since``
finds the first row stamped since a moment by bisecting the key (about 25 indexed look-ups
for ten million rows), and the quiet query reads only the rows after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Optional

from sqlalchemy import and_, func, inspect, or_, select
from sqlalchemy.orm import Session

from bot.store.models.feedback import FeedbackQuiet
from bot.store import rasa_events
from bot.store.rasa_events import RASA_EVENTS

# The goodbye rule's actions (data/rules/basics.yml): after them the goodbye's own offer has
# decided already, so a quiet period after a goodbye offers nothing.
GOODBYE_ACTIONS = ("utter_goodbye", "action_feedback_offer")
# Slots of the conversation the survey needs (domain.yml; the names are repeated here so the
# duty service does not load the escalation layer's memory of risk).
SLOT_AUDIENCE = "audience"
SLOT_EMERGENCY = "risk_emergency"
# Slot rows read back at most (each turn writes a slot row only when a value changes).


@dataclass(frozen=True)
class QuietConversation:
    conversation_id: str
    last_event_id: int  # the person's last message: the quiet spell's key
    last_at: float  # Rasa's stamp on it (epoch seconds)
    channel: str  # the channel it came in on ("sms", "socketio", "rest" ...)


def has_events(session: Session) -> bool:
    return inspect(session.connection()).has_table("events")


def _first_row_from(session: Session, event_id: int):
    return session.execute(
        select(RASA_EVENTS.c.id, RASA_EVENTS.c.timestamp)
        .where(RASA_EVENTS.c.id >= event_id)
        .order_by(RASA_EVENTS.c.id)
        .limit(1)
    ).first()


def first_id_since(session: Session, since: float) -> int:
    """The smallest id from which every row is stamped at or after ``since`` (bisecting the
    primary key; beyond the last row when none is)."""
    low, high = session.execute(select(func.min(RASA_EVENTS.c.id), func.max(RASA_EVENTS.c.id))).one()
    if low is None:
        return 0
    high += 1  # "from here on, every row is recent" holds for one past the end
    while low < high:
        mid = (low + high) // 2
        row = _first_row_from(session, mid)
        if row is None or (row.timestamp is not None and row.timestamp >= since):
            high = mid
        else:  # every id up to this row's has this (old) row first
            low = row.id + 1
    return low


def _channel(data: Optional[str], conversation_id: str) -> str:
    try:
        parsed = json.loads(data or "{}")
    except ValueError:
        parsed = {}
    channel = parsed.get("input_channel") if isinstance(parsed, dict) else None
    if not channel and conversation_id.startswith("sms-"):
        return "sms"
    return str(channel or "unknown")


def quiet_conversations(session: Session, now: float, quiet_s: float, window_s: float,
                        retry_unsent: int, limit: int = 200) -> list[QuietConversation]:
    """Conversations whose person last wrote between ``quiet_s + window_s`` and ``quiet_s``
    seconds before ``now``, and whose quiet spell since has not been handled
    (``feedback_quiet``; one left ``unsent`` fewer than ``retry_unsent`` times is again)."""
    if not has_events(session):
        return []
    oldest = now - quiet_s - window_s
    floor = first_id_since(session, oldest)
    latest = (
        select(RASA_EVENTS.c.sender_id.label("sender_id"),
               func.max(RASA_EVENTS.c.id).label("last_id"))
        .where(RASA_EVENTS.c.id >= floor, RASA_EVENTS.c.type_name == "user")
        .group_by(RASA_EVENTS.c.sender_id)
        .subquery()
    )
    claim = FeedbackQuiet.__table__.c
    rows = session.execute(
        select(latest.c.sender_id, latest.c.last_id, RASA_EVENTS.c.timestamp, RASA_EVENTS.c.data)
        .join(RASA_EVENTS, RASA_EVENTS.c.id == latest.c.last_id)
        .outerjoin(FeedbackQuiet.__table__, claim.conversation_id == latest.c.sender_id)
        .where(RASA_EVENTS.c.timestamp <= now - quiet_s, RASA_EVENTS.c.timestamp >= oldest)
        .where(or_(claim.conversation_id.is_(None),
                   claim.last_event_id < latest.c.last_id,
                   and_(claim.last_event_id == latest.c.last_id, claim.outcome == "unsent",
                        claim.attempts < retry_unsent)))
        .order_by(latest.c.last_id)
        .limit(limit)
    ).all()
    return [QuietConversation(r.sender_id, r.last_id, float(r.timestamp),
                              _channel(r.data, r.sender_id)) for r in rows]


def said_goodbye_after(session: Session, conversation_id: str, event_id: int) -> bool:
    """The goodbye rule ran after tracker row ``event_id`` (then the goodbye's own offer, or
    its refusal, has been and the quiet period offers nothing)."""
    found = session.execute(
        select(RASA_EVENTS.c.id)
        .where(RASA_EVENTS.c.sender_id == conversation_id, RASA_EVENTS.c.id > event_id,
               RASA_EVENTS.c.type_name == "action",
               RASA_EVENTS.c.action_name.in_(GOODBYE_ACTIONS))
        .limit(1)
    ).first()
    return found is not None


def latest_slots(session: Session, conversation_id: str, names: Iterable[str]) -> dict:
    """The latest value of each slot in ``names`` the conversation has set (absent: never)."""
    if not set(names) or not has_events(session):
        return {}
    return rasa_events.latest_slots(session, conversation_id, names)
