"""The risk safety net: risk that the assistant did not record (the action server down) still
reaches staff, once, across restarts and two duty services; on SQLite and the real
PostgreSQL, with Rasa's own SQL tracker store writing the ``events`` table."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.helpers import tracker_store_for
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import create_engine, select, text

from bot.escalation import engine, safety_net
from bot.escalation.engine import record_escalation
from bot.escalation.safety_net import REASON, RiskSafetyNet
from bot.store.db import transaction
from bot.store.models import Escalation
from tests.handoff.conftest import PEER, eventually

SECRET = "the exact words the person wrote"
HEAD_START = 0.3


@pytest.fixture
async def tracker_store(any_env):
    store = tracker_store_for(any_env)
    yield store
    store.engine.dispose()


@pytest.fixture
async def pg_store(pg_env):
    store = tracker_store_for(pg_env)
    yield store
    store.engine.dispose()


async def say(store: SQLTrackerStore, sender: str, level: str, words: str = SECRET,
              channel: str = "socketio", at: float | None = None) -> None:
    """The person's message as Rasa saves it at the end of a turn whose actions failed."""
    tracker = await store.retrieve(sender) or DialogueStateTracker(sender, [])
    signals = {"none": [], "concern": ["distress"], "urgent": ["self_harm"],
               "imminent": ["overdose_taken"]}[level]
    tracker.update(UserUttered(
        words, intent={"name": "feeling_distressed", "confidence": 0.9},
        parse_data={"risk": {"level": level, "signals": signals}},
        input_channel=channel, timestamp=at,
    ))
    await store.save(tracker)


@pytest.fixture
async def nets(handoff):
    started: list[RiskSafetyNet] = []

    async def start(count: int = 1, **options) -> list[RiskSafetyNet]:
        [dispatcher], _ = await handoff()
        options = {"poll_s": 0.05, "head_start_s": HEAD_START, **options}
        for _ in range(count):
            net = RiskSafetyNet(on_recorded=dispatcher.wake, **options)
            await net.start()
            started.append(net)
        return started[-count:]

    yield start
    for net in started:
        await net.stop()


def escalations(conversation: str) -> list[tuple[str, str, list[tuple[str, str, dict]]]]:
    """(level, status, trail as (kind, actor, data)) of each escalation of a conversation."""
    with transaction() as s:
        found = s.execute(
            select(Escalation).where(Escalation.conversation_id == conversation)
            .order_by(Escalation.id)
        ).scalars().all()
        return [(e.level, e.status, [(ev.kind, ev.actor, dict(ev.data or {})) for ev in e.events])
                for e in found]


def net_entries(conversation: str) -> list[dict]:
    return [d for _, _, trail in escalations(conversation)
            for kind, _, d in trail if kind == "safety_net"]


async def test_risk_the_assistant_did_not_record_reaches_staff(any_env, tracker_store, nets):
    await nets()
    sent = time.time()
    await say(tracker_store, "web-1", "urgent")
    found = await eventually(lambda: escalations("web-1"), timeout=2.5, what="escalation opened")
    took = time.time() - sent
    assert HEAD_START <= took < 2.0
    [(level, _status, trail)] = found
    assert level == "urgent"
    kinds = [(k, actor) for k, actor, _ in trail]
    assert kinds[0] == ("created", "system:safety_net")
    [entry] = [d for k, _, d in trail if k == "safety_net"]
    assert entry["level"] == "urgent" and entry["signals"] == ["self_harm"]
    assert entry["created"] is True
    assert SECRET not in repr(trail)
    with transaction() as s:
        esc = s.execute(select(Escalation).where(Escalation.conversation_id == "web-1")).scalar_one()
        assert esc.channel == "socketio"
        reasons = [e.reason for e in esc.events if e.kind == "safety_net"]
    assert reasons == [REASON]


async def test_staff_are_alerted_through_the_ladder(pg_env, fake_twilio, pg_store, nets):
    await nets()
    await say(pg_store, "web-2", "urgent")
    # The urgent ladder starts with the peer workers; the dispatcher was woken at once.
    [alert] = await eventually(lambda: fake_twilio.to(PEER), timeout=3, what="peer alerted")
    assert "URGENT" in alert["Body"] and SECRET not in alert["Body"]


async def test_the_assistant_goes_first_and_nothing_is_recorded_twice(
    any_env, tracker_store, nets
):
    await nets(head_start_s=1.0)
    await say(tracker_store, "web-3", "urgent")
    # The action records it a little after Rasa stamped the message (a slow turn).
    await asyncio.sleep(0.4)
    record_escalation("web-3", "urgent", ["self_harm"], "socketio")
    # A message already covered when the net sees it: recorded by the assistant.
    record_escalation("web-4", "imminent", ["overdose_taken"], "sms")
    await say(tracker_store, "web-4", "urgent", channel="sms")
    await asyncio.sleep(1.6)
    for conversation in ("web-3", "web-4"):
        [(_level, _status, trail)] = escalations(conversation)
        assert [actor for k, actor, _ in trail if k == "created"] == ["assistant"]
        assert net_entries(conversation) == []


async def test_a_lower_live_escalation_is_raised_not_duplicated(any_env, tracker_store, nets):
    record_escalation("web-5", "support", ["asked_for_human"], "socketio")
    await nets()
    await say(tracker_store, "web-5", "imminent")
    await eventually(lambda: net_entries("web-5"), timeout=2.5, what="raised")
    [(level, _status, trail)] = escalations("web-5")
    assert level == "imminent"
    assert ("level_raised", "system:safety_net") in [(k, a) for k, a, _ in trail]
    assert net_entries("web-5")[0]["created"] is False


async def test_calm_held_and_already_resolved_conversations_are_left_alone(
    any_env, tracker_store, nets
):
    # Held: the held-conversation watcher alerts the holder; not the net's.
    held = record_escalation("web-6", "support", ["asked_for_human"], "socketio")
    engine.take_over(held.ref, "staff:pia", "Pia")
    # Resolved by staff after the message was sent: they had it.
    await say(tracker_store, "web-7", "urgent", at=time.time() - 5)
    closed = record_escalation("web-7", "urgent", ["self_harm"], "socketio")
    engine.acknowledge(closed.ref, "staff:sam")
    engine.resolve(closed.ref, "staff:sam", "supported")
    await nets()
    await say(tracker_store, "web-6", "imminent")
    await say(tracker_store, "web-8", "concern")
    await say(tracker_store, "web-9", "none")
    await asyncio.sleep(HEAD_START + 0.6)
    assert net_entries("web-6") == [] and net_entries("web-7") == []
    assert escalations("web-8") == [] and escalations("web-9") == []
    # A new risky message after the resolution is a new escalation.
    await say(tracker_store, "web-7", "urgent")
    await eventually(lambda: net_entries("web-7"), timeout=2.5, what="new escalation")
    # The dispatcher may already have alerted staff about it: open or alerted, never reopened.
    first, second = [status for _, status, _ in escalations("web-7")]
    assert first == "resolved" and second in ("open", "alerted")


async def test_a_restarted_net_neither_repeats_nor_misses(pg_env, pg_store, nets):
    [first] = await nets()
    await say(pg_store, "web-10", "urgent")
    await eventually(lambda: net_entries("web-10"), timeout=2.5, what="first")
    await first.stop()
    await say(pg_store, "web-11", "urgent")  # while no duty service runs
    # Staff close the first one: a restarted net must not reopen it.
    ref = escalations_ref("web-10")
    engine.acknowledge(ref, "staff:sam")
    engine.resolve(ref, "staff:sam", "supported")
    await nets()
    await eventually(lambda: net_entries("web-11"), timeout=2.5, what="the missed message")
    await asyncio.sleep(0.5)
    assert len(escalations("web-10")) == 1 and len(net_entries("web-11")) == 1


def escalations_ref(conversation: str) -> str:
    with transaction() as s:
        return s.execute(
            select(Escalation.ref).where(Escalation.conversation_id == conversation)
        ).scalar_one()


async def test_two_duty_services_record_each_message_once(pg_env, pg_store, nets):
    await nets(count=2)
    for i in range(6):
        await say(pg_store, f"web-many-{i}", "urgent")
    await eventually(lambda: all(net_entries(f"web-many-{i}") for i in range(6)), timeout=3,
                     what="six escalations")
    await asyncio.sleep(0.5)
    for i in range(6):
        assert len(escalations(f"web-many-{i}")) == 1
        assert len(net_entries(f"web-many-{i}")) == 1


def _raw_event(conn, sender: str, level: str) -> None:
    data = {"event": "user", "text": SECRET, "input_channel": "sms", "timestamp": time.time(),
            "parse_data": {"risk": {"level": level, "signals": ["self_harm"]}}}
    conn.execute(
        text("INSERT INTO events (sender_id, type_name, timestamp, data) "
             "VALUES (:s, 'user', :t, :d)"),
        {"s": sender, "t": time.time(), "d": json.dumps(data)},
    )


async def test_an_id_committed_late_is_not_skipped(pg_env, pg_store, nets):
    """Rasa servers saving at once commit ids out of order: the net waits for the gap."""
    await say(pg_store, "web-warm", "none")  # the events table and its sequence exist
    await nets(gap_wait_s=5.0)
    raw = create_engine(pg_env, future=True)
    try:
        conn = raw.connect()
        slow = conn.begin()
        _raw_event(conn, "web-late", "urgent")  # takes the lower id, not committed yet
        await say(pg_store, "web-early", "urgent")  # a higher id, committed first
        await asyncio.sleep(HEAD_START + 0.8)
        assert net_entries("web-early") == []  # waiting at the gap
        slow.commit()
        conn.close()
        await eventually(lambda: net_entries("web-late") and net_entries("web-early"),
                         timeout=2.5, what="both recorded")
    finally:
        raw.dispose()


async def test_an_id_that_never_commits_is_passed_after_the_wait(pg_env, pg_store, nets):
    await say(pg_store, "web-warm", "none")
    await nets(gap_wait_s=0.5)
    raw = create_engine(pg_env, future=True)
    try:
        with raw.connect() as conn:
            rolled = conn.begin()
            _raw_event(conn, "web-gone", "urgent")
            rolled.rollback()
    finally:
        raw.dispose()
    await say(pg_store, "web-after", "urgent")
    await eventually(lambda: net_entries("web-after"), timeout=3, what="passed the gap")
    assert escalations("web-gone") == []


def test_a_big_events_table_is_read_by_the_key_after_the_cursor(pg_url):
    """A pass reads only rows after the cursor, by the primary key, on a large table."""
    store = tracker_store_for(pg_url)  # creates Rasa's events table and sequence
    store.engine.dispose()
    with transaction() as s:
        s.execute(text(
            "INSERT INTO events (sender_id, type_name, timestamp, data) "
            "SELECT 'bulk-' || (g % 5000), "
            "CASE WHEN g % 3 = 0 THEN 'user' ELSE 'action' END, "
            "extract(epoch from now()) - 86400, '{\"event\": \"action\"}' "
            "FROM generate_series(1, 200000) g"
        ))
    with transaction() as s:
        s.execute(text("ANALYZE events"))
    started = time.monotonic()
    safety_net.ensure_cursor()
    first = safety_net.scan(head_start_s=0.0)
    took = time.monotonic() - started
    with transaction() as s:
        cursor = s.get(safety_net.RiskNetCursor, safety_net.CURSOR).last_event_id
        newest = s.execute(text("SELECT max(id) FROM events")).scalar_one()
        compiled = safety_net.events_after(cursor).compile(
            s.get_bind(), compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in s.execute(text(f"EXPLAIN {compiled}")))
    # A first start does not read a day of history: it starts at the newest event.
    assert first == [] and cursor == newest
    assert took < 2.0, took
    assert "Index Scan using" in plan and "Seq Scan" not in plan, plan
