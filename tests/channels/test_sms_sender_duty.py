"""SMS_SENDER=duty (the default on PostgreSQL): the duty service posts the Rasa server's replies.

The duty service's side is built here as ``bot/duty/handoff.py`` builds it: a sender for
every kind, woken through the alert wake-up's connection by the outbox's NOTIFY. Its poll is
set to a minute, so a reply that arrives within a second or two was posted because of the
NOTIFY; the Rasa server's own sender may only take a part once it is 3 s late.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bot import settings as settings_module
from bot.channels import relay
from bot.sms import outbox
from bot.escalation.delivery import outbox_sender
from bot.sms.outbox import OUTBOX_CHANNEL
from bot.sms.pseudonym import pseudonym
from bot.escalation.dispatch import register_contact
from bot.escalation.wakeup import AlertWakeup
from bot.store.db import transaction
from tests.channels.conftest import PERSON, StubAgent, configure, eventually


@pytest.fixture
def duty_env(pg_url, fake_twilio, monkeypatch):
    configure(monkeypatch, fake_twilio.url, SMS_SENDER=None)  # the default: auto
    assert settings_module.settings().sms_sender == "duty"
    return pg_url


@pytest.fixture
async def duty_sender(duty_env):
    sender = outbox_sender(kinds=None, poll_s=60.0)
    wakeup = AlertWakeup(duty_env, lambda: None, also={OUTBOX_CHANNEL: sender.wake})
    await sender.start()
    await wakeup.start()
    try:
        await eventually(lambda: wakeup.backend_pid is not None, what="the duty service listening")
        await asyncio.sleep(0.5)  # the passes at start are over: from now on only a NOTIFY wakes it
        yield wakeup
    finally:
        await wakeup.stop()
        await sender.stop()


async def test_the_duty_service_posts_the_reply_as_soon_as_it_is_written(
        duty_sender, fake_twilio, servers):
    server = await servers(StubAgent())
    assert server.channel.runtime.duty_sends
    heard = duty_sender.notifications
    started = time.monotonic()
    await server.sms("is anyone there")
    await eventually(lambda: fake_twilio.created, timeout=2.5, what="the reply")
    assert time.monotonic() - started < outbox.BACKUP_AFTER_S
    assert duty_sender.notifications > heard
    assert [c["Body"] for c in fake_twilio.created] == ["echo: is anyone there"]
    # The Rasa server's sender, covering for a late part, does not post it again.
    await asyncio.sleep(outbox.BACKUP_AFTER_S + 0.5)
    assert len(fake_twilio.created) == 1


async def test_with_the_duty_service_down_the_rasa_server_still_sends_the_reply(
        duty_env, fake_twilio, servers):
    server = await servers(StubAgent())
    started = time.monotonic()
    await server.sms("hello")
    await eventually(lambda: fake_twilio.created, timeout=outbox.BACKUP_AFTER_S + 5,
                     what="the reply, from the Rasa server's own sender")
    assert time.monotonic() - started >= outbox.BACKUP_AFTER_S
    assert [c["Body"] for c in fake_twilio.created] == ["echo: hello"]


async def test_a_staff_message_through_the_relay_is_posted_by_the_duty_service_at_once(
        duty_sender, fake_twilio):
    with transaction() as s:
        register_contact(s, PERSON)
    await relay.deliver(pseudonym(PERSON), "sms", "I'm Sam from the on-call team.", {})
    await eventually(lambda: fake_twilio.created, timeout=2.0, what="the staff message")
    assert [c["Body"] for c in fake_twilio.created] == ["I'm Sam from the on-call team."]


@pytest.fixture
async def gapped_sender(duty_env):
    """The duty service's sender with the gap between its passes made long enough to see
    (4 s): a part written just after a pass waits for the next one, unless it is urgent."""
    sender = outbox_sender(kinds=None, poll_s=60.0, pass_gap_s=4.0)
    wakeup = AlertWakeup(duty_env, lambda: None, also={OUTBOX_CHANNEL: sender.wake},
                         urgent={OUTBOX_CHANNEL: sender.wake_urgent})
    await sender.start()
    await wakeup.start()
    try:
        await eventually(lambda: wakeup.backend_pid is not None, what="the duty service listening")
        # The passes at start (one now, one a gap later for the listener's first wake-up) are
        # over: the first reply's NOTIFY starts a pass at once, before the Rasa server's
        # backup sender could take it (3 s late), and the next pass is a whole gap after it.
        await asyncio.sleep(sender.pass_gap_s + 0.5)
        yield sender
    finally:
        await wakeup.stop()
        await sender.stop()


async def _reply_just_after_a_pass(server, fake_twilio, body: str) -> float:
    """Seconds from texting ``body`` to its reply at Twilio, sent right after the sender's
    pass for an earlier message.

    Only the duty service's sender may post here. The Rasa server's own sender takes a part
    once it is 3 s late (outbox.BACKUP_AFTER_S), which is sooner than the 4 s gap: had it
    posted the first reply while the duty sender was waiting out a gap, the second reply
    would ride that waiting pass, and an ordinary reply would look as fast as an urgent one
    (this test failed about one run in three that way)."""
    server.channel.runtime.sender.others_after_s = 60.0
    await server.sms("hello")
    await eventually(lambda: len(fake_twilio.created) == 1, timeout=8.0, what="the first reply")
    started = time.monotonic()
    await server.sms(body)
    await eventually(lambda: len(fake_twilio.created) == 2, timeout=8.0, what="the second reply")
    return time.monotonic() - started


async def test_a_reply_in_a_conversation_that_shows_risk_skips_the_gap_between_passes(
        gapped_sender, fake_twilio, servers):
    server = await servers(StubAgent())
    waited = await _reply_just_after_a_pass(server, fake_twilio, "I took all my pills")
    assert waited < 2.0, f"the reply that shows risk waited {waited:.1f} s for the next pass"
    assert fake_twilio.created[1]["Body"] == "echo: I took all my pills"


async def test_an_ordinary_reply_waits_for_the_next_pass(gapped_sender, fake_twilio, servers):
    # The other half of the test above: without the urgent announcement the gap holds.
    server = await servers(StubAgent())
    waited = await _reply_just_after_a_pass(server, fake_twilio, "what is open tonight")
    assert waited >= 2.0


@pytest.mark.parametrize(("value", "url", "expected"), [
    (None, "postgresql+psycopg2://postgres@127.0.0.1/line", "duty"),
    (None, "sqlite:///var/line.db", "server"),
    ("auto", "sqlite:///var/line.db", "server"),
    ("server", "postgresql+psycopg2://postgres@127.0.0.1/line", "server"),
    ("Duty", "sqlite:///var/line.db", "duty"),
])
def test_sms_sender_setting(value, url, expected):
    env = {"DATABASE_URL": url} | ({"SMS_SENDER": value} if value else {})
    assert settings_module.load(env).sms_sender == expected


def test_an_unknown_sms_sender_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="SMS_SENDER must be auto, duty or server"):
        settings_module.load({"SMS_SENDER": "rasa"})
