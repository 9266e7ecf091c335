"""The Rasa server's conversation memory around a turn (bot/rasa_runtime/memory_guard.py).

Rasa's own prediction loop is replaced here by a stand-in that says what a rule would (the
trained model's own turns are in tests/integration/test_line_servers.py): these tests check
what the guard adds before and after it, with Rasa's real tracker, domain and output channel.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.rasa_runtime import memory_guard
from bot.escalation import memory

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = Domain.load(str(ROOT / "domain.yml"))
GREETING = DOMAIN.responses["utter_greet"][0]["text"]


class Processor:
    domain = DOMAIN


def user(text: str, intent: str, level: str, signals=()) -> UserUttered:
    return UserUttered(text, {"name": intent, "confidence": 0.9}, [],
                       {"risk": {"level": level, "signals": list(signals)}})


def new_tracker() -> DialogueStateTracker:
    return DialogueStateTracker.from_events("c-guard", [ActionExecuted("action_listen")],
                                            DOMAIN.slots)


@pytest.fixture
def loop(monkeypatch):
    """Rasa's loop stood in for: answers by the latest intent (greet: the ordinary greeting),
    and records the state the rules would have seen."""
    seen = {}

    async def stand_in(self, output, tracker):
        seen["intent"] = tracker.latest_message.intent.get("name")
        seen["emergency"] = tracker.get_slot("risk_emergency")
        texts = {"greet": [GREETING],
                 "risk_imminent": [DOMAIN.responses["utter_risk_imminent"][0]["text"]],
                 "risk_urgent": [DOMAIN.responses["utter_risk_urgent"][0]["text"]]}
        for text in texts.get(seen["intent"], ["OK."]):
            event = BotUttered(text)
            tracker.update(event)
            await output.send_response(tracker.sender_id, event.message())
        tracker.update(ActionExecuted("action_listen"))

    monkeypatch.setattr(memory_guard, "rasa_run_prediction_loop", stand_in)
    return seen


async def turn(tracker, message) -> list[str]:
    tracker.update(message)
    output = CollectingOutputChannel()
    await memory_guard.run_prediction_loop(Processor(), output, tracker)
    return [m["text"] for m in output.messages]


async def test_after_an_imminent_message_hi_still_gets_the_emergency_numbers(loop, db_url):
    tracker = new_tracker()
    first = await turn(tracker, user("im on the bridge", "risk_imminent", "imminent",
                                     ["at_height"]))
    assert "999" in first[0] and loop["emergency"] is True
    replies = await turn(tracker, user("hi", "greet", "none"))
    joined = " ".join(replies)
    assert "999" in joined and "116 123" in joined and "111" in joined
    assert tracker.get_slot("risk_level") == "imminent"
    # The numbers are in the tracker too (the console's transcript), marked as the guard's.
    last = [e for e in tracker.events if isinstance(e, BotUttered)][-1]
    assert last.metadata == {"line_guard": "emergency_numbers"}


async def test_without_imminent_risk_nothing_is_added(loop):
    tracker = new_tracker()
    await turn(tracker, user("i want to die", "risk_urgent", "urgent", ["suicidal_ideation"]))
    assert await turn(tracker, user("hi", "greet", "none")) == [GREETING]
    assert tracker.get_slot("risk_level") == "urgent" and not tracker.get_slot("risk_emergency")


async def test_a_means_after_thoughts_of_dying_is_answered_as_imminent(loop, db_url):
    tracker = new_tracker()
    await turn(tracker, user("i want to die", "risk_urgent", "urgent", ["suicidal_ideation"]))
    replies = await turn(tracker, user("i bought some rope", "risk_urgent", "urgent", ["means"]))
    assert loop["intent"] == "risk_imminent" and loop["emergency"] is True
    assert "999" in replies[0]
    parse = tracker.latest_message.parse_data
    assert parse["risk"]["level"] == "imminent" and "after_ideation" in parse["risk"]["signals"]


async def test_the_person_standing_down_lowers_the_flag_not_the_record(loop, db_url):
    tracker = new_tracker()
    await turn(tracker, user("im on the bridge", "risk_imminent", "imminent", ["at_height"]))
    tracker.update(SlotSet("risk_emergency", False))  # action_stand_down, after confirming
    assert await turn(tracker, user("hi", "greet", "none")) == [GREETING]
    assert tracker.get_slot("risk_level") == "imminent"


async def test_a_resolution_by_staff_stands_the_emergency_down(loop, db_url):
    from bot.escalation.engine import record_escalation, resolve

    tracker = new_tracker()
    await turn(tracker, user("im on the bridge", "risk_imminent", "imminent", ["at_height"]))
    rec = record_escalation("c-guard", "imminent", ["at_height"])
    assert len(await turn(tracker, user("hi", "greet", "none"))) == 2  # still an emergency
    resolve(rec.ref, "staff:amy", "supported")
    assert await turn(tracker, user("hi", "greet", "none")) == [GREETING]
    assert loop["emergency"] is False and tracker.get_slot("risk_level") == "imminent"


async def test_a_database_failure_never_stands_the_emergency_down(loop, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(memory, "resolved_after", broken)
    tracker = new_tracker()
    await turn(tracker, user("im on the bridge", "risk_imminent", "imminent", ["at_height"]))
    replies = await turn(tracker, user("hi", "greet", "none"))
    assert replies[-1] == memory_guard.EMERGENCY_NUMBERS


async def test_a_turn_that_said_nothing_is_left_to_the_fail_safe(loop, monkeypatch):
    async def silent(self, output, tracker):
        tracker.update(ActionExecuted("action_listen"))

    tracker = new_tracker()
    await turn(tracker, user("im on the bridge", "risk_imminent", "imminent", ["at_height"]))
    monkeypatch.setattr(memory_guard, "rasa_run_prediction_loop", silent)
    monkeypatch.setattr(memory, "resolved_after", lambda *a, **k: False)
    assert await turn(tracker, user("hi", "greet", "none")) == []


def test_installed_on_rasas_processor_by_the_rasa_runtime():
    from rasa.core.processor import MessageProcessor

    from bot import rasa_runtime

    rasa_runtime.install()

    assert MessageProcessor._run_prediction_loop is memory_guard.run_prediction_loop
