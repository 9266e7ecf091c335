"""A Sanic app running the web chat channel on a free port, with a stub agent.

The stub does what Rasa's agent and ``MessageProcessor`` do with a message: under the
conversation's lock it records the message, makes a ``BotUttered`` event, sends it through
the channel's own output channel (``send_response(sender_id, event.message())``) and saves
the tracker, so the tests see exactly what a browser sees and what a replay reads.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import dataclass, field

import pytest
from rasa.core.channels.channel import UserMessage
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Sanic

from bot.channels.webchat import WebChatInput

ORIGIN = "http://127.0.0.1:8080"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StubAgent:
    """Rasa's in-memory tracker and lock stores, and a turn that echoes."""

    def __init__(self) -> None:
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.lock_store = InMemoryLockStore()
        self.received: list[UserMessage] = []
        # Set by a test to hold a turn between its reply and the tracker's save.
        self.hold: asyncio.Event | None = None

    async def on_new_message(self, message: UserMessage) -> None:
        self.received.append(message)
        async with self.lock_store.lock(message.sender_id):
            tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
            tracker.update(UserUttered(message.text, input_channel=message.input_channel,
                                       metadata=message.metadata))
            uttered = BotUttered(f"echo: {message.text}")
            tracker.update(uttered)
            await message.output_channel.send_response(message.sender_id, uttered.message())
            if self.hold is not None:
                await self.hold.wait()
            await self.tracker_store.save(tracker)

    async def bot_said(self, sender_id: str, text: str, **metadata) -> BotUttered:
        """A bot event written outside a turn (as the staff relay writes one)."""
        async with self.lock_store.lock(sender_id):
            tracker = await self.tracker_store.get_or_create_tracker(sender_id)
            uttered = BotUttered(text, data={}, metadata=metadata)
            tracker.update(uttered)
            await self.tracker_store.save(tracker)
        return uttered


@dataclass
class Harness:
    url: str
    channel: WebChatInput
    agent: StubAgent
    received: list = field(default_factory=list)


@pytest.fixture
def channel_options():
    """Keyword arguments for the channel under test (a test module may override this)."""
    return {}


@pytest.fixture
async def webchat(channel_options):
    channel = WebChatInput(allowed_origins=[ORIGIN], **channel_options)
    agent = StubAgent()

    Sanic.test_mode = True
    app = Sanic(f"webchat_test_{uuid.uuid4().hex[:8]}")
    app.ctx.agent = agent
    app.blueprint(channel.blueprint(agent.on_new_message))
    port = free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    await server.startup()
    task = asyncio.ensure_future(server.serve_forever())
    try:
        yield Harness(f"http://127.0.0.1:{port}", channel, agent, agent.received)
    finally:
        task.cancel()
        server.close()
        await server.wait_closed()


@pytest.fixture
async def browser():
    """``browser()`` opens another simulated page (``test_channel.Browser``); all are closed
    after the test."""
    from .test_channel import Browser

    made: list[Browser] = []

    def make() -> Browser:
        made.append(Browser())
        return made[-1]

    yield make
    for b in made:
        if b.sio.connected:
            await b.close()
