"""Conversation memory of risk, kept by the Rasa server around every turn's prediction loop.

Why here: every turn of every channel (SMS, web chat, REST, a trigger through the HTTP API)
runs through ``MessageProcessor._run_prediction_loop``, in the Rasa server, after the
message has been parsed and logged and before the first action is chosen; the tracker it is
given is saved right after it. So this is the one place that

1. *before* the loop, applies ``bot.escalation.memory.after_message`` to the new message and
   keeps the result in the tracker's slots (``risk_level``, ``risk_emergency``,
   ``risk_emergency_since``, ``risk_signals``), so the rules see it from the first action on.
   A means or a place named after thoughts of dying is imminent: the message itself is
   marked so (intent ``risk_imminent``, ``risk.level`` imminent, signal ``after_ideation``),
   as the NLU's risk guard does, and the safety rules answer 999 at once. While the
   conversation is an emergency, it asks the database whether staff have resolved its
   escalation since; if so the emergency stands down (never the record of it);
2. *after* the loop, guarantees that a turn that answered anything in a conversation whose
   emergency is still on carries the emergency numbers (999, Samaritans 116 123, NHS 111
   option 2): if the turn's replies do not, ``EMERGENCY_NUMBERS`` is sent last, through the
   turn's own output channel, and logged in the tracker as a bot message marked
   ``{"line_guard": "emergency_numbers"}``. No rule can forget it.

Not the action server's job (Rasa's ``action_validate_slot_mappings`` would be the usual
place): the safety replies are the Rasa server's own so that they do not depend on the
action server, and so is the memory that shapes them. A turn that answered nothing (action
server down) is left to the channels' fail-safe reply, which has the numbers; a conversation a
human holds (the assistant paused) gets nothing from here.

Installed by ``bot.rasa_runtime.install`` (``python -m bot.rasa_server``) whatever
``RASA_PATCHES`` says: it is safety behaviour, not a speed-up. It wraps one private method of
Rasa 3.6's ``MessageProcessor``, checked at install; Rasa has no public hook around a turn's
prediction loop that can both set slots first and add a message last, so it is kept as it is,
inside ``bot/rasa_runtime``. If the
memory cannot be worked out (a bug, the database down), the turn runs as before and the error
is logged; the emergency never stands down on an error. No message text in the logs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any, List, Optional

from bot.escalation import memory

logger = logging.getLogger(__name__)

EMERGENCY_NUMBERS = (
    "If you are in danger now, call 999 or go to A&E. Samaritans: 116 123 (free, any time). "
    "NHS 111, option 2 for mental health."
)
# What a turn's replies must hold between them (NHS 111 is written "111, option 2" or
# "111 option 2"; "111" is enough to know it was given).
NUMBERS = ("999", "116 123", "111")
GUARD_METADATA = {"line_guard": "emergency_numbers"}
# How long a turn waits for the database to say whether staff resolved the escalation.
RESOLVED_CHECK_TIMEOUT_S = 2.0

rasa_run_prediction_loop: Any = None


def carries_numbers(texts: List[str]) -> bool:
    joined = " ".join(texts)
    return all(n in joined for n in NUMBERS)


def has_memory(tracker: Any) -> bool:
    """The assistant's domain has the memory's slots (a bot without them is left alone)."""
    return all(name in tracker.slots for name in (
        memory.SLOT_LEVEL, memory.SLOT_EMERGENCY, memory.SLOT_SINCE, memory.SLOT_SIGNALS))


def _slots(tracker: Any) -> memory.ConversationRisk:
    return memory.from_slots(tracker.get_slot(memory.SLOT_LEVEL),
                             tracker.get_slot(memory.SLOT_EMERGENCY),
                             tracker.get_slot(memory.SLOT_SIGNALS))


def fresh_message(tracker: Any) -> Any:
    """The user message this turn answers: None when an action has run since the latest
    one (a reminder, or the loop run again), so a message is remembered once."""
    from rasa.shared.core.events import ActionExecuted, UserUttered

    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return event
        if isinstance(event, ActionExecuted):
            return None
    return None


def _mark_imminent(message: Any, signals: List[str]) -> None:
    """The message, upgraded by memory: as the risk guard marks an imminent message."""
    intent = {"name": "risk_imminent", "confidence": 1.0}
    message.intent = intent
    message.parse_data["intent"] = intent
    message.parse_data["risk"] = {"level": "imminent", "signals": signals}


def slot_events(before: memory.ConversationRisk, after: memory.ConversationRisk,
                now: float, imminent_now: bool = False) -> List[Any]:
    """The slot changes from ``before`` to ``after``. ``imminent_now``: this message was
    imminent, so the emergency (re)starts now: only a resolution after it stands it down."""
    from rasa.shared.core.events import SlotSet

    events = []
    if after.level != before.level:
        events.append(SlotSet(memory.SLOT_LEVEL, after.level, now))
    if after.signals != before.signals:
        events.append(SlotSet(memory.SLOT_SIGNALS, list(after.signals), now))
    if after.emergency != before.emergency:
        events.append(SlotSet(memory.SLOT_EMERGENCY, after.emergency, now))
    if after.emergency and (imminent_now or not before.emergency):
        events.append(SlotSet(memory.SLOT_SINCE, now, now))
    return events


async def _resolved_by_staff(tracker: Any) -> bool:
    since = tracker.get_slot(memory.SLOT_SINCE)
    try:
        since_at = dt.datetime.fromtimestamp(float(since), tz=dt.timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return False  # no start known: only the person's confirmation stands it down
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(memory.resolved_after, tracker.sender_id, since_at),
            RESOLVED_CHECK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001  unsure: the emergency stays on
        logger.error("memory: could not check whether %s was resolved (%s)", tracker.sender_id,
                     type(exc).__name__)
        return False


async def remember(tracker: Any, domain: Any) -> None:
    """Before the turn's first action: the conversation's memory after this message."""
    if not has_memory(tracker):
        return
    message = fresh_message(tracker)
    if message is None:
        return
    before = _slots(tracker)
    risk = message.parse_data.get("risk") or {}
    step = memory.after_message(before, risk.get("level"), risk.get("signals") or ())
    after = step.memory
    if step.upgraded:
        _mark_imminent(message, list(dict.fromkeys(
            list(risk.get("signals") or ()) + [memory.AFTER_IDEATION])))
        logger.warning("memory: %s: a means or place after thoughts of dying, rated imminent",
                       tracker.sender_id)
    if after.emergency and before.emergency and step.message_level != "imminent":
        if await _resolved_by_staff(tracker):
            after = memory.stand_down(after)
            logger.info("memory: %s: resolved by staff, the emergency stands down",
                        tracker.sender_id)
    tracker.update_with_events(
        slot_events(before, after, time.time(), step.message_level == "imminent"), domain)


async def keep_numbers(tracker: Any, output_channel: Any) -> None:
    """After the turn: in an emergency, a turn that said anything has said the numbers."""
    from rasa.shared.core.events import BotUttered, UserUttered

    if not has_memory(tracker) or not tracker.get_slot(memory.SLOT_EMERGENCY) \
            or tracker.is_paused():
        return
    said: List[str] = []
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, BotUttered):
            said.append(event.text or "")
    if not said or carries_numbers(said):
        return
    event = BotUttered(EMERGENCY_NUMBERS, metadata=dict(GUARD_METADATA))
    tracker.update(event)
    await output_channel.send_response(tracker.sender_id, event.message())
    logger.info("memory: %s: emergency numbers added to a reply", tracker.sender_id)


async def run_prediction_loop(self: Any, output_channel: Any, tracker: Any) -> None:
    """``MessageProcessor._run_prediction_loop`` with the conversation's memory kept."""
    try:
        await remember(tracker, self.domain)
    except Exception as exc:  # noqa: BLE001  the turn must still be answered
        logger.error("memory: could not update %s (%s)", tracker.sender_id, type(exc).__name__)
    await rasa_run_prediction_loop(self, output_channel, tracker)
    try:
        await keep_numbers(tracker, output_channel)
    except Exception as exc:  # noqa: BLE001
        logger.error("memory: could not add the numbers for %s (%s)", tracker.sender_id,
                     type(exc).__name__)


def install() -> Optional[str]:
    """Wrap Rasa's prediction loop (once). Returns why not, when it cannot."""
    global rasa_run_prediction_loop
    try:
        from rasa.core.processor import MessageProcessor
    except ImportError:
        return "no Rasa here"
    current = getattr(MessageProcessor, "_run_prediction_loop", None)
    if current is None:
        logger.error("memory: this Rasa has no MessageProcessor._run_prediction_loop; "
                     "conversation memory of risk is OFF")
        return "no prediction loop"
    if current is run_prediction_loop:
        return None
    rasa_run_prediction_loop = current
    MessageProcessor._run_prediction_loop = run_prediction_loop
    return None
