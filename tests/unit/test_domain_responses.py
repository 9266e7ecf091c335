"""Every reply the assistant can send fits one SMS and follows the line's content rules."""

from pathlib import Path

import pytest
import yaml

from bot.sms.segments import GSM7, encoding_of, segment_count

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
RESPONSES = [
    (name, variant["text"])
    for name, variants in DOMAIN["responses"].items()
    for variant in variants
]


@pytest.mark.parametrize("name,text", RESPONSES, ids=[n for n, _ in RESPONSES])
def test_reply_is_one_sms_of_plain_characters(name, text):
    assert encoding_of(text) == GSM7, f"{name} has characters that force UCS-2 (70-char segments)"
    assert len(text) <= 306 and segment_count(text) <= 2, f"{name} is longer than 306 GSM-7 characters"


def test_imminent_reply_sends_to_999_first():
    text = DOMAIN["responses"]["utter_risk_imminent"][0]["text"]
    assert text.startswith("Please call 999")
    assert "A&E" in text


def test_urgent_reply_gives_the_numbers_and_offers_a_person():
    text = DOMAIN["responses"]["utter_risk_urgent"][0]["text"]
    for needle in ("116 123", "111, option 2", "999", "on-call team", "automated"):
        assert needle in text


def test_opening_says_it_is_automated_confidential_and_how_to_reach_a_human():
    opening = " ".join(
        DOMAIN["responses"][n][0]["text"] for n in ("utter_greet", "utter_confidentiality")
    )
    for needle in ("automated assistant", "not a person", "confidential", "risk", "HUMAN", "999"):
        assert needle in opening


@pytest.mark.parametrize("name,text", RESPONSES, ids=[n for n, _ in RESPONSES])
def test_no_reply_promises_what_the_line_cannot_keep(name, text):
    lowered = text.lower()
    for phrase in ("i promise", "everything will be fine", "right away someone will call", "guarantee"):
        assert phrase not in lowered, f"{name} makes a promise: {phrase!r}"
