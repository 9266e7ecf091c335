"""What one anonymous web chat client can cost the line: metadata kept small, engine.io bodies
bounded, new conversations per client address limited (polling transport)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from bot.channels import webchat as webchat_module

from .conftest import ORIGIN
from .test_channel import TIMEOUT, Browser


class Client(Browser):
    def __init__(self) -> None:
        super().__init__()
        self.refused: asyncio.Queue = asyncio.Queue()
        self.sio.on("session_refused", self.refused.put_nowait)

    async def ask(self, url: str, address: str, session_id=None):
        """Connect as ``address`` (nginx's X-Real-IP) and ask for a session: the confirmed id,
        or the refusal."""
        await self.sio.connect(url, transports=["polling"], wait_timeout=TIMEOUT,
                               headers={"Origin": ORIGIN, "X-Real-IP": address})
        await self.sio.emit("session_request", {"session_id": session_id})
        confirmed = asyncio.ensure_future(self.confirmed.get())
        refused = asyncio.ensure_future(self.refused.get())
        done, pending = await asyncio.wait({confirmed, refused}, timeout=TIMEOUT,
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        assert done, "neither confirmed nor refused"
        return done.pop().result()


@pytest.fixture
async def clients():
    made: list[Client] = []

    def make() -> Client:
        made.append(Client())
        return made[-1]

    yield make
    for c in made:
        if c.sio.connected:
            await c.close()


async def test_metadata_keeps_only_known_keys_and_little_of_them(webchat):
    page = Browser()
    session_id = await page.open(webchat.url)
    try:
        await page.sio.emit("user_uttered", {
            "message": "hello", "session_id": session_id,
            "metadata": {"language": "en", "filler": "x" * 20_000, "nested": {"a": [1] * 500}},
        })
        await page.reply()
    finally:
        await page.close()
    # The client's metadata is cut to the known keys; the line's own arrival stamp (set by the
    # turn gate, over anything a client sends, for the turn-latency metric) is kept beside it.
    sent = dict(webchat.received[0].metadata)
    assert isinstance(sent.pop("arrived_at", None), float)
    assert sent == {"language": "en"}
    tracker = await webchat.agent.tracker_store.retrieve(session_id)
    stored = dict(tracker.latest_message.metadata)
    stored.pop("arrived_at", None)
    assert stored == {"language": "en"}


@pytest.mark.parametrize("raw", [
    "x" * 10_000, {"language": "e" * 500}, ["language"], {"language": 7}, '{"language": "cy"',
], ids=["huge-string", "long-value", "list", "number", "broken-json"])
def test_bad_metadata_is_dropped(raw):
    assert webchat_module.clean_metadata(raw) == {}


async def test_a_huge_body_is_refused_before_it_reaches_the_assistant(webchat):
    # Raw engine.io long-polling, as any script could do it: open, join the namespace, ask for
    # a session, then post one 300 kB message (engine.io's default limit is 1 MB).
    base = f"{webchat.url}/socket.io/?EIO=4&transport=polling"
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout, headers={"Origin": ORIGIN}) as http:
        async with http.get(base) as resp:
            handshake = await resp.text()
        url = f"{base}&sid={json.loads(handshake[1:])['sid']}"  # "0" then the JSON
        for packet in ('40', '42["session_request",{"session_id":null}]'):
            async with http.post(url, data=packet.encode()) as resp:
                assert resp.status == 200
        async with http.get(url) as resp:  # the namespace's ack, then session_confirm
            assert resp.status == 200
        # A browser always has a long-poll open; the server closes the socket through it.
        poll = asyncio.ensure_future(http.get(url))
        await asyncio.sleep(0.1)
        big = '42["user_uttered",{"message":"%s"}]' % ("x" * 300_000)
        async with http.post(url, data=big.encode()) as resp:
            assert resp.status >= 400
        (await poll).release()
    await asyncio.sleep(0.5)
    assert webchat.received == []


async def test_ten_new_chats_in_a_burst_from_one_address_are_limited(webchat, clients):
    results = [await clients().ask(webchat.url, "203.0.113.7") for _ in range(10)]
    confirmed = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, dict)]
    assert len(confirmed) == webchat_module.NEW_SESSIONS_BURST
    assert refused and refused[0]["reason"] == "too_many_new_chats"
    assert refused[0]["retry_after_s"] >= 1
    # Another address is not held up by it.
    assert isinstance(await clients().ask(webchat.url, "198.51.100.2"), str)


async def test_a_reload_of_a_conversation_is_not_a_new_chat(webchat, clients):
    first = clients()
    session_id = await first.ask(webchat.url, "203.0.113.9")
    await first.say("hello", session_id)
    await first.reply()
    for _ in range(webchat_module.NEW_SESSIONS_BURST):
        await clients().ask(webchat.url, "203.0.113.9")
    assert isinstance(await clients().ask(webchat.url, "203.0.113.9"), dict)  # limit reached
    # The person's own conversation still reconnects.
    assert await clients().ask(webchat.url, "203.0.113.9", session_id) == session_id


async def test_a_refused_client_cannot_start_a_chat_by_writing_first(webchat, clients):
    for _ in range(webchat_module.NEW_SESSIONS_BURST):
        await clients().ask(webchat.url, "203.0.113.10")
    page = clients()
    await page.sio.connect(webchat.url, transports=["polling"], wait_timeout=TIMEOUT,
                           headers={"Origin": ORIGIN, "X-Real-IP": "203.0.113.10"})
    await page.sio.emit("user_uttered", {"message": "hi", "session_id": "ab" * 16})
    refusal = await asyncio.wait_for(page.refused.get(), TIMEOUT)
    assert refusal["reason"] == "too_many_new_chats"
    assert webchat.received == []


def test_a_remote_peer_cannot_choose_its_address():
    class Request:
        ip = "192.0.2.50"

    environ = {"sanic.request": Request(), "HTTP_X_REAL_IP": "203.0.113.1"}
    assert webchat_module.client_address(environ) == "192.0.2.50"
