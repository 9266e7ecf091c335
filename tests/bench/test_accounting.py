"""The verdict of ``make faults`` rests on its accounting: these check it on made-up runs.

A person's message counts as answered only when a reply linked to it reached the (fake)
Twilio API; a reply part delivered twice is a duplicate; an escalation without an alert, or a
risk conversation without an escalation, is a lost alert. The outbox's look-ups at the fake
(list requests) deliver nothing.
"""

from __future__ import annotations

import random

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bench import faults, load
from bench.line import ACCOUNT_SID, AUTH_TOKEN, LINE_NUMBER, PSEUDONYM_KEY, STAFF_NUMBERS
from bot.sms.pseudonym import pseudonym

PERSON = "+447800000001"
OTHER = "+447800000002"
MANAGER = STAFF_NUMBERS["duty_manager"]


def turn(sid: str, number: str = PERSON, risk: str = "none", status: str = "ok",
         at: float = 100.0) -> load.TurnResult:
    return load.TurnResult("sms", pseudonym(number, PSEUDONYM_KEY), "script", 0, risk, at,
                           status=status, message_sid=sid)


def deliver(fake: load.FakeTwilio, sid: str, to: str, body: str, at: float = 101.0) -> None:
    d = load.Delivery(sid, to, body, at)
    fake.deliveries.append(d)
    fake.by_sid[sid] = d


def run_db(inbox=(), outbox=(), escalations=()) -> dict:
    return {"inbox": list(inbox), "outbox": list(outbox), "escalations": list(escalations)}


def out_row(id_: int, inbox_id, number: str, body: str, twilio_sid, part: int = 1,
            kind: str = "reply") -> dict:
    return {"id": id_, "inbox_id": inbox_id, "pseudonym": pseudonym(number, PSEUDONYM_KEY),
            "kind": kind, "body": body, "part": part, "status": "sent" if twilio_sid else
            "sending", "twilio_sid": twilio_sid, "error_code": None}


def test_an_answered_message_is_neither_lost_nor_duplicated():
    fake = load.FakeTwilio()
    deliver(fake, "SMa", PERSON, "I'm here. Go on.")
    db = run_db(inbox=[{"id": 1, "message_sid": "SM1", "pseudonym": "p", "status": "done",
                        "attempts": 1}],
                outbox=[out_row(10, 1, PERSON, "I'm here. Go on.", "SMa")])
    s = faults.account([turn("SM1")], fake, db, faults.Timeline())
    assert (s["messages_sent"], s["messages_answered"], s["messages_lost"]) == (1, 1, 0)
    assert s["duplicates"] == 0 and s["replies_delivered"] == 1


def test_a_part_sent_again_after_a_crash_is_one_duplicate_and_still_answered():
    fake = load.FakeTwilio()
    # Twilio accepted the first post but the row was never marked: the sender posted it again.
    deliver(fake, "SMlost", PERSON, "Samaritans: 116 123.")
    deliver(fake, "SMb", PERSON, "Samaritans: 116 123.", at=140.0)
    db = run_db(inbox=[{"id": 1, "message_sid": "SM1", "pseudonym": "p", "status": "done",
                        "attempts": 2}],
                outbox=[out_row(10, 1, PERSON, "Samaritans: 116 123.", "SMb")])
    s = faults.account([turn("SM1")], fake, db, faults.Timeline())
    assert s["messages_lost"] == 0
    assert s["duplicates"] == 1 and s["deliveries_not_matched"] == 0


def test_messages_without_a_delivered_reply_are_lost_whatever_the_reason():
    fake = load.FakeTwilio()
    db = run_db(inbox=[{"id": 1, "message_sid": "SM1", "pseudonym": "p", "status": "done",
                        "attempts": 1}],
                outbox=[out_row(10, 1, PERSON, "reply", None)])  # never accepted
    turns = [turn("SM1"), turn("SM2", status="not_acked")]  # SM2 never got into the inbox
    s = faults.account(turns, fake, db, faults.Timeline())
    assert s["messages_lost"] == 2 and s["lost_not_acknowledged"] == 1
    assert s["lost_in_inbox_status"] == {"done": 1, "absent": 1}
    assert s["messages_received"] == 1


def test_alerts_due_count_escalations_and_risk_conversations_without_one():
    fake = load.FakeTwilio()
    deliver(fake, "SMalert", MANAGER, "IMMINENT escalation E7K2Q: a person has waited 1s. "
                                      "Reply ACK E7K2Q or open https://x/duty/e/E7K2Q")
    db = run_db(
        outbox=[out_row(20, None, MANAGER, fake.deliveries[0].body, "SMalert", kind="alert")],
        escalations=[
            {"ref": "E7K2Q", "conversation_id": pseudonym(PERSON, PSEUDONYM_KEY),
             "level": "imminent", "status": "alerted"},
            {"ref": "Q9ZZZ", "conversation_id": "rest-x", "level": "support", "status": "open"},
        ])
    turns = [turn("SM1", PERSON, risk="imminent"), turn("SM2", OTHER, risk="urgent")]
    s = faults.account(turns, fake, db, faults.Timeline())
    # Q9ZZZ was never alerted; OTHER showed risk and has no escalation at all.
    assert s["alerts_due"] == 3 and s["alerts_delivered"] == 1
    assert s["risk_conversations_without_escalation"] == 1
    assert s["replies_delivered"] == 0  # an alert is not a reply to the person


def test_messages_sent_during_an_outage_are_counted_with_their_outcome():
    fake = load.FakeTwilio()
    deliver(fake, "SMa", PERSON, "hello again")
    db = run_db(inbox=[{"id": 1, "message_sid": "SM1", "pseudonym": "p", "status": "done",
                        "attempts": 1}],
                outbox=[out_row(10, 1, PERSON, "hello again", "SMa")])
    timeline = faults.Timeline(started=0.0)
    timeline.outages.append({"from": 90.0, "to": 120.0})
    turns = [turn("SM1", at=95.0), turn("SM2", at=100.0, status="not_acked"),
             turn("SM3", at=200.0)]
    s = faults.account(turns, fake, db, timeline)
    assert (s["sent_during_a_fault"], s["sent_during_a_fault_answered"]) == (2, 1)


def test_a_part_the_look_up_found_is_one_delivery_not_a_duplicate():
    fake = load.FakeTwilio()
    # The killed sender's post was accepted; the restarted one found it and posted nothing.
    deliver(fake, "SMa", PERSON, "Samaritans: 116 123.")
    row = {**out_row(10, 1, PERSON, "Samaritans: 116 123.", "SMa"),
           "error_code": "found_at_twilio"}
    db = run_db(inbox=[{"id": 1, "message_sid": "SM1", "pseudonym": "p", "status": "done",
                        "attempts": 1}], outbox=[row])
    s = faults.account([turn("SM1")], fake, db, faults.Timeline())
    assert (s["messages_lost"], s["duplicates"], s["replies_delivered"]) == (0, 0, 1)
    assert s["found_by_lookup"] == 1


async def test_the_bench_fake_lists_what_it_accepted_as_twilio_does():
    # Read with twilio's own client, as the outbox's look-up does: To/From filters, newest
    # first, one page. A list request is counted apart and is not a delivery.
    fake = load.FakeTwilio()
    await fake.start()
    http = AsyncTwilioHttpClient()
    try:
        client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
        client.api.base_url = fake.url
        for body, to in (("one", PERSON), ("two", OTHER), ("three", PERSON), ("four", PERSON)):
            await client.messages.create_async(to=to, from_=LINE_NUMBER, body=body)
        page = await client.messages.page_async(to=PERSON, from_=LINE_NUMBER, page_size=2)
        listed = list(page)
        assert [m.body for m in listed] == ["four", "three"]
        assert all(m.to == PERSON and m.date_created is not None and m.sid in fake.by_sid
                   for m in listed)
        other = await client.messages.page_async(to=PERSON, from_="+447700900999")
        assert list(other) == []
    finally:
        await http.close()
        await fake.stop()
    assert len(fake.deliveries) == 4
    assert (fake.counts["201"], fake.counts["list_200"]) == (4, 2)


def test_kill_plan_spreads_kills_over_all_three_processes():
    plan = faults.kill_plan(20, 420.0, random.Random(3))
    assert len(plan) == 20
    assert {name for _, name in plan} == {"rasa", "actions", "duty"}
    assert all(10.0 <= at <= 405.0 for at, _ in plan)
    for name in ("rasa", "actions", "duty"):
        times = sorted(at for at, n in plan if n == name)
        assert len(times) >= 6
        assert all(b - a >= 15.0 for a, b in zip(times, times[1:], strict=False))


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert load.percentile(values, 50) == 50.0
    assert load.percentile(values, 99) == 99.0
    assert load.percentile([7.0], 99) == 7.0
    assert load.percentile([], 50) is None


def test_a_level_measured_twice_is_pooled_not_the_last_run_alone():
    # The stock bot's heaviest level, before and after the line: a fast run and a slow one.
    fast = load.LevelResult("rest", 50, 10.0, started_at=0.0)
    slow = load.LevelResult("rest", 50, 10.0, started_at=100.0)
    for i in range(100):
        fast.turns.append(load.TurnResult("rest", f"c{i}", "s", 0, "none", i * 0.1,
                                          latency_ms=100.0, finished_at=i * 0.1))
    for i in range(50):
        slow.turns.append(load.TurnResult("rest", f"d{i}", "s", 0, "none", 100 + i * 0.2,
                                          latency_ms=300.0, finished_at=100 + i * 0.2))
    pooled = load.pooled_figures([fast, slow])
    assert pooled["throughput_turns_per_s"] == 7.5  # (10 + 5) / 2, each in its own window
    assert pooled["turns"] == 150
    assert pooled["latency_ms"]["p50"] == 100.0 and pooled["latency_ms"]["p99"] == 300.0
    assert [r["throughput_turns_per_s"] for r in pooled["runs"]] == [10.0, 5.0]
    assert load.pooled_figures([slow]) == slow.figures()


def test_turns_from_a_conversations_first_risk_message_on_are_reported_apart():
    # What the turn gate puts first: a conversation's turns from its first risk message on
    # ("hi" before it was ordinary; "yes" after it goes first, though it shows nothing).
    level = load.LevelResult("sms", 2, 10.0, started_at=0.0)
    for i, (risk, ms) in enumerate((("none", 900.0), ("urgent", 200.0), ("none", 300.0))):
        level.turns.append(load.TurnResult("sms", "a", "urgent_safe", i, risk, float(i),
                                           latency_ms=ms, finished_at=i + 0.5))
    level.turns.append(load.TurnResult("sms", "b", "idiom", 0, "none", 0.0,
                                       latency_ms=1000.0, finished_at=1.0))
    split = level.figures()["latency_ms_by_priority"]
    assert split["risk_first"]["n"] == 2 and split["risk_first"]["p95"] == 300.0
    assert split["ordinary"]["n"] == 2 and split["ordinary"]["p50"] == 900.0


def test_a_level_measured_twice_reports_the_higher_memory_peak_of_each_process():
    from bench.run import peak_memory

    before = {"rasa": 1100.0, "actions": 120.0}
    after = {"rasa": 1050.0, "actions": 140.0}
    assert peak_memory(after, before) == {"rasa": 1100.0, "actions": 140.0}
    assert peak_memory(after, {}) == after  # measured once (--no-bracket, quick runs)
