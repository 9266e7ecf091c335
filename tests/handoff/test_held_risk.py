"""Risk while a human holds the conversation: the holder and the duty manager are alerted at
once, exactly once, across restarts and with two duty services; against the real PostgreSQL,
Rasa's own SQL tracker store writing the ``events`` table, and the fake Twilio API."""

from __future__ import annotations

import asyncio
import time

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.engine import make_url

from bot.escalation.delivery import outbox_sender
from bot.escalation import engine
from bot.escalation.engine import record_escalation
from bot.escalation.watch import HeldRiskWatcher
from bot.store.db import transaction
from bot.store.models import Escalation
from tests.handoff.conftest import CRISIS, MANAGER, PEER, eventually

SECRET = "the exact words the person wrote"


@pytest.fixture
async def tracker_store(pg_env):
    """Rasa's SQLTrackerStore on the test database, as the Rasa server would write it."""
    url = make_url(pg_env)
    store = SQLTrackerStore(Domain.empty(), dialect="postgresql", host=url.host, port=url.port,
                            db=url.database, username=url.username)
    yield store
    store.engine.dispose()


async def say(store: SQLTrackerStore, sender: str, text: str, level: str,
              at: float | None = None) -> None:
    """The person's message as a paused Rasa server saves it: NLU ran, nothing was predicted."""
    tracker = await store.retrieve(sender) or DialogueStateTracker(sender, [])
    signals = {"none": [], "concern": ["distress"], "urgent": ["self_harm"],
               "imminent": ["overdose_taken"]}[level]
    tracker.update(UserUttered(
        text, intent={"name": "feeling_distressed", "confidence": 0.9},
        parse_data={"risk": {"level": level, "signals": signals}},
        timestamp=at,
    ))
    await store.save(tracker)


@pytest.fixture
async def watchers():
    started: list = []

    async def start(count: int = 1):
        sender = outbox_sender(poll_s=0.05, backoff_base_s=0.02, backoff_cap_s=0.1,
                              send_timeout_s=2.0)
        await sender.start()
        started.append(sender)
        out = []
        for _ in range(count):
            w = HeldRiskWatcher(poll_s=0.05, on_enqueued=sender.wake)
            await w.start()
            started.append(w)
            out.append(w)
        return out

    yield start
    for item in reversed(started):
        await item.stop()


def trail(ref: str) -> list[tuple[str, dict]]:
    with transaction() as s:
        esc = engine.load(s, ref, lock=False)
        return [(e.kind, dict(e.data or {})) for e in esc.events]


def held(conversation: str, staff: str = "staff:pia", name: str = "Pia") -> str:
    rec = record_escalation(conversation, "support", ["asked_for_human"], "rest")
    engine.take_over(rec.ref, staff, name)
    return rec.ref


async def test_imminent_message_while_held_alerts_holder_and_duty_manager_at_once(
    pg_env, fake_twilio, tracker_store, watchers
):
    await say(tracker_store, "held-1", "before anyone joined", "urgent", at=time.time() - 60)
    ref = held("held-1")
    await watchers()
    await asyncio.sleep(0.3)
    assert fake_twilio.created == []  # the message from before the take-over was the bot's
    started = time.monotonic()
    await say(tracker_store, "held-1", SECRET, "imminent")
    holder = await eventually(lambda: fake_twilio.to(PEER), timeout=2, what="holder alerted")
    manager = await eventually(lambda: fake_twilio.to(MANAGER), timeout=2, what="manager alerted")
    assert holder[0]["at"] - started < 2.0 and manager[0]["at"] - started < 2.0
    body = holder[0]["Body"]
    assert ref in body and "IMMINENT" in body and "Pia" in body and "/duty/e/" in body
    assert SECRET not in body and manager[0]["Body"] == body
    assert fake_twilio.to(CRISIS) == []  # the holder and the duty manager, not the ladder
    entries = [d for k, d in trail(ref) if k == "risk_while_held"]
    assert len(entries) == 1
    assert entries[0]["level"] == "imminent" and entries[0]["holder"] == "staff:pia"
    assert sorted(entries[0]["staff"]) == ["pia", "sam"]
    assert SECRET not in repr(trail(ref))
    with transaction() as s:
        esc = engine.load(s, ref, lock=False)
        # Raised, never lowered, and still held: no ladder restarts over the holder's head.
        assert (esc.level, esc.status) == ("imminent", "active")
        assert "overdose_taken" in esc.signals


async def test_a_restarted_watcher_neither_repeats_nor_misses_an_alert(
    pg_env, fake_twilio, tracker_store, watchers
):
    ref = held("held-2")
    [first] = await watchers()
    await say(tracker_store, "held-2", "one", "urgent")
    await eventually(lambda: fake_twilio.to(MANAGER), what="first alert")
    await first.stop()
    # While no watcher runs: a calm message, then a risky one.
    await say(tracker_store, "held-2", "two", "none")
    await say(tracker_store, "held-2", "three", "urgent")
    await watchers()
    await eventually(lambda: len(fake_twilio.to(MANAGER)) >= 2, what="the missed message alerted")
    await asyncio.sleep(0.5)
    assert len(fake_twilio.to(MANAGER)) == 2 and len(fake_twilio.to(PEER)) == 2
    assert [k for k, _ in trail(ref)].count("risk_while_held") == 2


async def test_two_duty_services_alert_each_message_once(
    pg_env, fake_twilio, tracker_store, watchers
):
    refs = [held(f"held-many-{i}") for i in range(4)]
    await watchers(count=2)
    for i in range(4):
        await say(tracker_store, f"held-many-{i}", "x", "urgent")
    await eventually(lambda: len(fake_twilio.to(MANAGER)) >= 4, what="four alerts")
    await asyncio.sleep(0.5)
    bodies = [m["Body"] for m in fake_twilio.to(MANAGER)]
    assert len(bodies) == 4 and all(sum(ref in b for b in bodies) == 1 for ref in refs)


async def test_calm_messages_and_handed_back_conversations_raise_nothing(
    pg_env, fake_twilio, tracker_store, watchers
):
    ref = held("held-3")
    other = held("held-4", staff="staff:nobody-on-rota", name="Alex")
    engine.hand_back(other, "staff:nobody-on-rota")  # the assistant answers held-4 again
    await watchers()
    await say(tracker_store, "held-3", "feeling a bit better", "concern")
    await say(tracker_store, "held-4", "i want to hurt myself", "urgent")
    await asyncio.sleep(0.6)
    assert fake_twilio.created == []
    assert "risk_while_held" not in [k for k, _ in trail(ref)]
    assert "risk_while_held" not in [k for k, _ in trail(other)]


async def test_holder_not_on_the_rota_still_gets_the_duty_manager(
    pg_env, fake_twilio, tracker_store, watchers
):
    ref = held("held-5", staff="staff:agency-worker", name="Jo")
    await watchers()
    await say(tracker_store, "held-5", "x", "urgent")
    await eventually(lambda: fake_twilio.to(MANAGER), what="manager alerted")
    [(kind, data)] = [(k, d) for k, d in trail(ref) if k == "risk_while_held"]
    assert data["holder_on_rota"] is False and data["staff"] == ["sam"]
    with transaction() as s:
        assert s.get(Escalation, engine.load(s, ref, lock=False).id).level == "urgent"
