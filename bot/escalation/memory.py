"""Conversation memory of risk: what a conversation has shown shapes what follows.

The NLU rates each message on its own (``risk: {level, signals}``). A conversation needs more:

- "I bought some rope" after "I want to die" is imminent, though either alone is not: a means
  or a dangerous place named after thoughts of dying is imminent risk;
- once a conversation has shown imminent risk, it stays an emergency: every later reply keeps
  the emergency numbers and the assistant does not go back to small talk, until a human has
  resolved the escalation or the person has said, and confirmed, that they are safe;
- what was shown is never forgotten: standing down lowers only the *active* flag.

``after_message`` is the one transition per message and ``stand_down`` the only one that
lowers anything. Both are pure; the Rasa server applies them on every turn and keeps the result
in the tracker's slots (``bot/rasa_runtime/memory_guard.py``; slot names below). ``resolved_after``
is the one database question: has staff resolved the conversation's escalation since?
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Iterable, Optional

LEVELS = ("none", "concern", "urgent", "imminent")
RANK = {name: i for i, name in enumerate(LEVELS)}

# The tracker slots that hold a conversation's memory (domain.yml).
SLOT_LEVEL = "risk_level"  # categorical: the highest level shown; never lowered
SLOT_EMERGENCY = "risk_emergency"  # bool: imminent risk shown and not yet stood down
SLOT_SIGNALS = "risk_signals"  # list: every risk signal shown so far
SLOT_SINCE = "risk_emergency_since"  # float: when the emergency began (epoch seconds)

# Thoughts of dying, or of ending one's life.
IDEATION = frozenset({"suicidal_ideation", "plan"})
# A means, or a dangerous place (``setting``: a railway, a bridge, a car in a closed garage).
MEANS_OR_PLACE = frozenset({"means", "at_height", "setting", "overdose", "act_in_progress"})
# Signals that say the words are not about the person's own risk now: they never upgrade.
NOT_ABOUT_NOW = frozenset({"negated", "idiom", "education"})
# Added to a message's signals when memory, not the message alone, made it imminent.
AFTER_IDEATION = "after_ideation"


@dataclass(frozen=True)
class ConversationRisk:
    level: str = "none"
    emergency: bool = False
    signals: tuple[str, ...] = ()

    @property
    def ideation(self) -> bool:
        return bool(IDEATION.intersection(self.signals))


@dataclass(frozen=True)
class Step:
    """The conversation after one message, and that message's level once memory is applied
    (``upgraded``: the message alone was rated lower)."""

    memory: ConversationRisk
    message_level: str
    upgraded: bool


def higher(a: str, b: str) -> str:
    return a if RANK.get(a, 0) >= RANK.get(b, 0) else b


def after_message(previous: ConversationRisk, level: Optional[str],
                  signals: Iterable[str] = ()) -> Step:
    """The conversation's memory after a message the NLU rated ``level`` with ``signals``.

    Raises when the message raises; never lowers. An unknown level counts as ``none`` for the
    message (it cannot lower what the conversation already showed either).
    """
    signals = tuple(dict.fromkeys(s for s in signals if s))
    level = level if level in RANK else "none"
    upgraded = False
    if (level != "imminent" and MEANS_OR_PLACE.intersection(signals)
            and not NOT_ABOUT_NOW.intersection(signals)
            and (previous.ideation or IDEATION.intersection(signals))):
        level, upgraded = "imminent", True
    shown = previous.signals + tuple(s for s in signals if s not in previous.signals)
    if upgraded and AFTER_IDEATION not in shown:
        shown += (AFTER_IDEATION,)
    memory = ConversationRisk(
        level=higher(previous.level, level),
        emergency=previous.emergency or level == "imminent",
        signals=shown,
    )
    return Step(memory, level, upgraded)


def raised_to(previous: ConversationRisk, level: str) -> ConversationRisk:
    """The memory once the dialogue itself has judged the risk ``level`` (e.g. "no" to "are
    you safe right now?" is imminent). Levels outside ``LEVELS`` (``support``) change nothing."""
    if level not in RANK:
        return previous
    return replace(previous, level=higher(previous.level, level),
                   emergency=previous.emergency or level == "imminent")


def stand_down(previous: ConversationRisk) -> ConversationRisk:
    """A human resolved the escalation, or the person confirmed they are safe: the emergency
    is over; what the conversation showed is kept (a later means or place is still imminent)."""
    return replace(previous, emergency=False)


def from_slots(level: Optional[str], emergency: Optional[bool],
               signals: Optional[Iterable[str]]) -> ConversationRisk:
    return ConversationRisk(
        level=level if level in RANK else "none",
        emergency=bool(emergency),
        signals=tuple(dict.fromkeys(signals or ())),
    )


def resolved_after(conversation_id: str, since: dt.datetime, session=None) -> bool:
    """True when staff have resolved the conversation's escalation after ``since`` and none is
    live now (a live one means someone is still needed)."""
    from sqlalchemy import select

    from bot.escalation.engine import LIVE_STATUSES
    from bot.store.db import transaction
    from bot.store.models import Escalation

    if session is None:
        with transaction() as own:
            return resolved_after(conversation_id, since, own)
    latest = session.execute(
        select(Escalation)
        .where(Escalation.conversation_id == conversation_id)
        .order_by(Escalation.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is None or latest.status in LIVE_STATUSES or latest.resolved_at is None:
        return False
    at = latest.resolved_at
    if at.tzinfo is None:  # SQLite gives naive UTC
        at = at.replace(tzinfo=dt.timezone.utc)
    return at >= since
