"""The plan's conversation as a state machine (bot/plan/flow.py) and its steps and texts
(bot/plan/sections.py): every fixed reply fits one SMS and follows the line's content rules;
what a person writes is kept safely or refused with a clear answer."""

from __future__ import annotations

import re

import pytest

from bot.plan import flow, sections
from bot.plan.flow import BUILDING, CONSENT, OFFERED, Known, State, reply
from bot.sms.segments import GSM7, encoding_of, segment_count

FIXED = {name: value for name, value in vars(flow).items()
         if name.isupper() and isinstance(value, str) and len(value) > 20}
FIXED.update({f"question {i + 1}": sections.question(i) for i in range(len(sections.SECTIONS))})
FIXED["numbers"] = sections.NUMBERS
FIXED["unreadable"] = __import__("bot.plan.store", fromlist=["UNREADABLE"]).UNREADABLE


@pytest.mark.parametrize("name", sorted(FIXED))
def test_every_fixed_reply_is_one_sms_of_plain_words(name):
    text = FIXED[name]
    assert encoding_of(text) == GSM7, name
    assert len(text) <= 306 and segment_count(text) <= 2, name
    assert "\u2014" not in text and "\u2013" not in text and "\u2019" not in text
    lowered = text.lower()
    # Nor what staff may not do ("they will see it", "you don't have to tell them"), nor more
    # than a deletion can say (backups of the database are the deploying service's).
    for phrase in ("i promise", "guarantee", "everything will be fine", "will see your plan",
                   "don't have to tell", "nothing of it is kept"):
        assert phrase not in lowered
    # No text ever asks for STOP: on SMS it is an opt-out word that Twilio acts on.
    assert not re.search(r"\bSTOP\b", text), name


def test_no_step_asks_for_or_names_a_method():
    asked = " ".join(s.question for s in sections.SECTIONS).lower()
    for word in ("pill", "tablet", "rope", "knife", "blade", "overdose", "method", "means",
                 "bridge", "jump", "hang", "cut"):
        assert not re.search(rf"\b{word}", asked), word


def test_the_numbers_are_always_in_the_plan_sent_back_even_when_every_step_was_skipped():
    text = flow.plan_text({}, sms=True)
    for needle in ("116 123", "NHS 111, option 2", "999", "This line"):
        assert needle in text
    assert text.startswith(flow.SMS_HEAD)  # "it may come as more than one text"
    assert flow.plan_text({}, sms=False).startswith(flow.WEB_HEAD)


def test_plan_words_in_any_case_and_either_order():
    assert flow.command("PLAN") == flow.SHOW and flow.command(" plan. ") == flow.SHOW
    assert flow.command("Plan Edit") == flow.command("edit plan") == flow.EDIT
    assert flow.command("DELETE PLAN") == flow.command("plan delete") == flow.DELETE
    assert flow.command("plan share") == flow.SHARE
    assert flow.command("PLAN PRIVATE") == flow.PRIVATE
    assert flow.command("I have a plan to go out") is None
    assert flow.command("planning") is None


def test_plan_with_none_saved_offers_to_make_one_and_yes_starts_step_one():
    out = reply(None, "PLAN", Known())
    assert out.state == State(OFFERED) and out.replies[0].text == flow.OFFER
    assert out.replies[0].choices == ("yes", "no")
    out = reply(out.state, "yes", Known())
    assert out.state == State(BUILDING, 0)
    assert [r.text for r in out.replies] == [flow.INTRO, sections.question(0)]
    assert out.replies[1].choices == ("skip", "done")


def test_no_to_the_offer_ends_it_and_anything_else_goes_to_the_dialogue():
    assert reply(State(OFFERED), "no", Known()).replies[0].text == flow.DECLINED
    other = reply(State(OFFERED), "what's open tonight in Taunton", Known())
    assert other.passthrough and other.state is None and not other.replies


def test_building_keeps_each_answer_skips_and_asks_consent_once_at_the_end():
    state, have = State(BUILDING, 0), {}
    out = reply(state, "I stop sleeping and stop answering my phone", Known(have))
    assert out.save == ("warning_signs", "I stop sleeping and stop answering my phone")
    assert out.state == State(BUILDING, 1)
    assert out.replies[0].text.startswith(flow.SAVED_STEP + " Step 2 of 6.")
    have[out.save[0]] = out.save[1]
    out = reply(out.state, "skip", Known(have))
    assert out.save is None and out.state == State(BUILDING, 2)
    out = reply(out.state, "DONE", Known(have))
    assert out.state == State(CONSENT) and out.replies[0].text == flow.ASK_CONSENT
    yes = reply(out.state, "yes", Known(have))
    assert yes.consent is True and yes.state is None and yes.replies[0].text == flow.CONSENT_YES
    no = reply(out.state, "no", Known(have))
    assert no.consent is False and no.replies[0].text == flow.CONSENT_NO
    # Asked already: done is done.
    assert reply(State(BUILDING, 3), "done", Known(have, share=False)).replies[0].text == flow.FINISHED


def test_the_last_step_finishes_and_stop_keeps_what_was_saved():
    have = {"warning_signs": "x"}
    out = reply(State(BUILDING, 5), "my sister stays with me", Known(have, share=True))
    assert out.save == ("safer", "my sister stays with me") and out.state is None
    assert out.replies[0].text == flow.FINISHED
    assert reply(State(BUILDING, 2), "stop", Known(have)).replies[0].text == flow.STOPPED
    assert reply(State(BUILDING, 0), "stop", Known()).replies[0].text == flow.NOTHING_SAVED


def test_editing_shows_what_a_step_says_and_skip_keeps_it():
    have = {"warning_signs": "not sleeping", "help_myself": "music " * 100}
    out = reply(None, "plan edit", Known(have))
    assert out.state == State(BUILDING, 0, editing=True)
    assert out.replies[0].text == flow.EDIT_INTRO
    assert out.replies[1].text.endswith('You have: "not sleeping". SKIP keeps it.')
    out = reply(out.state, "skip", Known(have))
    assert out.save is None
    # A long answer is cut to fit one SMS in the prompt, never in the plan.
    assert len(out.replies[0].text) <= 306 and '..."' in out.replies[0].text


def test_an_answer_of_20000_characters_is_refused_clearly_and_the_step_stays():
    out = reply(State(BUILDING, 1), "x" * 20_000, Known())
    assert out.save is None and out.state == State(BUILDING, 1)
    assert [r.text for r in out.replies] == [flow.TOO_LONG]
    assert "1,000 characters" in flow.TOO_LONG


@pytest.mark.parametrize("text", ["\x00\x01\x02\x1b\x7f", "   \n\t  ", "\u202e\u202c"])
def test_an_answer_with_no_words_gets_the_same_step_again(text):
    out = reply(State(BUILDING, 1), text, Known())
    assert out.save is None and out.state == State(BUILDING, 1)
    assert out.replies[0].text == flow.EMPTY + " " + sections.question(1)


def test_emoji_only_is_kept_as_written():
    out = reply(State(BUILDING, 1), "\U0001F3B5\U0001F415\u2764\ufe0f", Known())
    assert out.save == ("help_myself", "\U0001F3B5\U0001F415\u2764\ufe0f")


def test_control_characters_and_direction_overrides_are_dropped_not_the_words():
    assert sections.clean("walk\x00 the\x07 dog\r\nring\u202e Sam\t\tat 9") == "walk the dog\nring Sam at 9"
    assert sections.clean("a\n\n\n\nb") == "a\nb"


def test_risk_pauses_building_and_the_dialogue_takes_the_message():
    out = reply(State(BUILDING, 0), "when I want to kill myself", Known(), risk=True)
    assert out.passthrough and out.state is None and out.save is None and not out.replies
    assert [r.text for r in out.after] == [flow.PAUSED]
    # No session, not a plan word: not the plan's at all.
    assert reply(None, "I want to die", Known(), risk=True) is None


def test_never_offered_begun_or_edited_while_at_risk_but_a_plan_comes_back():
    at_risk = Known(at_risk=True)
    assert reply(None, "PLAN", at_risk).replies[0].text == flow.NOT_NOW
    assert reply(None, "make plan", at_risk).state is None
    assert reply(State(OFFERED), "yes", at_risk).replies[0].text == flow.NOT_NOW
    out = reply(None, "PLAN", Known({"warning_signs": "not sleeping"}, at_risk=True), sms=True)
    assert out.replies[0].plan and "Warning signs: not sleeping" in out.replies[0].text


def test_delete_share_and_private_with_and_without_a_plan():
    have = Known({"people_to_ask": "Sam"})
    assert reply(None, "plan delete", have).delete
    assert reply(None, "plan delete", Known()).replies[0].text == flow.NO_PLAN
    assert reply(None, "plan share", have).consent is True
    assert reply(None, "plan private", have).consent is False
    assert reply(None, "plan share", Known()).consent is None


def test_a_plan_word_mid_building_ends_the_building_and_does_what_it_says():
    out = reply(State(BUILDING, 3), "PLAN", Known({"warning_signs": "x"}))
    assert out.state is None and out.replies[0].plan


@pytest.mark.parametrize("word", ["PLAN", "PLAN EDIT", "MAKE PLAN", "PLAN DELETE", "PLAN SHARE",
                                  "PLAN PRIVATE"])
def test_a_plan_word_as_a_numbers_first_message_says_the_assistant_is_automated(word):
    """No opening comes before a plan word (it never reaches Rasa): the first reply says it."""
    out = reply(None, word, Known())
    assert "automated assistant" in out.replies[0].text
