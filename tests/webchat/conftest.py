"""A Sanic app running the web chat channel on a free port, with a stub ``on_new_message``.

The stub answers every message through the channel's own output channel, the way Rasa's
``MessageProcessor`` does at the end of a turn, so the tests see exactly what a browser sees.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import dataclass, field

import pytest
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from bot.channels.webchat import WebChatInput

ORIGIN = "http://127.0.0.1:8080"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Harness:
    url: str
    channel: WebChatInput
    received: list = field(default_factory=list)


@pytest.fixture
async def webchat():
    channel = WebChatInput(allowed_origins=[ORIGIN])
    received: list[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        received.append(message)
        await message.output_channel.send_text_message(
            message.sender_id, f"echo: {message.text}"
        )

    Sanic.test_mode = True
    app = Sanic(f"webchat_test_{uuid.uuid4().hex[:8]}")
    app.blueprint(channel.blueprint(on_new_message))
    port = free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    await server.startup()
    task = asyncio.ensure_future(server.serve_forever())
    try:
        yield Harness(f"http://127.0.0.1:{port}", channel, received)
    finally:
        task.cancel()
        server.close()
        await server.wait_closed()
