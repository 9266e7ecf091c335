"""Keywords (STOP, START, HELP), the fail-safe reply, and the rate limit that never drops."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.sms.keywords import FAILSAFE_REPLY, classify
from bot.store.models.sms import SmsContact, SmsInbox, SmsOptOut, SmsOutbox
from bot.escalation.engine import record_escalation
from bot.store.db import transaction
from bot.store.models import Escalation
from tests.channels.conftest import StubAgent, eventually, person_id
from tests.channels.crossthread import CrossThreadEvent


def escalation_events(conversation_id: str):
    with transaction() as s:
        esc = s.execute(
            select(Escalation).where(Escalation.conversation_id == conversation_id)
        ).scalar_one_or_none()
        return None if esc is None else (esc.level, [e.kind for e in esc.events])


def inbox_row():
    """(status, error) of the one inbox row."""
    with transaction() as s:
        row = s.execute(select(SmsInbox)).scalar_one()
        return row.status, row.error


def opt_outs():
    with transaction() as s:
        return [(o.action, o.keyword, o.staff_flagged)
                for o in s.execute(select(SmsOptOut).order_by(SmsOptOut.id)).scalars()]


def test_keywords_match_the_whole_message_like_twilio():
    assert classify("STOP") == classify(" stop ") == classify("Unsubscribe") == "opt_out"
    assert classify("end") == classify("QUIT") == classify("stopall") == "opt_out"
    assert classify("start") == classify("UNSTOP") == "opt_in"
    assert classify("help") == classify("Info") == "help"
    assert classify("please stop") is None and classify("stop it") is None
    assert classify("") is None


async def test_stop_is_recorded_not_sent_to_the_bot_and_nothing_is_replied(
    twilio_env, fake_twilio, servers
):
    agent = StubAgent()
    server = await servers(agent)
    status, body, _ = await server.sms("STOP")
    assert status == 200 and body.endswith("<Response/>")
    assert opt_outs() == [("opt_out", "STOP", False)]
    with transaction() as s:
        assert s.get(SmsContact, person_id()).opted_out
        assert s.execute(select(SmsInbox.status)).scalar_one() == "keyword"
    await asyncio.sleep(0.3)
    assert agent.messages == [] and fake_twilio.requests == []
    assert escalation_events(person_id()) is None  # no risk shown: nothing for staff


async def test_stop_on_a_conversation_with_a_live_escalation_is_shown_to_staff_at_once(
    twilio_env, servers
):
    record_escalation(person_id(), "support", [], channel="sms")
    server = await servers(StubAgent())
    await server.sms("end")
    # Written in the same transaction as the opt-out, before Twilio got its answer.
    level, kinds = escalation_events(person_id())
    assert kinds == ["created", "opted_out"]
    assert opt_outs() == [("opt_out", "END", True)]


async def test_stop_after_a_risk_message_opens_an_urgent_escalation(
    twilio_env, fake_twilio, servers
):
    server = await servers(StubAgent())
    await server.sms("I want to kill myself")
    await eventually(lambda: fake_twilio.created, what="the reply")
    await server.sms("stop")
    level, kinds = escalation_events(person_id())
    assert level == "urgent" and "opted_out" in kinds


async def test_replies_to_someone_who_opted_out_are_suppressed_until_start(
    twilio_env, fake_twilio, servers
):
    agent = StubAgent()
    server = await servers(agent)
    await server.sms("STOP")
    await server.sms("hello?")  # Twilio still passes on messages after STOP

    def suppressed():
        with transaction() as s:
            row = s.execute(select(SmsOutbox)).scalar_one_or_none()
            return row is not None and row.status == "suppressed_opted_out"

    await eventually(suppressed, what="the reply held back")
    assert fake_twilio.requests == []
    await server.sms("START")
    assert [a for a, _, _ in opt_outs()] == ["opt_out", "opt_in"]
    await server.sms("hello again")
    await eventually(lambda: fake_twilio.created, what="a reply after START")
    assert fake_twilio.created[0]["Body"] == "echo: hello again"
    # "yes" from someone who is not opted out is an ordinary answer for the dialogue.
    await server.sms("yes")
    await eventually(lambda: [m for m in agent.messages if m.text == "yes"], what="yes turn")


async def test_help_gets_the_line_details_and_emergency_numbers(
    twilio_env, fake_twilio, servers
):
    agent = StubAgent()
    server = await servers(agent)
    await server.sms("HELP")
    await eventually(lambda: fake_twilio.created, what="the help reply")
    text = " ".join(c["Body"] for c in fake_twilio.created)
    for needed in ("999", "116 123", "111", "option 2", "automated"):
        assert needed in text
    assert agent.messages == []


async def test_failsafe_reply_when_the_turn_raises(twilio_env, fake_twilio, servers):
    async def broken(message):
        raise RuntimeError("model failed to load")

    server = await servers(StubAgent(broken))
    await server.sms("hello")
    await eventually(lambda: fake_twilio.created, what="the fail-safe reply")
    assert [c["Body"] for c in fake_twilio.created] == [FAILSAFE_REPLY]
    # The person's reply goes first; staff are told straight after.
    level, kinds = await eventually(lambda: escalation_events(person_id()), what="the flag")
    assert level == "support" and kinds == ["created", "turn_failed"]
    await eventually(lambda: inbox_row() == ("failsafe", "RuntimeError"),
                     what="the inbox row closed as failsafe")


async def test_a_reply_that_cannot_be_written_gets_the_failsafe_reply(
    twilio_env, fake_twilio, servers, monkeypatch
):
    # The turn's replies are written after it has given back its gate slot; a write that
    # fails there must still end in the emergency numbers, not in silence.
    from bot.sms import outbox

    real_enqueue = outbox.enqueue

    def replies_fail(pid, text, kind, *rest):
        if kind == "reply":
            raise RuntimeError("the outbox table is locked")
        return real_enqueue(pid, text, kind, *rest)

    monkeypatch.setattr(outbox, "enqueue", replies_fail)
    server = await servers(StubAgent())
    await server.sms("hello")
    await eventually(lambda: fake_twilio.created, what="the fail-safe reply")
    assert [c["Body"] for c in fake_twilio.created] == [FAILSAFE_REPLY]
    await eventually(lambda: inbox_row() == ("failsafe", "RuntimeError"),
                     what="the inbox row closed as failsafe")


async def test_a_turn_of_several_messages_arrives_in_the_order_said(
    twilio_env, fake_twilio, servers
):
    said = ["I'm an automated assistant.", "Are you safe right now?",
            "If you are in danger now, call 999."]

    async def three(message):
        for text in said:
            await message.output_channel.send_text_message(message.sender_id, text)

    server = await servers(StubAgent(three))
    await server.sms("hello")
    await eventually(lambda: len(fake_twilio.created) == 3, what="all three messages")
    assert [c["Body"] for c in fake_twilio.created] == said
    await eventually(lambda: inbox_row() == ("done", None), what="the inbox row closed")


def _says_then_waits(said: list[str], release: CrossThreadEvent):
    async def behaviour(message):
        for text in said:
            await message.output_channel.send_text_message(message.sender_id, text)
        await release.wait()  # the rest of the turn (an action server call, say)
    return behaviour


async def test_the_emergency_numbers_go_out_before_the_turn_ends(
    twilio_env, fake_twilio, servers
):
    # Each message is written as the bot says it, not when the turn ends: the person has
    # the emergency numbers while the rest of the turn (an action server call) goes on.
    release = CrossThreadEvent()
    said = ["I'm an automated assistant.", "If you are in danger now, call 999."]
    server = await servers(StubAgent(_says_then_waits(said, release)), turn_timeout_s=30)
    await server.sms("is anyone there")
    await eventually(lambda: len(fake_twilio.created) == 2, what="both messages, mid-turn")
    assert [c["Body"] for c in fake_twilio.created] == said
    release.set()
    await eventually(lambda: inbox_row() == ("done", None), what="the inbox row closed")


async def test_in_a_conversation_that_shows_risk_every_message_goes_out_at_once(
    twilio_env, fake_twilio, servers
):
    release = CrossThreadEvent()
    server = await servers(StubAgent(_says_then_waits(["I'm here with you."], release)),
                           turn_timeout_s=30)
    await server.sms("I took all my pills")
    await eventually(lambda: fake_twilio.created, what="the reply, mid-turn")
    assert [c["Body"] for c in fake_twilio.created] == ["I'm here with you."]
    release.set()
    await eventually(lambda: inbox_row() == ("done", None), what="the inbox row closed")


async def test_failsafe_reply_when_the_turn_hangs_and_the_late_reply_still_goes(
    twilio_env, fake_twilio, servers
):
    release = CrossThreadEvent()  # set in the turn thread or awaited there

    async def slow(message):
        await release.wait()
        await message.output_channel.send_text_message(message.sender_id, "sorry I was slow")

    server = await servers(StubAgent(slow), turn_timeout_s=0.3)
    await server.sms("hello")
    await eventually(lambda: fake_twilio.created, what="the fail-safe reply")
    assert fake_twilio.created[0]["Body"] == FAILSAFE_REPLY
    await eventually(lambda: "turn_failed" in (escalation_events(person_id()) or (0, []))[1],
                     what="staff told")
    release.set()
    await eventually(lambda: len(fake_twilio.created) == 2, what="the late reply")
    assert fake_twilio.created[1]["Body"] == "sorry I was slow"


async def test_rate_limit_slows_a_flood_but_answers_every_message_in_order(
    twilio_env, fake_twilio, servers
):
    agent = StubAgent()
    server = await servers(agent, rate_capacity=2.0, rate_refill_per_s=10.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(8):
        await server.sms(f"flood {i}")
    await eventually(lambda: len(fake_twilio.created) == 8, what="all 8 replies")
    # 2 at once, then 6 more at 10 a second: at least about 0.5 s, never dropped.
    assert loop.time() - started >= 0.45
    assert [m.text for m in agent.messages] == [f"flood {i}" for i in range(8)]


async def test_risk_words_are_never_rate_limited(twilio_env, fake_twilio, servers):
    agent = StubAgent()
    # One token, refilled once every 1000 s: everything after the first message waits...
    server = await servers(agent, rate_capacity=1.0, rate_refill_per_s=0.001)
    await server.sms("hi")
    await server.sms("are you a person")
    await eventually(lambda: len(agent.messages) == 1, what="the first turn")
    await asyncio.sleep(0.3)
    assert len(agent.messages) == 1  # held back, still in the inbox
    with transaction() as s:
        assert s.execute(select(SmsInbox.status).order_by(SmsInbox.id)).scalars().all() == [
            "done", "received"]
    # ...except when a message with risk words is waiting: it and what came before go now.
    await server.sms("I took all my pills")
    await eventually(lambda: len(agent.messages) == 3, what="the held and the risk message")
    assert [m.text for m in agent.messages][1:] == ["are you a person", "I took all my pills"]


async def test_a_turn_that_says_nothing_still_gets_the_emergency_numbers(
    twilio_env, fake_twilio, servers
):
    # Rasa carries on when a custom action fails (the action server is down): the turn ends
    # without a word. The person must not be left with silence.
    async def silent(message):
        return None

    server = await servers(StubAgent(silent))
    await server.sms("where can I go tonight")
    await eventually(lambda: fake_twilio.created, what="the fail-safe reply")
    assert fake_twilio.created[0]["Body"] == FAILSAFE_REPLY
    await eventually(lambda: "turn_failed" in (escalation_events(person_id()) or (0, []))[1],
                     what="staff told")


async def test_a_conversation_staff_hold_stays_quiet(twilio_env, fake_twilio, servers):
    from bot.escalation import engine

    esc = record_escalation(person_id(), "urgent", ["test"], channel="sms")
    engine.take_over(esc.ref, "staff:pw1", "Sam")

    async def paused(message):
        return None  # the assistant is paused while a human holds the conversation

    agent = StubAgent(paused)
    server = await servers(agent)
    await server.sms("are you still there?")
    await eventually(lambda: agent.messages, what="the turn")
    await asyncio.sleep(0.5)
    assert fake_twilio.created == []
    await eventually(lambda: inbox_row() == ("done", None), what="the inbox row closed")


async def test_a_risk_message_is_taken_even_when_the_worker_is_full(twilio_env, servers):
    release = CrossThreadEvent()

    async def busy(message):
        if message.text.startswith("ordinary"):
            await release.wait()  # ordinary turns hold the worker until the test lets go
        await message.output_channel.send_text_message(message.sender_id, "ok")

    agent = StubAgent(busy)
    server = await servers(agent, turn_timeout_s=30.0)
    worker = server.channel.runtime.worker
    worker.concurrency, worker.risk_headroom = 2, 1
    try:
        for i in range(3):  # three people, two turns at a time: the third waits in the inbox
            await server.sms(f"ordinary {i}", number=f"+4477009000{i:02d}")
        await eventually(lambda: len(agent.messages) == 2, what="the worker full")
        await server.sms("I took all my pills", number="+447700900099")
        # Claimed at once, beyond the worker's limit; the ordinary message still waits.
        await eventually(lambda: len(agent.messages) == 3, what="the risk message's turn")
        assert agent.messages[-1].text == "I took all my pills"
        with transaction() as s:
            waiting = s.execute(select(SmsInbox.body).where(SmsInbox.status == "received"))
            assert waiting.scalars().all() == ["ordinary 2"]
    finally:
        release.set()
    await eventually(lambda: len(agent.messages) == 4, what="the ordinary message after all")


async def test_the_next_message_of_a_risk_conversation_is_taken_when_its_turn_ends(
    twilio_env, servers
):
    hold = {"ordinary": CrossThreadEvent(), "I took all my pills": CrossThreadEvent()}

    async def held(message):
        if message.text in hold:
            await hold[message.text].wait()
        await message.output_channel.send_text_message(message.sender_id, "ok")

    agent = StubAgent(held)
    server = await servers(agent, turn_timeout_s=30.0)
    worker = server.channel.runtime.worker
    # Room for one more risk turn when "no" arrives, so that pass looks, and skips it.
    worker.concurrency, worker.risk_headroom = 1, 2
    person = "+447700900099"
    try:
        await server.sms("ordinary", number="+447700900001")  # fills the worker
        await eventually(lambda: len(agent.messages) == 1, what="the worker full")
        await server.sms("I took all my pills", number=person)  # the headroom
        await eventually(lambda: len(agent.messages) == 2, what="the risk turn")
        await server.sms("no", number=person)  # waits: its conversation's turn is running
        await asyncio.sleep(0.3)
        assert len(agent.messages) == 2
        hold["I took all my pills"].set()
        # The worker is still full with the ordinary turn, yet "no" goes now.
        await eventually(lambda: len(agent.messages) == 3, what="the risk conversation's next")
        assert agent.messages[-1].text == "no"
    finally:
        for event in hold.values():
            event.set()
