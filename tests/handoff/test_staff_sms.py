"""ACK by SMS from a staff phone: acknowledges, stops the ladder, answers clearly."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.escalation import staff_sms
from bot.escalation.engine import record_escalation
from bot.store.db import transaction
from bot.store.models import Escalation
from tests.handoff.conftest import CRISIS, MANAGER, PEER, PERSON, VOLUNTEER, eventually


def test_staff_numbers_come_from_the_rota(any_env):
    assert staff_sms.is_staff_number(PEER)
    assert staff_sms.is_staff_number("07700 900502")  # however the gateway writes it
    assert not staff_sms.is_staff_number(PERSON)
    assert not staff_sms.is_staff_number("not a number")
    assert staff_sms.is_staff_number("+44 (0)7700 900 502")  # "(0)" and spaces: the same phone


def test_ack_acknowledges_and_names_the_reference(any_env, caplog):
    rec = record_escalation("conv-ack", "urgent", [])
    caplog.set_level(logging.DEBUG)
    reply = staff_sms.handle_staff_sms(MANAGER, f"ack {rec.ref.lower()}")
    assert reply.startswith(f"Acknowledged {rec.ref}.")
    with transaction() as s:
        esc = s.get(Escalation, rec.id)
        assert esc.status == "acknowledged"
        ack = [e for e in esc.events if e.kind == "acknowledged"][0]
        assert ack.actor == "staff:sam" and ack.reason == "ACK by SMS"
    assert MANAGER not in caplog.text and MANAGER[3:] not in caplog.text


@pytest.mark.parametrize(
    "number, body, expected",
    [
        (PEER, "ACK EZZZZZ", "No escalation EZZZZZ"),
        (PEER, "hello?", "Not understood"),
        (VOLUNTEER, "ACK {ref}", "Only on-call staff"),
        (PERSON, "ACK {ref}", "not on the rota"),
    ],
)
def test_clear_errors(any_env, number, body, expected):
    rec = record_escalation("conv-err", "urgent", [])
    assert expected in staff_sms.handle_staff_sms(number, body.format(ref=rec.ref))
    with transaction() as s:
        assert s.get(Escalation, rec.id).status == "open"


def test_second_ack_is_told_it_is_already_acknowledged(any_env):
    rec = record_escalation("conv-twice", "urgent", [])
    staff_sms.handle_staff_sms(PEER, f"ACK {rec.ref}")
    assert "it is acknowledged" in staff_sms.handle_staff_sms(CRISIS, f"ACK {rec.ref}")


async def test_ack_by_sms_stops_the_ladder(pg_env, fake_twilio, handoff, configure):
    configure(ESCALATION_ACK_TIMEOUT_S="1")
    await handoff()
    rec = await asyncio.to_thread(record_escalation, "conv-ladder", "urgent", [], "rest")
    await eventually(lambda: fake_twilio.to(PEER), what="tier 1 alert")
    reply = await asyncio.to_thread(staff_sms.handle_and_reply, PEER, f"ACK {rec.ref}")
    assert reply.startswith("Acknowledged")
    # The answer reaches the staff phone through the outbox.
    await eventually(lambda: len(fake_twilio.to(PEER)) == 2, what="the reply to the ACK")
    assert fake_twilio.to(PEER)[1]["Body"] == reply
    await asyncio.sleep(1.5)
    assert fake_twilio.to(MANAGER) == [] and fake_twilio.to(CRISIS) == []


def test_webhook_hook_takes_staff_texts_and_leaves_people_to_the_bot(any_env):
    from sqlalchemy import select

    from bot.store.models.sms import SmsOutbox

    rec = record_escalation("conv-hook", "urgent", [])
    assert staff_sms.handle_if_staff(PERSON, f"ACK {rec.ref}") is False
    assert staff_sms.handle_if_staff(PEER, f"ACK {rec.ref}") is True
    with transaction() as s:
        assert s.get(Escalation, rec.id).status == "acknowledged"
        reply = s.execute(select(SmsOutbox).where(SmsOutbox.kind == staff_sms.REPLY_KIND)).scalar_one()
        assert reply.body.startswith(f"Acknowledged {rec.ref}")


async def test_ack_through_the_sms_webhook_goes_to_the_staff_handler_not_the_bot(
    pg_env, fake_twilio, configure
):
    # The SMS channel's own harness (a Sanic app with the real webhook, signed requests).
    from tests.channels.conftest import SmsServer, StubAgent, new_sid
    from tests.handoff.conftest import ACCOUNT_SID, AUTH_TOKEN, LINE_NUMBER

    configure(PUBLIC_BASE_URL="https://line.example.org")
    rec = await asyncio.to_thread(record_escalation, "conv-webhook", "urgent", [], "rest")
    agent = StubAgent()
    server = await SmsServer(agent).start()
    try:
        sid = new_sid()
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": PEER,
                  "To": LINE_NUMBER, "NumMedia": "0", "Body": f"ACK {rec.ref}"}
        status, body, _ = await server.post("/webhooks/sms/webhook", params, token=AUTH_TOKEN)
        assert status == 200 and "<Response/>" in body
        reply = await eventually(lambda: fake_twilio.to(PEER), what="the reply to the ACK")
        assert reply[0]["Body"].startswith(f"Acknowledged {rec.ref}")
        with transaction() as s:
            assert s.get(Escalation, rec.id).status == "acknowledged"
        assert agent.messages == []  # the assistant never saw it
    finally:
        await server.stop()


async def test_a_repeated_staff_webhook_is_answered_once(pg_env, fake_twilio, configure):
    # Twilio retries a webhook it thinks failed, with the same MessageSid. An ACK retried
    # must not be handled twice: one acknowledgement, one answer to the staff phone (the
    # second would say "Cannot acknowledge ...: it is acknowledged" and confuse them).
    from sqlalchemy import func, select

    from bot.store.models.sms import SmsOutbox
    from tests.channels.conftest import SmsServer, StubAgent, new_sid
    from tests.handoff.conftest import ACCOUNT_SID, AUTH_TOKEN, LINE_NUMBER

    configure(PUBLIC_BASE_URL="https://line.example.org")
    rec = await asyncio.to_thread(record_escalation, "conv-retried", "urgent", [], "rest")
    server = await SmsServer(StubAgent()).start()
    try:
        sid = new_sid()
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": PEER,
                  "To": LINE_NUMBER, "NumMedia": "0", "Body": f"ACK {rec.ref}"}
        first, second = await asyncio.gather(
            server.post("/webhooks/sms/webhook", params, token=AUTH_TOKEN),
            server.post("/webhooks/sms/webhook", params, token=AUTH_TOKEN),
        )
        third = await server.post("/webhooks/sms/webhook", params, token=AUTH_TOKEN)
        assert [r[0] for r in (first, second, third)] == [200, 200, 200]
        await eventually(lambda: fake_twilio.to(PEER), what="the reply to the ACK")
        await asyncio.sleep(0.5)  # time for a second answer, were one coming
        assert len(fake_twilio.to(PEER)) == 1
        assert fake_twilio.to(PEER)[0]["Body"].startswith(f"Acknowledged {rec.ref}")
        with transaction() as s:
            replies = s.execute(select(func.count()).select_from(SmsOutbox)
                                .where(SmsOutbox.kind == staff_sms.REPLY_KIND)).scalar_one()
            assert replies == 1
            acks = [e for e in s.get(Escalation, rec.id).events if e.kind == "acknowledged"]
            assert len(acks) == 1
    finally:
        await server.stop()
