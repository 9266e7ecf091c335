"""Asking for a human: record the escalation, and the person's consent, through bot.escalation.engine."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import channel_of, escalation_level, in_thread, latest_risk
from bot.escalation import memory, wait
from bot.escalation.engine import flag_for_staff, record_consent, record_escalation
from bot.escalation.summary import build_summary
from bot.feedback import store as feedback_store

logger = logging.getLogger(__name__)

# Said when the escalation cannot be recorded, so that nobody waits for a person who was never
# asked for. The emergency numbers always go with it.
COULD_NOT_REACH_TEAM = (
    "I'm sorry: I couldn't reach our on-call team just now. Please call Samaritans on 116 123 "
    "(free, any time) or NHS 111, option 2. If you are in danger, call 999 or go to A&E."
)


async def escalate(
    dispatcher: CollectingDispatcher, tracker: Tracker, level: str, extra_signals: List[str]
) -> List[Dict[Text, Any]]:
    risk = latest_risk(tracker)
    signals = risk["signals"] + extra_signals
    summary = build_summary(
        level,
        signals,
        tracker.events or [],
        place=tracker.get_slot("place"),
        need=tracker.get_slot("need"),
        audience=tracker.get_slot("audience"),
    )
    try:
        record = await in_thread(
            record_escalation,
            tracker.sender_id,
            level,
            signals,
            channel=channel_of(tracker),
            summary=summary,
        )
    except Exception:  # noqa: BLE001 - the person must hear the truth, whatever failed
        logger.exception("could not record a %s escalation", level)
        dispatcher.utter_message(text=COULD_NOT_REACH_TEAM)
        return remembered(tracker, level)
    logger.info("escalation %s level=%s created=%s", record.ref, record.level, record.created)
    return remembered(tracker, record.level, level) + [SlotSet("escalation_ref", record.ref)]


def remembered(tracker: Tracker, level: str, judged: Optional[str] = None) -> List[Dict[Text, Any]]:
    """The conversation's memory of risk (bot/escalation/memory.py) raised to the escalation's
    ``level``; ``judged``: the level this turn judged (only an imminent one starts an
    emergency: a live imminent escalation the person has since stood down does not)."""
    before = memory.from_slots(tracker.get_slot(memory.SLOT_LEVEL),
                               tracker.get_slot(memory.SLOT_EMERGENCY),
                               tracker.get_slot(memory.SLOT_SIGNALS))
    after = memory.raised_to(before, judged or level)
    if level in memory.RANK:
        after = replace(after, level=memory.higher(after.level, level))
    events: List[Dict[Text, Any]] = []
    if after.level in memory.RANK and after.level != "none":
        events.append(SlotSet(memory.SLOT_LEVEL, after.level))
    if after.emergency and not before.emergency:
        events += [SlotSet(memory.SLOT_EMERGENCY, True), SlotSet(memory.SLOT_SINCE, time.time())]
    return events


class ActionRecordEscalation(Action):
    """Urgent or imminent risk: open (or raise) the conversation's escalation."""

    def name(self) -> Text:
        return "action_record_escalation"

    async def run(self, dispatcher, tracker: Tracker, domain) -> List[Dict[Text, Any]]:
        return await escalate(dispatcher, tracker, escalation_level(tracker), [])


class ActionEscalateNotSafe(Action):
    """The person said they are not safe right now: imminent."""

    def name(self) -> Text:
        return "action_escalate_not_safe"

    async def run(self, dispatcher, tracker: Tracker, domain) -> List[Dict[Text, Any]]:
        return await escalate(dispatcher, tracker, "imminent", ["not_safe_now"])


# The estimate in the first reply after asking for a person may take this long at most; later,
# and the reply goes without it ("It may take a few minutes"), never waiting for it.
FIRST_ESTIMATE_BUDGET_S = 0.5
SLOT_WAIT_ESTIMATE = "wait_estimate"


async def first_estimate(ref: Optional[str]) -> Optional[str]:
    """``bot.escalation.wait.first_sentence`` for escalation ``ref``, or None (no escalation,
    already picked up, too slow, failed): then ``utter_human_requested`` says its usual
    words. Never raises."""
    if not ref:
        return None
    try:
        return await asyncio.wait_for(in_thread(wait.first_reply, ref, wait.shared_rota()),
                                      FIRST_ESTIMATE_BUDGET_S)
    except Exception as exc:  # noqa: BLE001 - the reply goes without the estimate
        logger.warning("no wait estimate for %s (%s)", ref, type(exc).__name__)
        return None


class ActionRequestHuman(Action):
    """The person asked for a person: a support escalation (never lowers a higher one), and
    the estimate of the wait for ``utter_human_requested`` (slot ``wait_estimate``: None
    gives the reply's usual words). Only this path: a risk reply never waits for it."""

    def name(self) -> Text:
        return "action_request_human"

    async def run(self, dispatcher, tracker: Tracker, domain) -> List[Dict[Text, Any]]:
        events = await escalate(dispatcher, tracker, "support", ["asked_for_human"])
        ref = next((e.get("value") for e in events
                    if e.get("event") == "slot" and e.get("name") == "escalation_ref"), None)
        return events + [SlotSet(SLOT_WAIT_ESTIMATE, await first_estimate(ref))]


# The consent questions the dialogue asks (domain responses) and the topic each answer is
# recorded under on the escalation (the engine's and the console's names). The action finds
# the question by the latest bot utterance, so one action serves every question.
CONSENT_QUESTIONS = {
    "utter_ask_consent_share": "share_summary",
    "utter_ask_consent_share_now": "share_summary",
    "utter_ask_consent_sanctuary": "sanctuary",
}
ANSWER_FOR_INTENT = {"affirm": True, "deny": False}


def consent_question(tracker: Tracker) -> Optional[str]:
    """The topic of the consent question the person is answering, if the last thing the
    assistant said was one."""
    for event in reversed(tracker.events or []):
        if event.get("event") == "bot":
            if (event.get("metadata") or {}).get("line_guard"):
                continue  # the emergency numbers the Rasa server added, not a question
            utter = (event.get("metadata") or {}).get("utter_action")
            return CONSENT_QUESTIONS.get(utter or "")
    return None


class ActionRecordConsent(Action):
    """YES / NO to "may I pass on what you've told me?": recorded on the escalation.

    Never blocks help: the alert went out before the question was asked, whatever the answer
    or a failure here; the rules say the same kind words either way, and nothing said to the
    person claims the answer was stored.
    """

    def name(self) -> Text:
        return "action_record_consent"

    async def run(self, dispatcher, tracker: Tracker, domain) -> List[Dict[Text, Any]]:
        topic = consent_question(tracker)
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        given = ANSWER_FOR_INTENT.get(intent or "")
        ref = tracker.get_slot("escalation_ref")
        if topic is None or given is None or not ref:
            # Nothing asked, an answer that is neither yes nor no, or no escalation recorded
            # (the person was already told the team could not be reached): nothing to store.
            logger.info("consent not recorded (topic=%s, answer=%s, escalation=%s)",
                        topic, given, bool(ref))
            return []
        try:
            await in_thread(record_consent, ref, topic, given, "assistant")
        except Exception:  # noqa: BLE001 - consent is never a reason to stop helping
            logger.exception("could not record consent to %s on %s", topic, ref)
            return []
        logger.info("consent to %s %s on escalation %s", topic, "given" if given else "refused", ref)
        return []


class ActionOptOut(Action):
    """STOP and similar: staff hear at once when the conversation showed risk."""

    def name(self) -> Text:
        return "action_opt_out"

    async def run(self, dispatcher, tracker: Tracker, domain) -> List[Dict[Text, Any]]:
        flagged: Optional[object] = None
        try:
            flagged = await in_thread(
                flag_for_staff,
                tracker.sender_id,
                "opted_out",
                "the person sent an opt-out keyword",
                channel=channel_of(tracker),
            )
        except Exception:  # noqa: BLE001 - an opt-out must still be acknowledged
            logger.exception("could not tell staff about an opt-out")
        if flagged is not None:
            logger.info("opt-out on escalation %s raised to staff", flagged.ref)
        try:
            # Never asked for feedback again; a survey under way ends (docs/feedback.md).
            await in_thread(feedback_store.do_not_ask, tracker.sender_id, "opt_out")
        except Exception:  # noqa: BLE001 - the opt-out reply goes out regardless
            logger.exception("could not record the opt-out for the feedback survey")
        return []


class ActionStandDown(Action):
    """The person said, and then confirmed, that they are safe now: the emergency stands down.

    Only the *active* flag (``risk_emergency``) goes: the conversation's ``risk_level`` stays
    imminent and its signals stay, so a means or a place named later is imminent again. Staff
    are told on the live escalation, which stays live until a human resolves it.
    """

    def name(self) -> Text:
        return "action_stand_down"

    async def run(self, dispatcher, tracker: Tracker, domain) -> List[Dict[Text, Any]]:
        try:
            await in_thread(
                flag_for_staff,
                tracker.sender_id,
                "said_safe",
                "the person said they are safe now, and confirmed it when asked",
                channel=channel_of(tracker),
                actor="assistant",
            )
        except Exception:  # noqa: BLE001 - their word stands; staff see it in the transcript
            logger.exception("could not tell staff that the person confirmed they are safe")
        logger.info("emergency stood down on the person's confirmation")
        return [SlotSet(memory.SLOT_EMERGENCY, False)]
