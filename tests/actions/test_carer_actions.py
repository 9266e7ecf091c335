"""A carer's report of risk, and what the cared-for person has said about sharing
(docs/carers.md): exact events, and what staff are given, against a real database."""

import pytest
from rasa_sdk.events import SlotSet
from sqlalchemy import select

from actions.escalation import (
    CARER_CONTACT,
    ActionRecordCaredForSharing,
    ActionRecordConsent,
    ActionRecordEscalation,
    ActionRequestHuman,
)
from bot.escalation.engine import record_escalation
from bot.store.db import transaction
from bot.store.models import Escalation
from tests.actions.conftest import bot_event, make_tracker, user_event

SON_AT_RISK = {"level": "urgent", "signals": ["suicidal_ideation", "third_party_risk"]}


def _escalation(sender: str) -> Escalation:
    with transaction() as s:
        esc = s.execute(select(Escalation).where(Escalation.conversation_id == sender)).scalar_one()
        esc.events  # noqa: B018  loaded before the session closes
        return esc


def _answer(sender: str, intent: str, ref, question="utter_ask_cared_for_sharing", slots=None):
    return make_tracker(
        [bot_event(question), user_event("yes" if intent == "affirm" else "no", intent,
                                         {"level": "none", "signals": []})],
        sender_id=sender, slots={"escalation_ref": ref, **(slots or {})},
    )


async def test_a_carers_report_is_urgent_with_third_party_risk_and_the_carer_as_contact(
    db_url, dispatcher
):
    tracker = make_tracker(
        [user_event("my son keeps saying he wants to die", "risk_urgent", SON_AT_RISK)],
        sender_id="c-carer-risk", slots={"risk_about_other": True},
    )
    events = await ActionRecordEscalation().run(dispatcher, tracker, {})
    esc = _escalation("c-carer-risk")
    assert esc.level == "urgent" and "third_party_risk" in esc.signals
    assert esc.summary["contact"] == CARER_CONTACT
    assert esc.summary["audience"] == "carers"
    # Counted as a carer's conversation from now on (report, feedback questions, directory).
    assert events == [SlotSet("risk_level", "urgent"), SlotSet("escalation_ref", esc.ref),
                      SlotSet("audience", "carers")]
    assert dispatcher.messages == []  # the rules say what comes next


async def test_the_writers_own_risk_has_no_carer_contact(db_url, dispatcher):
    tracker = make_tracker(
        [user_event("i want to die", "risk_urgent",
                    {"level": "urgent", "signals": ["suicidal_ideation"]})],
        sender_id="c-own-risk", slots={"audience": "carers"},
    )
    await ActionRecordEscalation().run(dispatcher, tracker, {})
    esc = _escalation("c-own-risk")
    assert "contact" not in esc.summary and "third_party_risk" not in esc.signals


async def test_asking_for_a_person_in_carer_mode_is_not_a_report_of_risk(db_url, dispatcher):
    tracker = make_tracker([user_event("human", "request_human")], sender_id="c-carer-human",
                           slots={"audience": "carers"})
    await ActionRequestHuman().run(dispatcher, tracker, {})
    esc = _escalation("c-carer-human")
    assert esc.level == "support" and "contact" not in esc.summary
    assert esc.summary["audience"] == "carers"


@pytest.mark.parametrize("intent,agreed,value", [("affirm", True, "agreed"),
                                                 ("deny", False, "not_agreed")])
async def test_the_cared_for_persons_wishes_are_recorded_apart_from_consent(
    db_url, dispatcher, intent, agreed, value
):
    rec = record_escalation("c-wishes", "urgent", ["third_party_risk"])
    # The carer's own consent first: YES to passing on what they said.
    await ActionRecordConsent().run(
        dispatcher, _answer("c-wishes", "affirm", rec.ref, "utter_ask_consent_share_carer"), {})
    events = await ActionRecordCaredForSharing().run(
        dispatcher, _answer("c-wishes", intent, rec.ref), {})
    assert events == [SlotSet("cared_for_sharing", value)]
    esc = _escalation("c-wishes")
    # The carer's consent is theirs alone; the cared-for person's wishes sit apart from it.
    assert esc.summary["consent"] == {"share_summary": True}
    wishes = esc.summary["cared_for_wishes"]
    assert wishes["share_with_carer"] is agreed and wishes["reported_by"] == "carer"
    assert wishes["note"].startswith("the carer ")
    entry = esc.events[-1]
    assert (entry.kind, entry.actor, entry.data) == (
        "cared_for_wishes_reported", "assistant", {"share_with_carer": agreed})


async def test_wishes_told_before_any_escalation_go_with_the_later_one(db_url, dispatcher):
    events = await ActionRecordCaredForSharing().run(
        dispatcher, _answer("c-wishes-first", "affirm", None), {})
    assert events == [SlotSet("cared_for_sharing", "agreed")]
    tracker = make_tracker(
        [user_event("my son keeps saying he wants to die", "risk_urgent", SON_AT_RISK)],
        sender_id="c-wishes-first",
        slots={"risk_about_other": True, "cared_for_sharing": "agreed"},
    )
    await ActionRecordEscalation().run(dispatcher, tracker, {})
    esc = _escalation("c-wishes-first")
    assert esc.summary["cared_for_wishes"]["share_with_carer"] is True
    assert esc.summary["consent"] == {}  # nothing the carer said counts as anyone's consent


@pytest.mark.parametrize("question,intent", [
    ("utter_ask_consent_share_carer", "affirm"),  # the carer's own consent, not the wishes
    ("utter_ask_cared_for_sharing", "carer_self_support"),  # not an answer
])
async def test_only_a_yes_or_no_to_the_wishes_question_is_recorded(
    db_url, dispatcher, question, intent
):
    rec = record_escalation("c-wishes-other", "urgent", ["third_party_risk"])
    tracker = _answer("c-wishes-other", intent, rec.ref, question)
    assert await ActionRecordCaredForSharing().run(dispatcher, tracker, {}) == []
    esc = _escalation("c-wishes-other")
    assert "cared_for_wishes" not in esc.summary
    assert "cared_for_wishes_reported" not in [e.kind for e in esc.events]


async def test_the_wishes_never_fail_the_turn_when_the_database_is_down(monkeypatch, dispatcher):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    from bot import settings

    settings.reset()
    try:
        events = await ActionRecordCaredForSharing().run(
            dispatcher, _answer("c-down", "deny", "EABCDE"), {})
    finally:
        settings.reset()
    assert events == [SlotSet("cared_for_sharing", "not_agreed")]
    assert dispatcher.messages == []
