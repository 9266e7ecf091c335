"""The feedback survey's offer, after the person says goodbye (docs/feedback.md).

The action only asks ``bot.feedback.store.offer``, which decides whether the person may be
asked (not this week already, not opted out or forgotten, no escalation still live: never
after an imminent conversation until staff have resolved it) and records the offer. The
answers never come back here: the channels give them to the survey (bot/channels/feedback_turn.py).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker

from actions.common import channel_of, in_thread
from bot.escalation import memory
from bot.feedback import store
from bot.feedback.questions import configured

logger = logging.getLogger(__name__)

# The web chat draws quick-reply buttons; SMS reads the words in the text.
BUTTON_CHANNELS = frozenset({"socketio"})


class ActionFeedbackOffer(Action):
    """Offer the survey once, if this person may be asked now."""

    def name(self) -> Text:
        return "action_feedback_offer"

    async def run(self, dispatcher, tracker: Tracker, domain) -> List[Dict[Text, Any]]:
        questions = configured()
        if questions is None:
            return []
        if tracker.get_slot(memory.SLOT_EMERGENCY):
            logger.info("feedback: not offered (emergency)")
            return []
        channel = channel_of(tracker)
        try:
            offered = await in_thread(store.offer, tracker.sender_id, channel, "goodbye",
                                      questions, tracker.get_slot("audience"))
        except Exception:  # noqa: BLE001 - a survey is never worth an error to the person
            logger.exception("feedback: could not offer the survey")
            return []
        if offered.prompt is None:
            logger.info("feedback: not offered (%s)", offered.reason)
            return []
        if channel in BUTTON_CHANNELS:
            dispatcher.utter_message(text=offered.prompt.text, buttons=[
                {"title": c, "payload": c} for c in offered.prompt.choices])
        else:
            dispatcher.utter_message(text=offered.prompt.text)
        return []
