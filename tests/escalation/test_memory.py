"""Conversation memory of risk: what a conversation showed earlier shapes what follows."""

import datetime as dt

import pytest

from bot.escalation import memory
from bot.escalation.engine import record_escalation, resolve
from bot.escalation.memory import ConversationRisk, after_message, raised_to, stand_down

START = ConversationRisk()


def run(*messages):
    state = START
    steps = []
    for level, signals in messages:
        step = after_message(state, level, signals)
        steps.append(step)
        state = step.memory
    return state, steps


def test_a_means_named_after_thoughts_of_dying_is_imminent():
    state, steps = run(("urgent", ["suicidal_ideation"]), ("urgent", ["means"]))
    assert steps[1].message_level == "imminent" and steps[1].upgraded
    assert state.level == "imminent" and state.emergency
    assert memory.AFTER_IDEATION in state.signals


@pytest.mark.parametrize("place", ["at_height", "setting"])
def test_a_dangerous_place_named_after_thoughts_of_dying_is_imminent(place):
    state, steps = run(("urgent", ["suicidal_ideation"]), ("none", []), ("concern", [place]))
    assert steps[2].message_level == "imminent" and state.emergency


def test_a_means_without_thoughts_of_dying_earlier_is_rated_as_the_message_says():
    state, steps = run(("none", []), ("urgent", ["means"]))
    assert steps[1].message_level == "urgent" and not steps[1].upgraded
    assert state.level == "urgent" and not state.emergency


def test_a_negated_or_idiomatic_place_never_upgrades():
    state, steps = run(("urgent", ["suicidal_ideation"]), ("none", ["at_height", "negated"]))
    assert steps[1].message_level == "none" and not state.emergency


def test_a_message_raises_the_level_and_a_calmer_one_never_lowers_it():
    state, _ = run(("concern", ["distress"]), ("urgent", ["self_harm"]), ("none", []),
                   ("concern", []))
    assert state.level == "urgent"
    state, _ = run(("imminent", ["overdose"]), ("none", []), ("none", []))
    assert state.level == "imminent" and state.emergency


def test_an_unknown_level_lowers_nothing():
    state, steps = run(("urgent", ["self_harm"]), ("weird", []), (None, []))
    assert state.level == "urgent" and steps[1].message_level == "none"


def test_standing_down_ends_the_emergency_but_keeps_the_record():
    state, _ = run(("urgent", ["suicidal_ideation"]), ("imminent", ["at_height"]))
    calm = stand_down(state)
    assert not calm.emergency and calm.level == "imminent" and "suicidal_ideation" in calm.signals
    # Thoughts of dying are remembered after standing down: a means later is imminent again.
    again = after_message(calm, "urgent", ["means"])
    assert again.message_level == "imminent" and again.memory.emergency


def test_the_dialogue_can_raise_to_imminent_and_support_changes_nothing():
    assert raised_to(START, "imminent") == ConversationRisk("imminent", True, ())
    assert raised_to(START, "support") == START
    assert raised_to(ConversationRisk("imminent", False, ()), "urgent").emergency is False


def test_slots_round_trip():
    state = ConversationRisk("urgent", False, ("self_harm",))
    assert memory.from_slots("urgent", None, ["self_harm"]) == state
    assert memory.from_slots(None, None, None) == START
    assert memory.from_slots("support", True, []) == ConversationRisk("none", True, ())


def test_resolved_after_only_counts_a_resolution_by_staff_after_the_emergency(db_url):
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    assert not memory.resolved_after("c-mem", since)  # no escalation at all
    rec = record_escalation("c-mem", "imminent", ["at_height"])
    assert not memory.resolved_after("c-mem", since)  # live: someone is still needed
    resolve(rec.ref, "staff:amy", "supported")
    assert memory.resolved_after("c-mem", since)
    assert not memory.resolved_after("c-mem", dt.datetime.now(dt.timezone.utc)
                                     + dt.timedelta(seconds=60))  # resolved before it began
    record_escalation("c-mem", "urgent", ["self_harm"])  # a new one is live again
    assert not memory.resolved_after("c-mem", since)
