"""Signposting: services open now, for the person's place and need, from bot.directory; when
nothing suitable is open, the need and place are kept for the report (``bot.directory.unmet``)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import in_thread
from bot.directory import needs, places, query, unmet

logger = logging.getLogger(__name__)

# Intents whose message says what the person is looking for.
ASKING_INTENTS = {
    "ask_services",
    "carer_how_to_help",
    "carer_self_support",
    "carer_assessment",
    "carer_confidentiality",
}
CARER_INTENTS = frozenset(needs.CARER_INTENTS)
DECLINED = "not given"

FALLBACK = (
    "Open now, any time: Samaritans 116 123 (free). NHS 111, option 2 for mental health. "
    "Shout: text SHOUT to 85258. If you are in danger, call 999 or go to A&E."
)


def answer_time() -> Optional[datetime]:
    """When to look services up for: now (None). Tests pin it to a known evening."""
    return None


def _request(tracker: Tracker) -> Dict[str, Optional[str]]:
    """The need and audience from the person's latest request (not from the place answer)."""
    text = None
    audience = tracker.get_slot("audience")
    for event in reversed(tracker.events or []):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent in CARER_INTENTS:
            audience = "carers"
        if intent in ASKING_INTENTS:
            text = event.get("text") or ""
            break
    need = needs.need_from_text(text) if text else None
    if need is None and audience == "carers":
        need = "carers"
    return {"need": need or tracker.get_slot("need"), "audience": audience}


def _place_from_text(text: str) -> str:
    """The canonical place for what the person typed, the text itself if unknown, or DECLINED."""
    text = text.strip()
    if not text or places.is_declined(text):
        return DECLINED
    place = places.resolve_place(text)
    # An unknown place is kept as given: the answer says honestly that it has nothing local
    # for it and gives the national services. Never a dead end, never a re-ask loop.
    return place.name if place else text


class ValidatePlaceForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_place_form"

    async def required_slots(self, domain_slots, dispatcher, tracker, domain) -> List[Text]:
        # Ask where the person is only when it changes the answer.
        if not needs.place_matters(_request(tracker)["need"]):
            return []
        return domain_slots

    def validate_place(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain
    ) -> Dict[Text, Any]:
        return {"place": _place_from_text(str(slot_value or ""))}


class ActionFindServices(Action):
    """Answer from the directory: open now first, then opening soonest."""

    def name(self) -> Text:
        return "action_find_services"

    async def run(self, dispatcher, tracker: Tracker, domain) -> List[Dict[Text, Any]]:
        request = _request(tracker)
        place = tracker.get_slot("place")
        latest = tracker.latest_message or {}
        intent = (latest.get("intent") or {}).get("name")
        if intent == "decline_place":
            place = DECLINED
        elif intent == "inform_place" and not tracker.active_loop.get("name"):
            # A place given outside the form: resolve it from the words, as the form would.
            place = _place_from_text(latest.get("text") or "")
        # DECLINED is passed through: the answer then says "you don't have to say where you are".
        place_text = place
        try:
            reply = await in_thread(
                query.respond, request["need"], place_text, request["audience"], answer_time()
            )
        except Exception:  # noqa: BLE001 - the person still gets services open now
            logger.exception("directory answer failed; giving national services")
            reply = query.Reply([FALLBACK])
        for text in reply.messages:
            dispatcher.utter_message(text=text)
        if reply.unmet is not None:
            # Nothing suitable was open: kept for the report (need and place only).
            try:
                await in_thread(unmet.record, tracker.sender_id, reply.unmet)
            except Exception as exc:  # noqa: BLE001 - the answer has gone; only a count is lost
                logger.warning("unmet need not recorded (%s)", type(exc).__name__)
        return [
            SlotSet("place", place),
            SlotSet("need", request["need"]),
            SlotSet("audience", request["audience"]),
        ]
