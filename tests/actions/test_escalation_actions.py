"""Escalation actions: exact events and messages, against a real database."""

import pytest
from rasa_sdk.events import SlotSet
from sqlalchemy import select

from actions.escalation import (
    COULD_NOT_REACH_TEAM,
    ActionEscalateNotSafe,
    ActionOptOut,
    ActionRecordEscalation,
    ActionRequestHuman,
)
from bot.escalation.engine import record_escalation
from bot.store.db import transaction
from bot.store.models import Escalation
from tests.actions.conftest import bot_event, load_snapshot, make_tracker, user_event


def _only_escalation(sender):
    with transaction() as s:
        return s.execute(select(Escalation).where(Escalation.conversation_id == sender)).scalar_one()


async def test_urgent_message_records_an_escalation_with_a_tell_it_once_summary(db_url, dispatcher):
    tracker = load_snapshot("urgent_after_greeting")
    events = await ActionRecordEscalation().run(dispatcher, tracker, {})
    esc = _only_escalation("snapshot-urgent")
    assert events == [SlotSet("risk_level", "urgent"), SlotSet("escalation_ref", esc.ref)]
    assert dispatcher.messages == []
    assert esc.level == "urgent" and esc.channel == "rest"
    assert esc.signals == ["suicidal_ideation"]
    assert esc.summary["places"] == ["Bridgwater"] and esc.summary["needs"] == ["crisis"]
    assert "Samaritans 116 123" in esc.summary["suggested"]


async def test_level_comes_from_the_intent_when_the_parse_has_no_risk(db_url, dispatcher):
    tracker = make_tracker([user_event("...", "risk_imminent")], sender_id="no-risk-key")
    events = await ActionRecordEscalation().run(dispatcher, tracker, {})
    assert events[0] == SlotSet("risk_level", "imminent")
    assert _only_escalation("no-risk-key").level == "imminent"


async def test_not_safe_raises_an_urgent_escalation_to_imminent(db_url, dispatcher):
    record_escalation("c-not-safe", "urgent", ["self_harm"])
    tracker = make_tracker(
        [bot_event("utter_ask_safe"), user_event("no", "deny", {"level": "none", "signals": []})],
        sender_id="c-not-safe",
    )
    events = await ActionEscalateNotSafe().run(dispatcher, tracker, {})
    esc = _only_escalation("c-not-safe")
    assert esc.level == "imminent" and "not_safe_now" in esc.signals
    assert events[0] == SlotSet("risk_level", "imminent")


async def test_asking_for_a_human_never_lowers_a_risk_escalation(db_url, dispatcher):
    record_escalation("c-human", "urgent", ["self_harm"])
    tracker = make_tracker([user_event("human", "request_human")], sender_id="c-human")
    events = await ActionRequestHuman().run(dispatcher, tracker, {})
    assert events[0] == SlotSet("risk_level", "urgent")
    assert _only_escalation("c-human").level == "urgent"


async def test_database_down_tells_the_person_honestly_and_gives_the_numbers(monkeypatch, dispatcher):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    from bot import settings

    settings.reset()
    try:
        tracker = make_tracker([user_event("x", "risk_urgent", {"level": "urgent", "signals": []})])
        events = await ActionRecordEscalation().run(dispatcher, tracker, {})
    finally:
        settings.reset()
    assert events == [SlotSet("risk_level", "urgent")]
    assert [m["text"] for m in dispatcher.messages] == [COULD_NOT_REACH_TEAM]
    assert "116 123" in COULD_NOT_REACH_TEAM and "999" in COULD_NOT_REACH_TEAM


@pytest.mark.parametrize("had_risk", [True, False])
async def test_opt_out_is_put_in_front_of_staff_only_when_there_was_risk(db_url, dispatcher, had_risk):
    if had_risk:
        record_escalation("c-stop", "urgent", ["self_harm"])
    tracker = make_tracker([user_event("STOP", "opt_out")], sender_id="c-stop")
    assert await ActionOptOut().run(dispatcher, tracker, {}) == []
    with transaction() as s:
        rows = s.execute(select(Escalation).where(Escalation.conversation_id == "c-stop")).scalars().all()
        kinds = [e.kind for r in rows for e in r.events]
    assert kinds == (["created", "opted_out"] if had_risk else [])
