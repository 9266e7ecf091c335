"""The line's tracker store keeps conversations exactly as Rasa's SQL store does, off the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.store.tracker_store import LineTrackerStore

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet, feeling_distressed]
slots:
  place:
    type: text
    mappings: [{type: custom}]
""")


@pytest.fixture
def stores(db_url):
    line = LineTrackerStore(DOMAIN, host=db_url)
    stock = SQLTrackerStore(DOMAIN, host=db_url)
    yield line, stock
    line.engine.dispose()
    stock.engine.dispose()


def _turn(tracker: DialogueStateTracker, text: str, reply: str) -> None:
    tracker.update(UserUttered(text, intent={"name": "feeling_distressed", "confidence": 0.9},
                               parse_data={"risk": {"level": "concern", "signals": []}}))
    tracker.update(ActionExecuted("utter_listen"))
    tracker.update(BotUttered(reply))
    tracker.update(ActionExecuted("action_listen"))


async def test_a_conversation_saved_turn_by_turn_reads_back_whole_and_in_order(stores):
    line, stock = stores
    tracker = DialogueStateTracker("person-1", DOMAIN.slots)
    tracker.update(SessionStarted())
    tracker.update(ActionExecuted("action_listen"))
    for i in range(3):
        _turn(tracker, f"message {i}", f"reply {i}")
        await line.save(tracker)
    await line.save(tracker)  # saved again with nothing new: nothing stored twice

    again = await line.retrieve("person-1")
    stocks_view = await stock.retrieve("person-1")
    texts = [e.text for e in again.events if isinstance(e, (UserUttered, BotUttered))]
    assert texts == ["message 0", "reply 0", "message 1", "reply 1", "message 2", "reply 2"]
    # Rasa's own store reads exactly what ours wrote (the duty service reads that table too).
    assert [e.as_dict() for e in stocks_view.events] == [e.as_dict() for e in again.events]
    assert again.latest_message.parse_data["risk"]["level"] == "concern"


async def test_what_rasas_store_wrote_reads_back_the_same(stores):
    line, stock = stores
    tracker = DialogueStateTracker("person-2", DOMAIN.slots)
    tracker.update(SessionStarted())
    _turn(tracker, "hello", "hi, I'm an automated assistant")
    await stock.save(tracker)
    ours = await line.retrieve_full_tracker("person-2")
    assert [e.as_dict() for e in ours.events] == [e.as_dict() for e in tracker.events]
    assert await line.retrieve("nobody") is None


async def test_the_event_loop_is_free_while_the_database_works(stores, monkeypatch):
    line, _ = stores
    threads: set[str] = set()
    load = LineTrackerStore._load

    def spy(self, *args):
        threads.add(threading.current_thread().name)
        return load(self, *args)

    monkeypatch.setattr(LineTrackerStore, "_load", spy)
    await line.retrieve("person-3")
    assert threads and threading.current_thread().name not in threads
    assert asyncio.get_running_loop().is_running()
