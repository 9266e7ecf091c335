"""The web chat channel over socket.io (polling transport: the async websocket client needs
aiohttp ≥ 3.10, which Rasa 3.6 does not allow)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import socketio

from bot.channels import webchat as webchat_module
from bot.channels.webchat import WebChatInput

from .conftest import ORIGIN

TIMEOUT = 5


class Browser:
    """A socket.io client that records what the page would receive."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.confirmed: asyncio.Queue = asyncio.Queue()
        self.uttered: asyncio.Queue = asyncio.Queue()
        self.sio.on("session_confirm", self.confirmed.put_nowait)
        self.sio.on("bot_uttered", self.uttered.put_nowait)

    async def open(self, url: str, session_id=None, origin: str = ORIGIN) -> str:
        await self.sio.connect(
            url, transports=["polling"], headers={"Origin": origin}, wait_timeout=TIMEOUT
        )
        await self.sio.emit("session_request", {"session_id": session_id})
        return await asyncio.wait_for(self.confirmed.get(), TIMEOUT)

    async def say(self, text: str, session_id: str) -> None:
        await self.sio.emit("user_uttered", {"message": text, "session_id": session_id})

    async def reply(self) -> dict:
        return await asyncio.wait_for(self.uttered.get(), TIMEOUT)

    async def close(self) -> None:
        # The close packet reaches the server at once (it leaves the room); abort=True only
        # skips waiting for the client's pending long-poll, which the server answers at its
        # next ping (25 s), not on close.
        await self.sio.eio.disconnect(abort=True)




async def test_reply_reaches_the_browser_with_session_persistence(webchat, browser):
    page = browser()
    session_id = await page.open(webchat.url)
    assert webchat.channel.name() == "socketio"
    assert len(session_id) == 32
    await page.say("hello", session_id)
    reply = await page.reply()
    assert reply["text"] == "echo: hello"
    assert set(reply) == {"text", "message_id"}
    # The conversation is the session, not the socket.
    assert webchat.received[0].sender_id == session_id
    assert webchat.received[0].input_channel == "socketio"


async def test_reload_keeps_the_conversation(webchat, browser):
    first = browser()
    session_id = await first.open(webchat.url)
    await first.close()
    # A reload: a new socket asks for the stored session id and gets it back.
    second = browser()
    assert await second.open(webchat.url, session_id) == session_id
    await second.say("still me", session_id)
    assert (await second.reply())["text"] == "echo: still me"
    assert {m.sender_id for m in webchat.received} == {session_id}


@pytest.mark.parametrize("bogus", ["sms-pseudonym-abc", "../etc", "A" * 32, 12345, ""])
async def test_an_id_we_did_not_issue_is_replaced(webchat, browser, bogus):
    got = await browser().open(webchat.url, bogus)
    assert got != bogus
    assert webchat_module.valid_session_id(got)


async def test_message_is_attributed_to_the_sockets_own_session(webchat, browser):
    victim, attacker = browser(), browser()
    victim_id = await victim.open(webchat.url)
    attacker_id = await attacker.open(webchat.url)
    await attacker.say("injected", victim_id)
    assert (await attacker.reply())["text"] == "echo: injected"
    assert webchat.received[-1].sender_id == attacker_id
    assert victim.uttered.empty()


async def test_message_before_session_request_is_answered_in_its_own_session(webchat, browser):
    # What a socket.io client does with a message written while offline: it buffers the
    # emit and sends it on reconnect, before the page's session_request.
    first = browser()
    session_id = await first.open(webchat.url)
    await first.close()
    page = browser()
    await page.sio.connect(webchat.url, transports=["polling"], headers={"Origin": ORIGIN},
                           wait_timeout=TIMEOUT)
    await page.say("I want to end my life tonight", session_id)
    assert (await page.reply())["text"] == "echo: I want to end my life tonight"
    assert [m.sender_id for m in webchat.received] == [session_id]
    # It was told its session, as after a session_request.
    assert await asyncio.wait_for(page.confirmed.get(), TIMEOUT) == session_id


async def test_message_before_session_request_without_an_id_gets_a_new_session(webchat, browser):
    page = browser()
    await page.sio.connect(webchat.url, transports=["polling"], headers={"Origin": ORIGIN},
                           wait_timeout=TIMEOUT)
    await page.sio.emit("user_uttered", {"message": "hello?"})
    assert (await page.reply())["text"] == "echo: hello?"
    given = await asyncio.wait_for(page.confirmed.get(), TIMEOUT)
    assert webchat_module.valid_session_id(given)
    assert webchat.received[0].sender_id == given


async def test_other_origins_are_refused(webchat):
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(
            webchat.url, transports=["polling"], headers={"Origin": "https://evil.example"},
            wait_timeout=TIMEOUT,
        )


async def test_cors_preflight_names_only_the_allowed_origin(webchat):
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{webchat.url}/socket.io/?EIO=4&transport=polling", headers={"Origin": ORIGIN}
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_staff_message_reaches_every_tab_of_the_conversation(webchat, browser):
    tab1, tab2 = browser(), browser()
    session_id = await tab1.open(webchat.url)
    await tab2.open(webchat.url, session_id)
    # The staff relay calls the module-level function inside the Rasa server process.
    present = await webchat_module.send_to_conversation(
        session_id, "Hi, I'm Sam from the crisis team", {"sender": "staff", "sender_name": "Sam"}
    )
    assert present == 2
    for tab in (tab1, tab2):
        got = await tab.reply()
        assert webchat_module.parse_message_id(got.pop("message_id"))
        assert got == {
            "text": "Hi, I'm Sam from the crisis team", "sender": "staff", "sender_name": "Sam",
        }


async def test_staff_message_to_an_empty_room_reports_nobody(webchat):
    assert await webchat_module.send_to_conversation("f" * 32, "anyone there?") == 0
    with pytest.raises(ValueError):
        await webchat_module.send_to_conversation("not-a-webchat-id", "x")


def test_credentials_cannot_turn_persistence_off():
    channel = WebChatInput.from_credentials(
        {"session_persistence": False, "cors_allowed_origins": [ORIGIN]}
    )
    assert isinstance(channel, WebChatInput)
    assert channel.allowed_origins == [ORIGIN]


def test_default_origins_come_from_settings(monkeypatch):
    from bot import settings as settings_module

    monkeypatch.setenv("DUTY_PORT", "8099")
    monkeypatch.delenv("WEBCHAT_ALLOWED_ORIGINS", raising=False)
    settings_module.reset()
    try:
        channel = WebChatInput()
        assert channel.allowed_origins == ["http://localhost:8099", "http://127.0.0.1:8099"]
        # Nothing configured: a stock widget on a local test page works.
        assert channel.origin_allowed("http://localhost:3000")
    finally:
        settings_module.reset()


def test_configured_origins_are_the_only_ones(monkeypatch):
    from bot import settings as settings_module

    monkeypatch.setenv("WEBCHAT_ALLOWED_ORIGINS", "https://chat.line.example")
    settings_module.reset()
    try:
        channel = WebChatInput()
        assert channel.origin_allowed("https://chat.line.example")
        # Another program on the carer's own machine is not the line's page.
        for origin in ("http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:9000"):
            assert not channel.origin_allowed(origin), origin
    finally:
        settings_module.reset()


async def test_a_local_page_cannot_connect_once_origins_are_configured(webchat):
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(webchat.url, transports=["polling"],
                          headers={"Origin": "http://localhost:3000"}, wait_timeout=TIMEOUT)


@pytest.mark.parametrize(
    "origin,allowed",
    [
        ("http://127.0.0.1:8080", True),  # configured
        ("http://localhost:3000", False),  # configured origins only, loopback or not
        ("http://[::1]:9000", False),
        (None, True),  # not a browser: CORS does not apply
        ("https://evil.example", False),
        ("http://localhost.evil.example", False),
        ("https://localhost:8080", False),
    ],
)
def test_origin_policy(origin, allowed):
    assert WebChatInput(allowed_origins=[ORIGIN]).origin_allowed(origin) is allowed


def test_star_allows_every_origin():
    assert WebChatInput(allowed_origins=["*"]).origin_allowed("https://trust.example.nhs.uk")
