"""/metrics (issue 23, item 14): histograms whose counts only grow, so Prometheus' ``rate()``
works, and a turn's latency measured from the message's arrival, queue wait included."""

from __future__ import annotations

import asyncio
import json
import time

from prometheus_client.parser import text_string_to_metric_families
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from sqlalchemy import delete

from bot.channels.gate import TurnGate, gated
from bot.duty import transcripts
from bot.store import db
from tests.console.test_console import add_rasa_events
from tests.duty.conftest import AUTH


async def _scrape(client) -> dict[tuple, float]:
    """Every sample of every histogram and counter, by (name, labels)."""
    resp = await client.get("/metrics", headers=AUTH)
    assert resp.status == 200
    samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        if family.type not in ("histogram", "counter"):
            continue
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            # le="60" and le="60.0" are the same bound.
            labels = {k: float(v) if k == "le" else v for k, v in s.labels.items()}
            samples[(s.name, tuple(sorted(labels.items())))] = s.value
    return samples


def _never_fell(before: dict, after: dict) -> None:
    for key, value in before.items():
        assert key in after, f"{key} disappeared"
        assert after[key] >= value, f"{key} fell from {value} to {after[key]}"


async def test_counts_never_fall_between_scrapes(client, seed, db_url):
    seed("urgent", status="acknowledged", ack_after_s=45)
    first = await _scrape(client)
    add_rasa_events(db_url, "conv-a", [("user", {"text": "hello"}), ("bot", {"text": "hi"})])
    second = await _scrape(client)
    assert second[("line_turn_latency_seconds_count", ())] == 1
    assert second[("line_escalation_ack_seconds_bucket", (("le", 60.0),))] == 1
    _never_fell(first, second)
    # The person asks the line to forget them (or the tracker's rows are cleaned up): what was
    # counted stays counted. Before, the histogram was recomputed from the rows (and from the
    # last 24 hours only), so its counts fell, which Prometheus reads as a restart.
    with db.get_engine(db_url).begin() as conn:
        conn.execute(delete(transcripts.RASA_EVENTS).where(transcripts.RASA_EVENTS.c.sender_id == "conv-a"))
    third = await _scrape(client)
    _never_fell(second, third)
    add_rasa_events(db_url, "conv-b", [("user", {"text": "hello"}), ("bot", {"text": "hi"})])
    fourth = await _scrape(client)
    assert fourth[("line_turn_latency_seconds_count", ())] == 2
    _never_fell(third, fourth)


async def test_turn_latency_includes_the_queue_wait(client, db_url):
    await _scrape(client)
    gate = TurnGate(1)
    await gate.acquire()  # another turn holds the only slot
    turns = []

    async def handler(message: UserMessage) -> None:
        # What Rasa does: the user event is written when the turn runs, the reply after it.
        began = time.time()
        turns.append(began)
        row = {"text": message.text, "metadata": message.metadata}
        engine = db.get_engine(db_url)
        transcripts.RASA_EVENTS.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(transcripts.RASA_EVENTS.insert().values(
                sender_id="conv-q", type_name="user", timestamp=began, data=json.dumps(row)))
            conn.execute(transcripts.RASA_EVENTS.insert().values(
                sender_id="conv-q", type_name="bot", timestamp=began + 0.1,
                data=json.dumps({"text": "Call 999"})))

    message = UserMessage("hello", CollectingOutputChannel(), sender_id="conv-q",
                          input_channel="socketio", metadata={"arrived_at": 1.0})
    turn = asyncio.ensure_future(gated(handler, gate)(message))
    await asyncio.sleep(0.6)  # queued behind the other turn
    gate.release()
    await turn
    scraped = await _scrape(client)
    assert scraped[("line_turn_latency_seconds_count", ())] == 1
    # The person waited the queue (0.6 s) and the turn (0.1 s), not just the turn; and the
    # client's own "arrived_at" was not believed.
    assert 0.6 <= scraped[("line_turn_latency_seconds_sum", ())] < 5
    assert scraped[("line_turn_latency_seconds_bucket", (("le", 0.5),))] == 0


async def test_an_sms_arrives_when_the_webhook_stored_it():
    stored = time.time() - 3
    message = UserMessage("hello", CollectingOutputChannel(), sender_id="sms-x", input_channel="sms",
                          metadata={"sms": {"message_sid": "SM1", "received_at": stored}})
    seen = []

    async def handler(m: UserMessage) -> None:
        seen.append(m.metadata["arrived_at"])

    await gated(handler, TurnGate(1))(message)
    assert seen == [stored]


async def test_names_types_labels_and_help_are_what_dashboards_read(client, seed, db_url):
    """The whole page parses with prometheus_client's own parser, and every family keeps its
    name, type, help text and labels (a dashboard or alert rule names them)."""
    seed("urgent", status="acknowledged", ack_after_s=45)
    add_rasa_events(db_url, "conv-d", [("user", {"text": "hello"}), ("bot", {"text": "hi"})])
    await client.get("/metrics", headers=AUTH)  # the first scrape starts the turn cursor
    resp = await client.get("/metrics", headers=AUTH)
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    # prometheus_client adds line_turn_latency_seconds_created (when the histogram began),
    # which the text parser reads as a family of its own.
    families = {f.name: f for f in text_string_to_metric_families(await resp.text())
                if not f.name.endswith("_created")}
    assert {name: (f.type, f.documentation) for name, f in families.items()} == {
        "line_escalations": ("gauge", "Escalations by level and status."),
        "line_escalation_ack_seconds": (
            "histogram", "Seconds from an escalation opening to a human acknowledging it."),
        "line_messages": ("gauge", "Messages in the tracker store, by sender type."),
        "line_turn_latency_seconds": (
            "histogram", "Seconds from a person's message arriving to the assistant's first reply "
            "(queue wait included)."),
    }
    labels = {name: {tuple(sorted(set(s.labels) - {"le"})) for s in f.samples}
              for name, f in families.items()}
    assert labels["line_escalations"] == {("level", "status")}
    assert labels["line_messages"] == {("type",)}
    assert {s.labels["type"] for s in families["line_messages"].samples} == {"user", "bot"}
    assert ("urgent", "acknowledged") in {
        (s.labels["level"], s.labels["status"]) for s in families["line_escalations"].samples}
