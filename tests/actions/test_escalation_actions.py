"""Escalation actions: exact events and messages, against a real database."""

import pytest
from rasa_sdk.events import SlotSet
from sqlalchemy import select

from actions.escalation import (
    COULD_NOT_REACH_TEAM,
    ActionEscalateNotSafe,
    ActionOptOut,
    ActionRecordConsent,
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


# --- consent ---------------------------------------------------------------------------------

def _consent_tracker(sender: str, question: str, intent: str, text: str, ref: str | None):
    return make_tracker(
        [bot_event("utter_human_requested"), bot_event(question),
         user_event(text, intent, {"level": "none", "signals": []})],
        sender_id=sender, slots={"escalation_ref": ref},
    )


def _escalation(ref: str) -> Escalation:
    with transaction() as s:
        esc = s.execute(select(Escalation).where(Escalation.ref == ref)).scalar_one()
        esc.events  # noqa: B018  loaded before the session closes
        return esc


async def test_yes_to_sharing_is_recorded_and_the_summary_says_so(db_url, dispatcher):
    rec = record_escalation("c-consent-yes", "support", ["asked_for_human"])
    tracker = _consent_tracker("c-consent-yes", "utter_ask_consent_share", "affirm", "yes", rec.ref)
    assert await ActionRecordConsent().run(dispatcher, tracker, {}) == []
    esc = _escalation(rec.ref)
    assert esc.summary["consent"] == {"share_summary": True}
    assert esc.summary["sharing"].startswith("consent given")
    entry = esc.events[-1]
    assert (entry.kind, entry.actor, entry.data) == (
        "consent_recorded", "assistant", {"topic": "share_summary", "given": True})
    assert dispatcher.messages == []  # the rules say what comes next, not the action


async def test_no_is_respected_and_staff_are_told_consent_was_not_given(db_url, dispatcher):
    rec = record_escalation("c-consent-no", "urgent", ["self_harm"])
    tracker = _consent_tracker("c-consent-no", "utter_ask_consent_share_now", "deny", "no", rec.ref)
    await ActionRecordConsent().run(dispatcher, tracker, {})
    esc = _escalation(rec.ref)
    assert esc.summary["consent"] == {"share_summary": False}
    assert "NOT given" in esc.summary["sharing"]
    # The alert is owed whatever the answer: the escalation is still waiting for a human.
    assert esc.status == "open" and esc.level == "urgent"


async def test_consent_survives_the_summary_of_a_later_risk_message(db_url, dispatcher):
    rec = record_escalation("c-consent-keep", "support", ["asked_for_human"])
    await ActionRecordConsent().run(
        dispatcher,
        _consent_tracker("c-consent-keep", "utter_ask_consent_share", "deny", "no", rec.ref), {})
    # A further risk message: the action builds a fresh summary (with an empty consent).
    tracker = make_tracker(
        [user_event("i want to die", "risk_urgent", {"level": "urgent", "signals": ["suicidal_ideation"]})],
        sender_id="c-consent-keep", slots={"escalation_ref": rec.ref},
    )
    await ActionRecordEscalation().run(dispatcher, tracker, {})
    esc = _escalation(rec.ref)
    assert esc.level == "urgent"
    assert esc.summary["consent"] == {"share_summary": False}
    assert "NOT given" in esc.summary["sharing"]


async def test_yes_to_a_sanctuary_house_lets_staff_refer(db_url, dispatcher):
    from bot.escalation import engine

    rec = record_escalation("c-consent-house", "urgent", ["self_harm"])
    tracker = _consent_tracker(
        "c-consent-house", "utter_ask_consent_sanctuary", "affirm", "yes", rec.ref)
    await ActionRecordConsent().run(dispatcher, tracker, {})
    assert _escalation(rec.ref).summary["consent"] == {"sanctuary": True}
    engine.acknowledge(rec.ref, "staff:sam")
    assert engine.refer(rec.ref, "staff:sam", "harbour_house").status == "referred"


@pytest.mark.parametrize("question,intent", [
    ("utter_glad_safe", "affirm"),  # a yes to something else is not consent
    ("utter_ask_consent_share", "feeling_distressed"),  # not an answer to the question
])
async def test_only_a_yes_or_no_to_a_consent_question_is_recorded(db_url, dispatcher, question, intent):
    rec = record_escalation("c-consent-other", "support", ["asked_for_human"])
    tracker = _consent_tracker("c-consent-other", question, intent, "...", rec.ref)
    assert await ActionRecordConsent().run(dispatcher, tracker, {}) == []
    esc = _escalation(rec.ref)
    assert "consent_recorded" not in [e.kind for e in esc.events]
    assert not esc.summary.get("consent")


async def test_consent_never_fails_the_turn_when_the_database_is_down(monkeypatch, dispatcher):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    from bot import settings

    settings.reset()
    try:
        tracker = _consent_tracker("c-down", "utter_ask_consent_share", "affirm", "yes", "EABCDE")
        assert await ActionRecordConsent().run(dispatcher, tracker, {}) == []
    finally:
        settings.reset()
    assert dispatcher.messages == []


@pytest.fixture
def test_rota(tmp_path, monkeypatch):
    """The action reads this rota (everyone on call round the clock), not the example's."""
    from bot.escalation import wait
    from bot.escalation.rota_store import RotaSource
    from tests.escalation.test_wait import ROTA

    rota_file = tmp_path / "rota.yml"
    rota_file.write_text(ROTA)
    monkeypatch.setattr(wait, "_shared_rota", RotaSource(str(rota_file)))


async def test_asking_for_a_human_gives_the_estimate_for_the_first_reply(db_url, dispatcher,
                                                                         test_rota):
    record_escalation("someone-else", "support", ["asked_for_human"])
    tracker = make_tracker([user_event("human", "request_human")], sender_id="c-wait")
    events = await ActionRequestHuman().run(dispatcher, tracker, {})
    esc = _only_escalation("c-wait")
    assert events == [SlotSet("escalation_ref", esc.ref), SlotSet(
        "wait_estimate",
        "I don't know yet how long it may take. Waiting before you: 1. On call now: 2.")]
    assert dispatcher.messages == []  # the words are utter_human_requested's


async def test_a_slow_estimate_never_holds_up_the_reply(db_url, dispatcher, test_rota,
                                                        monkeypatch):
    import time

    from actions import escalation as module

    monkeypatch.setattr(module.wait, "first_reply", lambda ref, source: time.sleep(3))
    tracker = make_tracker([user_event("human", "request_human")], sender_id="c-slow")
    started = time.monotonic()
    events = await ActionRequestHuman().run(dispatcher, tracker, {})
    assert time.monotonic() - started < 1.5
    assert events[-1] == SlotSet("wait_estimate", None)  # the reply's usual words
    assert _only_escalation("c-slow").level == "support"


async def test_a_failed_estimate_leaves_the_usual_words(db_url, dispatcher, test_rota, monkeypatch):
    from actions import escalation as module

    def broken(ref, source):
        raise RuntimeError("rota unreadable")

    monkeypatch.setattr(module.wait, "first_reply", broken)
    tracker = make_tracker([user_event("human", "request_human")], sender_id="c-broken")
    events = await ActionRequestHuman().run(dispatcher, tracker, {})
    assert events[-1] == SlotSet("wait_estimate", None)
