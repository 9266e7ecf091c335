"""The block list on the SMS channel, from the signed webhook to the texts Twilio is asked to
send: a blocked person's ordinary text is answered with the emergency numbers and nothing
else, and never reaches the bot; their urgent text reaches the bot's risk path, which opens
an escalation with its alert. The bot here is a stub with a risk path of its own; the real
one is tested in tests/integration/test_line_servers.py."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.channels.contact_turn import BLOCKED_REPLY
from bot.escalation import blocks, engine
from bot.sms.keywords import has_risk_words
from bot.store.db import get_engine, transaction
from bot.store.models import Escalation
from bot.store.models.handoff import AlertJob
from tests.channels.conftest import StubAgent, eventually, person_id

NUMBERS = ("Please call 999 now. Samaritans 116 123. NHS 111, option 2. I've asked our "
           "on-call team to join.")


async def risk_path(message) -> None:
    """What the dialogue does with risk: the numbers first, then the escalation."""
    if has_risk_words(message.text):
        await message.output_channel.send_text_message(message.sender_id, NUMBERS)
        await asyncio.to_thread(engine.record_escalation, message.sender_id, "urgent",
                                ["suicidal_thoughts"], "sms")
    else:
        await message.output_channel.send_text_message(message.sender_id, "how can I help?")


def live_escalations(conversation: str):
    with transaction() as s:
        rows = s.execute(
            select(Escalation).where(Escalation.conversation_id == conversation,
                                     Escalation.status.in_(engine.LIVE_STATUSES))
        ).scalars().all()
        return [(e.level, e.status, [j.level for j in s.execute(
            select(AlertJob).where(AlertJob.escalation_id == e.id)).scalars()]) for e in rows]


async def test_a_blocked_person_gets_the_numbers_and_their_urgent_text_reaches_staff(
        twilio_env, fake_twilio, servers):
    first = engine.record_escalation(person_id(), "support", channel="sms")
    engine.resolve(first.ref, "staff:mo", "supported")
    blocks.block(get_engine(), first.ref, "staff:mo", "repeated abusive messages", 24)

    agent = StubAgent(risk_path)
    server = await servers(agent)
    await server.sms("hello")
    await eventually(lambda: fake_twilio.created, what="the reply")
    await asyncio.sleep(0.3)
    assert [c["Body"] for c in fake_twilio.created] == [BLOCKED_REPLY]
    assert agent.messages == []

    await server.sms("I want to kill myself")
    await eventually(lambda: len(fake_twilio.created) >= 2, what="the risk reply")
    assert [m.text for m in agent.messages] == ["I want to kill myself"]
    assert fake_twilio.created[1]["Body"] == NUMBERS
    [(level, status, alerts)] = await eventually(lambda: live_escalations(person_id()),
                                                 what="the escalation")
    assert (level, status) == ("urgent", "open") and alerts == ["urgent"]
    # Everyone else is answered by the bot as usual.
    await server.sms("hello", number="+447700900555")
    await eventually(lambda: len(fake_twilio.created) >= 3, what="another person's reply")
    assert fake_twilio.created[2]["Body"] == "how can I help?"
    assert blocks.current_blocks(get_engine()).keys() == {person_id()}
