"""Actions and the conversation's memory of risk: standing down, not-safe, consent after the
emergency numbers the Rasa server adds."""

from rasa_sdk.events import SlotSet
from sqlalchemy import select

from actions.escalation import ActionEscalateNotSafe, ActionRecordConsent, ActionStandDown
from bot.escalation.engine import record_escalation
from bot.store.db import transaction
from bot.store.models import Escalation
from tests.actions.conftest import bot_event, make_tracker, user_event

IMMINENT_SLOTS = {"risk_level": "imminent", "risk_emergency": True, "risk_signals": ["at_height"]}


def _escalation(conversation_id):
    with transaction() as s:
        esc = s.execute(select(Escalation).where(Escalation.conversation_id == conversation_id)
                        ).scalar_one()
        esc.events  # noqa: B018  loaded before the session closes
        return esc


async def test_confirmed_safe_lowers_only_the_emergency_and_tells_staff(db_url, dispatcher):
    record_escalation("c-stand-down", "imminent", ["at_height"])
    tracker = make_tracker([bot_event("utter_confirm_safe"), user_event("yes", "affirm")],
                           sender_id="c-stand-down", slots=dict(IMMINENT_SLOTS))
    events = await ActionStandDown().run(dispatcher, tracker, {})
    assert events == [SlotSet("risk_emergency", False)]  # risk_level stays imminent
    esc = _escalation("c-stand-down")
    assert esc.events[-1].kind == "said_safe" and esc.status == "open"  # still for staff


async def test_not_safe_starts_an_emergency(db_url, dispatcher):
    tracker = make_tracker([bot_event("utter_ask_safe"), user_event("no", "deny")],
                           sender_id="c-not-safe-memory", slots={"risk_level": "urgent"})
    events = await ActionEscalateNotSafe().run(dispatcher, tracker, {})
    names = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert names["risk_level"] == "imminent" and names["risk_emergency"] is True
    assert isinstance(names["risk_emergency_since"], float)


async def test_consent_is_recorded_when_the_numbers_were_added_after_the_question(
        db_url, dispatcher):
    rec = record_escalation("c-consent-guard", "imminent", ["overdose"])
    guard = {"event": "bot", "text": "If you are in danger now, call 999...",
             "metadata": {"line_guard": "emergency_numbers"}}
    tracker = make_tracker(
        [bot_event("utter_ask_consent_share_now"), guard, user_event("yes", "affirm")],
        sender_id="c-consent-guard", slots={"escalation_ref": rec.ref, **IMMINENT_SLOTS})
    await ActionRecordConsent().run(dispatcher, tracker, {})
    assert _escalation("c-consent-guard").summary["consent"] == {"share_summary": True}
