"""The line's tracker store keeps conversations exactly as Rasa's SQL store does, off the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.rasa_runtime.tracker_store import LineTrackerStore

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


async def test_a_remembered_conversation_reads_and_saves_without_asking_the_database(stores):
    line, stock = stores
    tracker = DialogueStateTracker("person-4", DOMAIN.slots)
    tracker.update(SessionStarted())
    _turn(tracker, "first", "reply one")
    await line.save(tracker)  # new: counted (0), stored, remembered
    queries: list[str] = []

    from sqlalchemy import event

    def spy(conn, cursor, statement, *args):
        queries.append(statement.split()[0].upper())

    event.listen(line.engine, "before_cursor_execute", spy)
    try:
        again = await line.retrieve("person-4")
        _turn(again, "second", "reply two")
        await line.save(again)
    finally:
        event.remove(line.engine, "before_cursor_execute", spy)
    assert queries == ["INSERT"]  # no SELECT: neither the read nor the count
    # What the table holds is what Rasa's own store reads.
    texts = [e.text for e in (await stock.retrieve("person-4")).events
             if isinstance(e, (UserUttered, BotUttered))]
    assert texts == ["first", "reply one", "second", "reply two"]


async def test_a_new_conversation_is_looked_for_once_and_saved_without_a_count(stores):
    line, stock = stores
    queries: list[str] = []

    from sqlalchemy import event

    def spy(conn, cursor, statement, *args):
        queries.append(statement.split()[0].upper())

    event.listen(line.engine, "before_cursor_execute", spy)
    try:
        assert await line.retrieve("person-new") is None  # looked for: one SELECT
        tracker = DialogueStateTracker("person-new", DOMAIN.slots)
        tracker.update(SessionStarted())
        _turn(tracker, "hello", "hi, I'm an automated assistant")
        await line.save(tracker)
    finally:
        event.remove(line.engine, "before_cursor_execute", spy)
    assert queries == ["SELECT", "INSERT"]
    assert [e.as_dict() for e in (await stock.retrieve("person-new")).events] \
        == [e.as_dict() for e in tracker.events]


async def test_a_new_session_is_remembered_as_rasa_would_read_it(stores):
    line, stock = stores
    tracker = DialogueStateTracker("person-5", DOMAIN.slots)
    tracker.update(SessionStarted(timestamp=1000.0))
    _turn(tracker, "last week", "ok")
    await line.save(tracker)
    old = await line.retrieve("person-5")
    old.update(ActionExecuted("action_session_start"))
    old.update(SessionStarted())
    _turn(old, "tonight", "I'm here")
    await line.save(old)
    remembered = await line.retrieve("person-5")
    from_table = await stock.retrieve("person-5")
    assert [e.as_dict() for e in remembered.events] == [e.as_dict() for e in from_table.events]
    assert "last week" not in [getattr(e, "text", None) for e in remembered.events]


async def test_a_failed_save_is_forgotten_and_counted_again(stores, monkeypatch):
    line, stock = stores
    tracker = DialogueStateTracker("person-6", DOMAIN.slots)
    tracker.update(SessionStarted())
    _turn(tracker, "one", "a")
    await line.save(tracker)
    again = await line.retrieve("person-6")
    _turn(again, "two", "b")
    real = line.session_scope

    def broken():
        raise RuntimeError("database down")

    monkeypatch.setattr(line, "session_scope", broken)
    with pytest.raises(RuntimeError):
        await line.save(again)
    monkeypatch.setattr(line, "session_scope", real)
    await line.save(again)  # counted again: nothing lost, nothing twice
    texts = [e.text for e in (await stock.retrieve("person-6")).events
             if isinstance(e, (UserUttered, BotUttered))]
    assert texts == ["one", "a", "two", "b"]


async def test_several_rasa_servers_share_nothing_in_memory(db_url, monkeypatch):
    from bot import settings as settings_module

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/15")
    settings_module.reset()
    store = LineTrackerStore(DOMAIN, host=db_url)
    try:
        tracker = DialogueStateTracker("person-7", DOMAIN.slots)
        tracker.update(SessionStarted())
        await store.save(tracker)
        await store.retrieve("person-7")
        assert store.cache_size == 0 and not store._sessions
    finally:
        store.engine.dispose()
        settings_module.reset()


async def test_without_the_speed_ups_it_is_rasas_own_store(stores, monkeypatch):
    """RASA_PATCHES=off (bot.rasa_runtime.install sets ``stock``): no memory, Rasa's methods."""
    line, stock = stores
    monkeypatch.setattr(LineTrackerStore, "stock", True)
    load = LineTrackerStore._load
    monkeypatch.setattr(LineTrackerStore, "_load", lambda *a: pytest.fail("ours ran"))
    tracker = DialogueStateTracker("person-stock", DOMAIN.slots)
    tracker.update(SessionStarted())
    _turn(tracker, "message", "reply")
    await line.save(tracker)
    again = await line.retrieve("person-stock")
    assert [e.as_dict() for e in again.events] == [
        e.as_dict() for e in (await stock.retrieve("person-stock")).events]
    assert line._remembered("person-stock") is None
    monkeypatch.setattr(LineTrackerStore, "_load", load)
