"""The survey's rules for one message (bot/feedback/survey.py): risk always wins, numbers and
words, SKIP and STOP, one re-ask then a polite end, and who may be asked."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.feedback import questions, survey
from bot.feedback.survey import Standing, State

Q = questions.load()
NOW = dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.timezone.utc)  # noqa: UP017  (3.10)


def _asking(position: int = 0, set_name: str = "default") -> State:
    return State(survey.ASKING, set_name, position)


def _run(*messages: str, audience=None, risk=None):
    state = survey.first(Q, audience)
    outcomes = []
    for i, text in enumerate(messages):
        outcome = survey.reply(Q, state, text, (risk or {}).get(i, "none"))
        outcomes.append(outcome)
        state = outcome.state
    return outcomes


def test_yes_then_a_number_a_word_a_skip_and_free_text():
    out = _run("yes", "1", "Partly", "skip", "you were kind")
    assert out[0].replies[0].text == Q.sets["default"][0].prompt()
    assert out[1].answer == survey.Answer("listened", "listened", 1, "yes")
    assert out[2].answer == survey.Answer("valued", "valued", 2, "partly")
    assert out[3].answer == survey.Answer("connected", "connected", None, None)  # skipped
    assert out[4].comment == "you were kind" and out[4].answer is None
    assert out[4].state.status == survey.DONE and out[4].replies[0].text == Q.thanks
    assert not any(o.passthrough for o in out)


def test_didnt_need_it_by_word_or_number():
    question = Q.sets["default"][2]
    assert survey.choice_of(question, "Didn't need it.") == 4
    assert survey.choice_of(question, "didnt need it") == 4
    assert survey.choice_of(question, " 4 ") == 4
    assert survey.choice_of(question, "5") is None


def test_the_carers_set_for_a_carer():
    out = _run("yes", "3", audience="carers")
    assert out[1].answer.question_id == "carer_listened" and out[1].answer.value == "no"


def test_not_a_choice_gets_the_question_once_more_then_a_polite_end():
    out = _run("yes", "purple", "banana")
    assert out[1].replies[0].text.startswith(survey.AGAIN)
    assert Q.sets["default"][0].prompt() in out[1].replies[0].text
    assert out[1].state.status == survey.ASKING and out[1].state.retried and out[1].answer is None
    assert out[2].state.status == survey.GAVE_UP
    assert out[2].replies[0].text == Q.ended
    assert out[2].passthrough  # what they said is not swallowed: the dialogue hears it


def test_a_good_answer_after_one_re_ask_carries_on_and_resets_the_re_ask():
    out = _run("yes", "purple", "1", "what")
    assert out[2].answer.value == "yes" and not out[2].state.retried
    assert out[3].state.status == survey.ASKING and out[3].state.retried


def test_stop_ends_the_survey_and_no_declines_the_offer():
    assert _run("yes", "STOP")[1].state.status == survey.STOPPED
    declined = _run("no thanks")[0]
    assert declined.state.status == survey.DECLINED and declined.replies[0].text == Q.ended


def test_anything_else_after_the_offer_goes_to_the_dialogue():
    out = _run("actually can I ask about carers support")[0]
    assert out.state.status == survey.LAPSED and out.passthrough and not out.replies


@pytest.mark.parametrize("level", ["urgent", "imminent"])
@pytest.mark.parametrize("state", [
    State(survey.OFFERED, "default"), _asking(0), _asking(3), State(survey.ASKING, "default", 1, True),
])
def test_risk_always_wins(level, state):
    # Even "1" or "yes" read as urgent (the detector's call, not the survey's): no answer kept,
    # the survey ends, the message goes down the normal risk path.
    for text in ("1", "yes", "i want to end it all tonight"):
        outcome = survey.reply(Q, state, text, level)
        assert outcome.state.status == survey.RISK
        assert outcome.passthrough and outcome.answer is None and outcome.comment is None
        assert outcome.replies == ()


def test_concern_does_not_end_the_survey():
    assert survey.reply(Q, _asking(0), "2", "concern").answer.value == "partly"


def test_an_ended_survey_never_speaks():
    for status in survey.ENDS:
        outcome = survey.reply(Q, State(status, "default"), "1")
        assert outcome.passthrough and not outcome.replies and outcome.answer is None


@pytest.mark.parametrize("standing, allowed, why", [
    (Standing(), True, "ok"),
    (Standing(last_asked_at=NOW - dt.timedelta(days=6, hours=23)), False, "asked_this_week"),
    (Standing(last_asked_at=NOW - dt.timedelta(days=7)), True, "ok"),
    (Standing(do_not_ask=True), False, "do_not_ask"),
    (Standing(imminent_unresolved=True, live_escalation=True), False, "imminent_unresolved"),
    (Standing(live_escalation=True), False, "live_escalation"),
    (Standing(survey_live=True), False, "survey_live"),
])
def test_who_may_be_asked(standing, allowed, why):
    assert survey.may_ask(standing, NOW) == (allowed, why)
