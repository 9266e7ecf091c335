"""The block list on the web chat, through socket.io as a browser sees it: a blocked session's
ordinary message is answered with the emergency numbers and nothing else (the bot's turn does
not run, and the fail-safe does not take that for a silent turn); an urgent message still
reaches the bot. The bot here is a stub (tests/integration has the real one)."""

from __future__ import annotations

from rasa.core.channels.channel import UserMessage

from bot.channels.contact_turn import BLOCKED_REPLY
from bot.escalation import blocks, engine
from bot.store.db import get_engine

from .test_failsafe import chat, flags, no_reply  # noqa: F401  the fixture and helpers

heard: list[str] = []


async def echoes(message: UserMessage) -> None:
    heard.append(message.text)
    await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")


async def test_a_blocked_session_gets_the_numbers_and_an_urgent_message_gets_through(chat):  # noqa: F811
    heard.clear()
    async with chat(echoes) as (page, session_id):
        first = engine.record_escalation(session_id, "support", channel="socketio")
        engine.resolve(first.ref, "staff:mo", "supported")
        blocks.block(get_engine(), first.ref, "staff:mo", "repeated abusive messages", 4)
        await page.say("hello", session_id)
        assert await page.reply() == {"text": BLOCKED_REPLY}
        assert await no_reply(page)
        assert heard == [] and flags(session_id) == []  # not a failed turn
        await page.say("I want to kill myself", session_id)
        assert await page.reply() == {"text": "echo: I want to kill myself"}
        assert heard == ["I want to kill myself"]
