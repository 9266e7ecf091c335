"""An SMS turn is timed from when the webhook stored the message (issue 23, item 14): the
inbox's ``received_at`` travels in the message's metadata, and the turn gate makes it the
message's arrival, so /metrics' turn latency includes the inbox and queue waits."""

from __future__ import annotations

import time

from tests.channels.conftest import StubAgent, eventually


async def test_an_sms_turn_is_timed_from_the_webhook(twilio_env, fake_twilio, servers):
    agent = StubAgent()
    server = await servers(agent)
    before = time.time()
    status, _, _ = await server.sms("hello")
    assert status == 200
    await eventually(lambda: agent.messages, what="the turn")
    [message] = agent.messages
    received = message.metadata["sms"]["received_at"]
    assert before - 1 <= received <= time.time()
    assert message.metadata["arrived_at"] == received
