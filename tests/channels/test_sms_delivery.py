"""Outbound: retries, permanent errors, restarts, long replies."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select, update

from bot.channels import inbox, relay
from bot.sms import outbox
from bot.store.models.sms import SmsInbox, SmsOutbox
from bot.sms.segments import GSM7, UCS2, segment_count
from bot.escalation.dispatch import register_contact
from bot.escalation.engine import record_escalation
from bot.store.db import transaction
from bot.store.models import Escalation, utcnow
from tests.channels.conftest import PERSON, StubAgent, eventually, new_sid, person_id
from tests.channels.crossthread import CrossThreadEvent


def outbox_rows():
    with transaction() as s:
        return s.execute(select(SmsOutbox).order_by(SmsOutbox.id)).scalars().all()


def event_kinds(conversation_id: str):
    with transaction() as s:
        esc = s.execute(
            select(Escalation).where(Escalation.conversation_id == conversation_id)
        ).scalar_one_or_none()
        return [] if esc is None else [e.kind for e in esc.events]


async def test_twilio_500_then_201_delivers_exactly_once(twilio_env, fake_twilio, servers):
    fake_twilio.script = [(500, None, 0)]
    server = await servers(StubAgent())
    await server.sms("hello")
    await eventually(lambda: fake_twilio.created, what="the retried reply")
    await eventually(lambda: outbox_rows()[0].status == "sent", what="row marked sent")
    await asyncio.sleep(0.3)  # nothing else goes out afterwards
    assert len(fake_twilio.requests) == 2 and len(fake_twilio.created) == 1
    [row] = outbox_rows()
    assert row.attempts == 2 and row.twilio_sid == fake_twilio.created[0]["sid"]


async def test_429_and_timeouts_are_retried_with_backoff(twilio_env, fake_twilio, servers):
    # A 429, then a response slower than send_timeout_s (0.5 s), then success.
    fake_twilio.script = [(429, 20429, 0), (201, None, 1.0)]
    server = await servers(StubAgent())
    await server.sms("hello")
    await eventually(lambda: outbox_rows() and outbox_rows()[0].status == "sent",
                     what="the reply sent after retries")
    # The slow request reached the fake, which dropped it when the sender hung up (it creates
    # only after the delay). A time-out leaves the part in doubt, so the third attempt looked
    # for it at Twilio first, found nothing and posted; a 429 is an answer and needs no look.
    assert len(fake_twilio.requests) == 3 and len(fake_twilio.lookups) == 1
    assert [c["Body"] for c in fake_twilio.created] == ["echo: hello"]
    assert outbox_rows()[0].attempts == 3


async def test_permanent_error_is_recorded_not_retried_and_staff_told(
    twilio_env, fake_twilio, servers
):
    record_escalation(person_id(), "urgent", ["self_harm"], channel="sms")
    fake_twilio.script = [(400, 21610, 0)]
    server = await servers(StubAgent())
    await server.sms("hello")
    await eventually(lambda: outbox_rows() and outbox_rows()[0].status == "failed",
                     what="the row marked failed")
    await asyncio.sleep(0.2)
    assert len(fake_twilio.requests) == 1
    row = outbox_rows()[0]
    assert row.error_code == "21610" and row.attempts == 1
    assert "delivery_failed" in event_kinds(person_id())


async def test_attempts_are_bounded(twilio_env, fake_twilio, servers):
    fake_twilio.script = [(503, None, 0)] * 10
    server = await servers(StubAgent(), max_send_attempts=3)
    await server.sms("hello")
    await eventually(lambda: outbox_rows() and outbox_rows()[0].status == "failed",
                     what="giving up")
    assert len(fake_twilio.requests) == 3 and fake_twilio.created == []
    assert outbox_rows()[0].error_code.startswith("gave_up")


async def test_a_restart_between_receipt_and_reply_still_delivers(
    twilio_env, fake_twilio, servers
):
    stuck = CrossThreadEvent()  # set in the turn thread or awaited there

    async def dies_mid_turn(message):
        stuck.set()
        await asyncio.Event().wait()  # never answers: the process goes down mid-turn

    first = await servers(StubAgent(dies_mid_turn), turn_timeout_s=30.0)
    await first.sms("please answer")
    await asyncio.wait_for(stuck.wait(), 5)
    await first.stop()
    assert fake_twilio.created == []
    with transaction() as s:
        assert s.execute(select(SmsInbox.status)).scalar_one() == "received"

    agent = StubAgent()
    await servers(agent)
    await eventually(lambda: fake_twilio.created, what="the reply after the restart")
    await asyncio.sleep(0.2)
    assert [c["Body"] for c in fake_twilio.created] == ["echo: please answer"]
    assert [m.text for m in agent.messages] == ["please answer"]


async def test_a_crashed_worker_lease_runs_out_and_the_message_is_answered(
    twilio_env, fake_twilio, servers
):
    # Stored by the webhook, then claimed by a process that died without giving it back.
    inbox.receive(new_sid(), PERSON, "hello from before the crash", 0)
    with transaction() as s:
        s.execute(
            update(SmsInbox).values(status="processing", lease_owner="dead-host:1:x",
                                    lease_until=utcnow() - dt.timedelta(seconds=1), attempts=1)
        )
    agent = StubAgent()
    await servers(agent)
    await eventually(lambda: fake_twilio.created, what="the reply after the lease expired")
    assert fake_twilio.created[0]["Body"] == "echo: hello from before the crash"
    with transaction() as s:
        assert s.execute(select(SmsInbox.attempts)).scalar_one() == 2


async def test_unsent_outbox_rows_are_sent_on_start(twilio_env, fake_twilio, servers):
    server = await servers(StubAgent())
    await server.sms("hello")  # creates the contact
    await eventually(lambda: fake_twilio.created, what="the first reply")
    await server.stop()
    # A reply written just before a crash, never posted; and one left "sending" by it.
    [pending] = outbox.enqueue(person_id(), "written before the crash", "reply", None, 3)
    [sending] = outbox.enqueue(person_id(), "in flight at the crash", "reply", None, 3)
    with transaction() as s:
        s.execute(update(SmsOutbox).where(SmsOutbox.id == sending).values(
            status="sending", lease_until=utcnow() - dt.timedelta(seconds=1)))
    await servers(StubAgent())
    await eventually(lambda: len(fake_twilio.created) == 3, what="both rows sent")
    assert [c["Body"] for c in fake_twilio.created[1:]] == [
        "written before the crash", "in flight at the crash"]
    assert pending < sending


async def test_long_replies_are_split_at_sentences_gsm7(twilio_env, fake_twilio, servers):
    sentences = [f"This is sentence number {i} of a long answer about tonight." for i in range(20)]
    text = " ".join(sentences)

    async def long_reply(message):
        await message.output_channel.send_text_message(message.sender_id, text)

    server = await servers(StubAgent(long_reply), max_segments=1)
    await server.sms("tell me everything")
    await eventually(lambda: outbox_rows() and all(r.status == "sent" for r in outbox_rows()),
                     what="all parts sent")
    bodies = [c["Body"] for c in fake_twilio.created]
    assert len(bodies) > 1 and " ".join(bodies) == text
    assert all(len(b) <= 160 and b.endswith(".") for b in bodies)
    assert all(r.encoding == GSM7 for r in outbox_rows())
    assert all(c["To"] == PERSON for c in fake_twilio.created)


async def test_long_replies_are_split_for_ucs2(twilio_env, fake_twilio, servers):
    text = " ".join(f"Take a slow breath 🌿 and count to {i}." for i in range(10))

    async def long_reply(message):
        await message.output_channel.send_text_message(message.sender_id, text)

    server = await servers(StubAgent(long_reply), max_segments=2)
    await server.sms("help me calm down")
    await eventually(lambda: outbox_rows() and all(r.status == "sent" for r in outbox_rows()),
                     what="all parts sent")
    rows = outbox_rows()
    assert len(rows) > 1 and all(r.encoding == UCS2 for r in rows)
    assert all(segment_count(r.body) <= 2 for r in rows)
    assert " ".join(c["Body"] for c in fake_twilio.created) == text


def test_a_replayed_turn_does_not_send_what_it_already_sent(twilio_env):
    # A turn run again after its process died (inbox attempts > 1) repeats the bot's replies;
    # what the first run already queued is not sent twice. A first run is never deduplicated.
    first = outbox.enqueue(person_id(), "I'm here. Go on.", "reply", 7, 3)
    assert first
    assert outbox.enqueue(person_id(), "I'm here. Go on.", "reply", 7, 3, True) == []
    # A reply the first run did not get to is still sent.
    assert outbox.enqueue(person_id(), "Is anyone with you?", "reply", 7, 3, True)
    # Another message's turn is not affected.
    assert outbox.enqueue(person_id(), "I'm here. Go on.", "reply", 8, 3, True)
    with transaction() as s:
        assert len(s.execute(select(SmsOutbox.id)).all()) == 3


async def test_a_reply_of_several_messages_arrives_in_order_when_one_part_is_retried(
        twilio_env, fake_twilio, servers):
    # The sender claims a conversation's waiting parts together and posts them one after
    # another; a part to be tried again stops the chain, and the parts after it wait for it.
    server = await servers(StubAgent())
    await server.sms("hello")  # creates the contact
    await eventually(lambda: fake_twilio.created, what="the first reply")
    await server.stop()
    texts = ["I'm an automated assistant.", "You're not alone tonight.", "Who is open now:"]
    for text in texts:  # waiting together when the sender starts: claimed together
        outbox.enqueue(person_id(), text, "reply", None, 3)
    fake_twilio.script = [(201, None, 0), (500, None, 0)]
    await servers(StubAgent())
    await eventually(lambda: len(fake_twilio.created) == 4, what="all three messages")
    assert [c["Body"] for c in fake_twilio.created[1:]] == texts
    # The second message failed once and was posted again before the third was posted at all.
    assert [r["Body"] for r in fake_twilio.requests[1:]] == [
        texts[0], texts[1], texts[1], texts[2]]
    await eventually(lambda: [r.status for r in outbox_rows()] == ["sent"] * 4,
                     what="every part marked sent")
    assert all(r.lease_owner is None for r in outbox_rows())


async def test_a_staff_message_through_the_relay_goes_out_at_once(twilio_env, fake_twilio,
                                                                   servers):
    # A human who has taken the conversation over writes to the person: their message is the
    # Rasa server's to post (it was nobody's own kind, and waited until 3 s late).
    await servers(StubAgent())
    with transaction() as s:
        register_contact(s, PERSON)
    await relay.deliver(person_id(), "sms", "I'm Sam from the on-call team.", {})
    await eventually(lambda: fake_twilio.created, timeout=outbox.BACKUP_AFTER_S - 0.5,
                     what="the staff member's message")
    assert [c["Body"] for c in fake_twilio.created] == ["I'm Sam from the on-call team."]
