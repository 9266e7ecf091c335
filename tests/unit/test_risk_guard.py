"""The risk guard's decisions: the level never goes down, and the intent agrees with it."""

import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.risk import Risk, RiskDetector
from bot.nlu.risk_guard import RiskGuard, combine, intent_for
from bot.nlu.spacy_pipeline import build

T = 0.85


@pytest.mark.parametrize(
    "detected,intent,confidence,expected",
    [
        # The detector's level is a floor: a classifier that disagrees cannot lower it.
        (Risk("imminent", ("overdose",)), "greet", 0.99, "imminent"),
        (Risk("urgent", ("suicidal_ideation",)), "out_of_scope", 0.99, "urgent"),
        # A confident classifier raises distress the detector saw.
        (Risk("concern", ("distress",)), "risk_urgent", 0.95, "urgent"),
        (Risk("urgent", ("plan",)), "risk_imminent", 0.95, "imminent"),
        # On its own, or unsure, or against an understood negation, it raises only to concern.
        (Risk("none", ()), "risk_urgent", 0.99, "concern"),
        (Risk("concern", ("distress",)), "risk_urgent", 0.50, "concern"),
        (Risk("concern", ("negated",)), "risk_urgent", 0.99, "concern"),
        # Nor against a frame the detector read: prose about suicide with no first person in
        # it, or an urgent lexicon reading the risk model set aside.
        (Risk("concern", ("education",)), "risk_urgent", 0.99, "concern"),
        (Risk("concern", ("suicidal_ideation", "unconfirmed")), "risk_urgent", 0.99, "concern"),
        (Risk("none", ()), "greet", 0.99, "none"),
    ],
)
def test_combine_takes_the_higher_reading_and_never_lowers(detected, intent, confidence, expected):
    combined = combine(detected, intent, confidence, T)
    assert combined.level == expected
    assert set(detected.signals) <= set(combined.signals)


@pytest.mark.parametrize(
    "level,intent,expected",
    [
        ("imminent", "greet", "risk_imminent"),
        ("urgent", "ask_services", "risk_urgent"),
        ("concern", "risk_urgent", "feeling_distressed"),
        ("concern", "nlu_fallback", "feeling_distressed"),
        ("concern", "ask_services", None),
        ("none", "greet", None),
    ],
)
def test_intent_agrees_with_the_level(level, intent, expected):
    assert intent_for(Risk(level, ()), intent) == expected


@pytest.fixture(scope="module")
def guard():
    return RiskGuard({"classifier_threshold": T}, RiskDetector(build(patterns=[])))


def _parsed(text, intent, confidence):
    msg = Message(data={"text": text})
    msg.set("intent", {"name": intent, "confidence": confidence}, add_to_output=True)
    msg.set("intent_ranking", [{"name": intent, "confidence": confidence}], add_to_output=True)
    return msg


def test_guard_overrides_the_classifier_for_an_act_under_way(guard):
    (msg,) = guard.process([_parsed("I've taken all my tablets", "greet", 0.97)])
    out = msg.as_dict(only_output_properties=True)
    assert out["risk"]["level"] == "imminent" and out["risk"]["signals"]
    assert out["intent"] == {"name": "risk_imminent", "confidence": 1.0}
    assert out["intent_ranking"][0]["name"] == "risk_imminent"


def test_guard_leaves_everyday_messages_alone(guard):
    (msg,) = guard.process([_parsed("what time does the chemist close", "ask_services", 0.9)])
    out = msg.as_dict(only_output_properties=True)
    assert out["risk"] == {"level": "none", "signals": []}
    assert out["intent"]["name"] == "ask_services"


def test_a_detector_fault_is_treated_as_urgent_not_lost(guard, monkeypatch):
    def broken(_text):
        raise RuntimeError("boom")

    monkeypatch.setattr(guard._detector, "assess", broken)
    (msg,) = guard.process([_parsed("anything", "greet", 0.9)])
    assert msg.get("risk")["level"] == "urgent"
    assert msg.get("intent")["name"] == "risk_urgent"


def test_an_unsure_classifier_guess_the_detector_confirms_is_made_certain(guard):
    (msg,) = guard.process([_parsed("i want to kill myself", "risk_urgent", 0.51)])
    assert msg.get("intent") == {"name": "risk_urgent", "confidence": 1.0}
    assert [r["name"] for r in msg.get("intent_ranking")].count("risk_urgent") == 1
