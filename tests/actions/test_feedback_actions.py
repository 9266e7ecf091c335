"""action_feedback_offer (after goodbye) and the opt-out's effect on the survey."""

from __future__ import annotations

import pytest

from actions.escalation import ActionOptOut
from actions.feedback import ActionFeedbackOffer
from bot.escalation.engine import record_escalation
from bot.feedback import questions, store
from tests.actions.conftest import make_tracker, user_event

pytestmark = pytest.mark.asyncio


def _bye(sender: str, channel: str = "rest", slots=None):
    event = dict(user_event("bye", "goodbye"), input_channel=channel)
    return make_tracker([event], sender_id=sender, slots=slots)


async def test_goodbye_offers_the_survey_once(db_url, dispatcher):
    assert await ActionFeedbackOffer().run(dispatcher, _bye("c-fb"), {}) == []
    assert [m["text"] for m in dispatcher.messages] == [questions.load().offer]
    assert store.has_live_survey("c-fb")
    later = type(dispatcher)()
    await ActionFeedbackOffer().run(later, _bye("c-fb"), {})
    assert later.messages == []  # not twice


async def test_web_chat_gets_buttons(db_url, dispatcher):
    await ActionFeedbackOffer().run(dispatcher, _bye("web-fb", "socketio"), {})
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["yes", "no"]


async def test_not_offered_in_an_emergency_or_with_a_live_escalation(db_url, dispatcher):
    await ActionFeedbackOffer().run(dispatcher, _bye("c-em", slots={"risk_emergency": True}), {})
    record_escalation("c-live", "imminent", ["plan"])
    await ActionFeedbackOffer().run(dispatcher, _bye("c-live"), {})
    assert dispatcher.messages == []
    assert not store.has_live_survey("c-em") and not store.has_live_survey("c-live")


async def test_an_opt_out_means_never_asked(db_url, dispatcher):
    await ActionOptOut().run(dispatcher, make_tracker([user_event("STOP", "opt_out")], "c-out"), {})
    await ActionFeedbackOffer().run(dispatcher, _bye("c-out"), {})
    assert dispatcher.messages == []
    assert store.standing("c-out").do_not_ask
