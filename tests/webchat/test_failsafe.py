"""A turn that fails never leaves the person in silence, on the web chat and on REST: the
fail-safe reply (999, Samaritans, NHS 111) arrives and staff are flagged; a conversation a
human holds stays quiet. The turn itself is a stub (raises, hangs, sends nothing)."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, Awaitable, Callable

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from sanic import Sanic
from sqlalchemy import select

from bot.channels import failsafe
from bot.sms.keywords import FAILSAFE_REPLY
from bot.channels.rest import RestInput
from bot.channels.webchat import WebChatInput
from bot.escalation import engine
from bot.store.db import transaction
from bot.store.models import Escalation

from tests.helpers import eventually

from .conftest import ORIGIN, free_port
from .test_channel import Browser

TIMEOUT_S = 0.5
Turn = Callable[[UserMessage], Awaitable[Any]]


class Page(Browser):
    async def reply(self) -> dict:
        got = await super().reply()
        # Every message has an id, the fail-safe reply too; the tests compare the rest.
        assert isinstance(got.pop("message_id"), str)
        return got


@asynccontextmanager
async def serve(channel, turn: Turn):
    Sanic.test_mode = True
    app = Sanic(f"failsafe_test_{uuid.uuid4().hex[:8]}")
    # Rasa mounts input channels under /webhooks/<name> (the web chat's socket.io at /).
    prefix = "/webhooks/rest" if isinstance(channel, RestInput) else None
    app.blueprint(channel.blueprint(turn), url_prefix=prefix)
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True,
                                     access_log=False)
    await server.startup()
    task = asyncio.ensure_future(server.serve_forever())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for late in list(failsafe._late):
            late.cancel()
        task.cancel()
        server.close()
        await server.wait_closed()


@pytest.fixture
async def chat(sqlite_url):
    """``chat(turn)``: a web chat on a free port whose turns run ``turn``; yields a browser
    with a confirmed session."""
    opened: list[Browser] = []

    @asynccontextmanager
    async def start(turn: Turn):
        async with serve(WebChatInput(allowed_origins=[ORIGIN], turn_timeout_s=TIMEOUT_S),
                         turn) as url:
            page = Page()
            opened.append(page)
            session_id = await page.open(url)
            yield page, session_id
            await page.close()

    yield start


def flags(conversation: str) -> list[tuple[str, str, dict]]:
    with transaction() as s:
        esc = s.execute(
            select(Escalation).where(Escalation.conversation_id == conversation)
        ).scalar_one_or_none()
        if esc is None:
            return []
        return [(esc.level, esc.channel, dict(e.data or {})) for e in esc.events
                if e.kind == "turn_failed"]


async def no_reply(page: Browser, within: float = TIMEOUT_S + 0.7) -> bool:
    try:
        await asyncio.wait_for(page.uttered.get(), within)
    except asyncio.TimeoutError:  # noqa: UP041  on Python 3.10 it is not the builtin TimeoutError
        return True
    return False


async def raises(message: UserMessage) -> None:
    raise RuntimeError("the agent fell over")


async def says_nothing(message: UserMessage) -> None:
    """What Rasa does when the action server is down: 'Bot will continue', and no reply."""
    return None


async def echoes(message: UserMessage) -> None:
    await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")


@pytest.mark.parametrize("turn,reason", [(raises, "RuntimeError"), (says_nothing, "no_reply")])
async def test_a_failed_or_silent_turn_sends_the_failsafe_and_flags_staff(chat, turn, reason):
    async with chat(turn) as (page, session_id):
        await page.say("hello", session_id)
        assert await page.reply() == {"text": FAILSAFE_REPLY}
        assert "999" in FAILSAFE_REPLY and "116 123" in FAILSAFE_REPLY and "111" in FAILSAFE_REPLY
        # The person's reply goes first; the staff flag follows at once.
        [(level, channel, data)] = await eventually(lambda: flags(session_id), timeout=2,
                                                    what="staff flagged")
        assert (level, channel, data) == ("support", "socketio",
                                          {"reason": reason, "channel": "socketio"})
        assert "hello" not in repr(data)


async def test_a_hung_turn_gets_the_failsafe_in_time_and_its_late_answer_still_arrives(chat):
    release = asyncio.Event()

    async def hangs(message: UserMessage) -> None:
        await release.wait()
        await message.output_channel.send_text_message(message.sender_id, "late answer")

    async with chat(hangs) as (page, session_id):
        started = time.monotonic()
        await page.say("hello", session_id)
        assert await page.reply() == {"text": FAILSAFE_REPLY}
        assert time.monotonic() - started < TIMEOUT_S + 1.0
        flagged = await eventually(lambda: flags(session_id), timeout=2, what="staff flagged")
        assert flagged[0][2]["reason"] == "timeout"
        release.set()
        assert await page.reply() == {"text": "late answer"}


async def test_an_answered_turn_gets_no_failsafe(chat):
    async with chat(echoes) as (page, session_id):
        await page.say("hello", session_id)
        assert await page.reply() == {"text": "echo: hello"}
        assert await no_reply(page)
        assert flags(session_id) == []


async def test_a_conversation_a_human_holds_stays_quiet(chat):
    async with chat(says_nothing) as (page, session_id):
        rec = engine.record_escalation(session_id, "support", ["asked_for_human"], "socketio")
        engine.take_over(rec.ref, "staff:pia", "Pia")
        await page.say("are you there", session_id)
        assert await no_reply(page)
        assert flags(session_id) == []
        # Handed back: the assistant answers again, so silence is a failure again.
        engine.hand_back(rec.ref, "staff:pia")
        await page.say("hello?", session_id)
        assert await page.reply() == {"text": FAILSAFE_REPLY}


async def _post(url: str, sender: str, text: str, stream: bool = False) -> Any:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/webhooks/rest/webhook" + ("?stream=true" if stream else ""),
                             json={"sender": sender, "message": text}) as resp:
            assert resp.status == 200
            return await (resp.text() if stream else resp.json())


@pytest.mark.parametrize("turn,reason", [(raises, "RuntimeError"), (says_nothing, "no_reply")])
async def test_rest_answers_a_failed_turn_with_the_failsafe(sqlite_url, turn, reason):
    async with serve(RestInput(turn_timeout_s=TIMEOUT_S), turn) as url:
        assert await _post(url, "rest-1", "hello") == [
            {"recipient_id": "rest-1", "text": FAILSAFE_REPLY}
        ]
        assert FAILSAFE_REPLY in await _post(url, "rest-2", "hello", stream=True)
    assert flags("rest-1") == [("support", "rest", {"reason": reason, "channel": "rest"})]


async def test_rest_keeps_the_stock_protocol_when_the_turn_answers(sqlite_url):
    async with serve(RestInput(turn_timeout_s=TIMEOUT_S), echoes) as url:
        assert RestInput.name() == "rest"
        assert await _post(url, "rest-3", "hi") == [{"recipient_id": "rest-3", "text": "echo: hi"}]
    assert flags("rest-3") == []


async def test_rest_answers_a_hung_turn_within_the_timeout(sqlite_url):
    async def hangs(message: UserMessage) -> None:
        await asyncio.sleep(30)

    async with serve(RestInput(turn_timeout_s=TIMEOUT_S), hangs) as url:
        started = time.monotonic()
        assert await _post(url, "rest-4", "hello") == [
            {"recipient_id": "rest-4", "text": FAILSAFE_REPLY}
        ]
        assert time.monotonic() - started < TIMEOUT_S + 1.0
    assert flags("rest-4")[0][2]["reason"] == "timeout"
