"""The webhook: signatures, the durable inbox, at-once acknowledgement, and the reply path."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import select

from bot.store.models.sms import SmsContact, SmsInbox, SmsOutbox
from bot.store.db import transaction
from tests.channels.conftest import (
    LINE_NUMBER,
    PERSON,
    PUBLIC_BASE,
    StubAgent,
    configure,
    eventually,
    new_sid,
    person_id,
)
from tests.channels.crossthread import CrossThreadEvent


async def test_signed_message_gets_its_reply_posted_to_twilio_for_the_right_number(
    twilio_env, fake_twilio, servers
):
    agent = StubAgent()
    server = await servers(agent)
    status, body, ctype = await server.sms("I can't sleep")
    assert status == 200
    assert ctype.startswith("text/xml") and body.endswith("<Response/>")

    await eventually(lambda: fake_twilio.created, what="a reply at the fake Twilio")
    [sent] = fake_twilio.created
    assert sent["To"] == PERSON and sent["From"] == LINE_NUMBER
    assert sent["Body"] == "echo: I can't sleep"
    assert sent["StatusCallback"] == PUBLIC_BASE + "/webhooks/sms/status"

    # Rasa sees a pseudonym, never the number, and no number in metadata.
    [message] = agent.messages
    assert message.sender_id == person_id() and PERSON not in message.sender_id
    assert message.input_channel == "sms"
    assert PERSON not in repr(message.metadata)

    def sent_row():
        with transaction() as s:
            sent = s.execute(select(SmsOutbox)).scalar_one().status == "sent"
            return sent and s.execute(select(SmsInbox)).scalar_one().status == "done"

    await eventually(sent_row, what="the outbox row sent, the inbox row done")
    with transaction() as s:
        row = s.execute(select(SmsOutbox)).scalar_one()
        assert row.twilio_sid == sent["sid"] and row.attempts == 1
        inbox = s.execute(select(SmsInbox)).scalar_one()
        assert inbox.status == "done" and inbox.body is None  # text dropped once answered
        contact = s.get(SmsContact, person_id())
        assert PERSON not in contact.number_enc  # encrypted at rest


async def test_forged_or_unsigned_requests_get_403_and_store_nothing(twilio_env, servers):
    agent = StubAgent()
    server = await servers(agent)
    params = {"MessageSid": new_sid(), "From": PERSON, "Body": "hello", "NumMedia": "0"}
    path = "/webhooks/sms/webhook"

    assert (await server.post(path, params, sign=False))[0] == 403
    assert (await server.post(path, params, token="not-the-token"))[0] == 403
    # Signed for another URL (a replay against a different endpoint).
    assert (await server.post(path, params, signed_url=PUBLIC_BASE + "/other"))[0] == 403
    # Signed, then a parameter changed on the way.
    tampered = await server.post(
        path, params, data={**params, "Body": "changed"},
    )
    assert tampered[0] == 403
    assert (await server.post("/webhooks/sms/status", {"MessageSid": new_sid(),
                                                       "MessageStatus": "failed"},
                              sign=False))[0] == 403
    await asyncio.sleep(0.1)
    with transaction() as s:
        assert s.execute(select(SmsInbox)).first() is None
    assert agent.messages == []


async def test_without_an_auth_token_everything_is_refused_unless_unsigned_is_allowed(
    sqlite_url, fake_twilio, servers, monkeypatch
):
    configure(monkeypatch, fake_twilio.url, TWILIO_AUTH_TOKEN=None)
    server = await servers(StubAgent())
    assert (await server.sms("hello"))[0] == 403

    configure(monkeypatch, fake_twilio.url, TWILIO_AUTH_TOKEN=None, SMS_ALLOW_UNSIGNED="1")
    status, _, _ = await server.sms("hello")
    assert status == 200

    def recorded_locally():
        with transaction() as s:
            row = s.execute(select(SmsOutbox)).scalar_one_or_none()
            return row is not None and row.status == "not_sent_local"

    # Local mode: the reply is recorded, clearly not sent, and nothing reaches Twilio.
    await eventually(recorded_locally, what="a not_sent_local outbox row")
    assert fake_twilio.requests == []


async def test_same_message_sid_twice_gets_one_reply(twilio_env, fake_twilio, servers):
    agent = StubAgent()
    server = await servers(agent)
    sid = new_sid()
    first = await server.sms("are you there", sid=sid)
    second = await server.sms("are you there", sid=sid)
    assert first[0] == second[0] == 200 and second[1].endswith("<Response/>")
    await eventually(lambda: fake_twilio.created, what="the reply")
    await asyncio.sleep(0.3)
    assert len(fake_twilio.created) == 1 and len(agent.messages) == 1


async def test_bodyless_or_malformed_requests_get_a_clear_400_without_traceback(
    twilio_env, servers, caplog
):
    server = await servers(StubAgent())
    path = "/webhooks/sms/webhook"
    caplog.set_level(logging.DEBUG)
    sid = new_sid()
    cases = {
        "no fields at all": {},
        "no Body": {"MessageSid": sid, "From": PERSON, "NumMedia": "0"},
        "bad sid": {"MessageSid": "12", "From": PERSON, "Body": "x"},
        "bad From": {"MessageSid": sid, "From": "not-a-number", "Body": "x"},
        "bad NumMedia": {"MessageSid": sid, "From": PERSON, "Body": "x", "NumMedia": "lots"},
    }
    for name, params in cases.items():
        status, text, ctype = await server.post(path, params)
        assert status == 400, name
        assert ctype.startswith("text/plain") and "Traceback" not in text and len(text) < 80, name

    # Not a form at all (JSON), and a form body that is not UTF-8.
    status, text, _ = await server.post(
        path, {}, data=b'{"Body": "x"}', headers={"Content-Type": "application/json"}
    )
    assert status == 400 and "form" in text
    status, _, _ = await server.post(
        path, {}, data=b"Body=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status in (400, 403)  # unreadable, so it cannot be shown to be signed
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_media_only_message_is_a_message_with_no_words(twilio_env, fake_twilio, servers):
    agent = StubAgent()
    server = await servers(agent)
    status, _, _ = await server.sms("", NumMedia="1", MediaUrl0="https://api.twilio.com/m/1",
                                    MediaContentType0="image/jpeg")
    assert status == 200
    await eventually(lambda: agent.messages, what="the turn")
    [message] = agent.messages
    assert message.text == "" and message.metadata["sms"]["num_media"] == 1
    await eventually(lambda: fake_twilio.created, what="a reply")


async def test_the_webhook_answers_at_once_while_the_bot_is_still_thinking(
    twilio_env, fake_twilio, servers
):
    release = CrossThreadEvent()  # set in the turn thread or awaited there

    async def slow(message):
        await release.wait()
        await message.output_channel.send_text_message(message.sender_id, "done thinking")

    server = await servers(StubAgent(slow), turn_timeout_s=5.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, _, _ = await server.sms("hello")
    assert status == 200 and loop.time() - started < 1.0
    assert fake_twilio.created == []
    release.set()
    await eventually(lambda: fake_twilio.created, what="the reply after the turn")


async def test_the_webhook_answers_at_once_while_a_turn_holds_the_cpu(
    twilio_env, fake_twilio, servers
):
    # A Rasa turn runs its NLU pipeline and policies synchronously: CPU work that never
    # yields. Twilio must not wait for it (it gives up at 15 s).
    busy, done = CrossThreadEvent(), CrossThreadEvent()

    def think(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sum(range(1000))

    async def cpu_bound(message):
        if message.text == "first":
            busy.set()
            think(4.0)
            done.set()
        await echo_text(message)

    server = await servers(StubAgent(cpu_bound), turn_timeout_s=10.0)
    status, _, _ = await server.sms("first")
    assert status == 200
    await busy.wait()
    loop = asyncio.get_running_loop()
    for i in range(3):  # while the first turn is still thinking
        started = loop.time()
        status, _, _ = await server.sms(f"next {i}", number=f"+4477009005{i:02d}")
        assert status == 200 and loop.time() - started < 1.0
    assert not done.is_set()  # all three were answered during the 4 s turn
    await eventually(lambda: fake_twilio.created, timeout=10, what="the first reply")


async def test_messages_of_one_conversation_run_in_order_one_at_a_time(
    twilio_env, fake_twilio, servers
):
    async def slowish(message):
        await asyncio.sleep(0.03)
        await echo_text(message)

    agent = StubAgent(slowish)
    # Ordering is the point here, not the fail-safe: room for a loaded CI machine.
    server = await servers(agent, turn_timeout_s=5.0)
    other = "+447700900456"
    for i in range(6):
        await server.sms(f"m{i}")
        await server.sms(f"o{i}", number=other)
    await eventually(lambda: len(fake_twilio.created) == 12, what="12 replies")
    mine = [m.text for m in agent.messages if m.sender_id == person_id()]
    assert mine == [f"m{i}" for i in range(6)]
    assert max(agent.max_parallel.values()) == 1
    to_person = [c["Body"] for c in fake_twilio.created if c["To"] == PERSON]
    assert to_person == [f"echo: m{i}" for i in range(6)]


async def echo_text(message):
    await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")


async def test_status_callback_records_delivery(twilio_env, fake_twilio, servers):
    server = await servers(StubAgent())
    await server.sms("hello")
    await eventually(lambda: fake_twilio.created, what="the reply")
    sid = fake_twilio.created[0]["sid"]

    def marked():
        with transaction() as s:
            return s.execute(select(SmsOutbox.twilio_sid)).scalar_one() == sid

    await eventually(marked, what="the SID on the outbox row")
    status, _, _ = await server.post(
        "/webhooks/sms/status", {"MessageSid": sid, "MessageStatus": "delivered"}
    )
    assert status == 204
    # An out-of-order "sent" after "delivered" does not move the status back.
    await server.post("/webhooks/sms/status", {"MessageSid": sid, "MessageStatus": "sent"})
    with transaction() as s:
        assert s.execute(select(SmsOutbox.delivery_status)).scalar_one() == "delivered"
