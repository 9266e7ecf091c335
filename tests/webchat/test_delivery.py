"""Nothing sent while the page is away is lost: every bot and staff message has an id, and a
page that comes back says the last id it has and is sent what came after, from the tracker
(polling transport, as the other channel tests)."""

from __future__ import annotations

import asyncio
import time


from bot.channels import webchat as webchat_module

from .test_channel import TIMEOUT, Browser




async def come_back(page: Browser, url: str, session_id: str, **resume) -> str:
    """A reload: the page asks for its session, saying (or not) the last message it has."""
    await page.sio.connect(url, transports=["polling"], headers={"Origin": "http://127.0.0.1:8080"},
                           wait_timeout=TIMEOUT)
    await page.sio.emit("session_request", {"session_id": session_id, **resume})
    return await asyncio.wait_for(page.confirmed.get(), TIMEOUT)


async def drain(page: Browser, wait: float = 0.5) -> list[dict]:
    got = []
    while True:
        try:
            got.append(await asyncio.wait_for(page.uttered.get(), wait))
        except asyncio.TimeoutError:  # noqa: UP041  Python 3.10
            return got


async def staff_writes_while_away(webchat, session_id: str, text: str) -> str:
    """What the staff relay does: record the message, then send it to the (empty) room."""
    uttered = await webchat.agent.bot_said(session_id, text, sender="staff", sender_name="Sam",
                                           actor="staff:sam", ref="E7K2Q")
    await webchat_module.send_to_conversation(
        session_id, text, {"sender": "staff", "sender_name": "Sam"}, uttered.timestamp)
    return webchat_module.message_id(uttered.timestamp)


async def test_every_reply_has_an_id_and_a_reload_gets_what_came_after_it(webchat, browser):
    page = browser()
    session_id = await page.open(webchat.url)
    await page.say("hello", session_id)
    first = await page.reply()
    assert webchat_module.parse_message_id(first["message_id"])
    await page.close()

    sent_id = await staff_writes_while_away(webchat, session_id, "Sam here, are you safe?")

    back = browser()
    assert await come_back(back, webchat.url, session_id,
                           last_message_id=first["message_id"]) == session_id
    replayed = await drain(back)
    # Only what the page missed, with the id it was sent with, and nothing of the trail.
    assert replayed == [{"text": "Sam here, are you safe?", "sender": "staff",
                         "sender_name": "Sam", "message_id": sent_id}]


async def test_a_page_with_no_messages_yet_gets_the_whole_conversation(webchat, browser):
    page = browser()
    session_id = await page.open(webchat.url)
    await page.say("hello", session_id)
    await page.reply()
    await page.close()
    await staff_writes_while_away(webchat, session_id, "Sam here")
    back = browser()
    await come_back(back, webchat.url, session_id, last_message_id=None)
    assert [m["text"] for m in await drain(back)] == ["echo: hello", "Sam here"]


async def test_a_client_that_does_not_ask_is_not_sent_old_messages(webchat, browser):
    # The stock widget's own session_request: {"session_id": ...} and nothing else. Its page
    # restores its own history; replaying it would show every message twice.
    page = browser()
    session_id = await page.open(webchat.url)
    await page.say("hello", session_id)
    await page.reply()
    await page.close()
    back = browser()
    await come_back(back, webchat.url, session_id)
    assert await drain(back) == []


async def test_an_id_the_tracker_does_not_hold_replays_what_was_sent_after_it(webchat, browser):
    # The fail-safe reply is not in the tracker: its id is the time it was sent.
    page = browser()
    session_id = await page.open(webchat.url)
    await page.say("hello", session_id)
    await page.reply()
    await page.close()
    failsafe_id = webchat_module.message_id(time.time())
    await staff_writes_while_away(webchat, session_id, "Sam here")
    back = browser()
    await come_back(back, webchat.url, session_id, last_message_id=failsafe_id)
    assert [m["text"] for m in await drain(back)] == ["Sam here"]


async def test_a_reply_of_a_turn_still_running_reaches_a_page_that_reloaded(webchat, browser):
    # The reply went out while the page was reloading, and the turn has not saved the tracker
    # yet: the replay waits for the turn (the conversation's lock), then sends it, once.
    webchat.agent.hold = asyncio.Event()
    page = browser()
    session_id = await page.open(webchat.url)
    await page.say("I have taken pills", session_id)
    await page.reply()  # sent to the room; say the page reloads before showing it
    await page.close()
    back = browser()
    await come_back(back, webchat.url, session_id, last_message_id=None)
    await asyncio.sleep(0.3)
    assert back.uttered.empty()  # the turn still holds the conversation
    webchat.agent.hold.set()
    assert [m["text"] for m in await drain(back)] == ["echo: I have taken pills"]


async def test_live_and_replayed_ids_agree_for_a_reply_in_parts(webchat, browser):
    # Rasa's socket.io protocol cuts a reply at blank lines: each part has its own id.
    page = browser()
    session_id = await page.open(webchat.url)
    await page.say("one\n\ntwo", session_id)
    live = [await page.reply(), await page.reply()]
    assert [m["text"] for m in live] == ["echo: one", "two"]
    back = browser()
    await come_back(back, webchat.url, session_id, last_message_id=live[0]["message_id"])
    assert await drain(back) == [live[1]]


async def test_a_message_is_acknowledged_at_once_and_a_resend_is_not_a_second_turn(webchat, browser):
    # The page marks a message sent only on this acknowledgement, and sends it again (same
    # client_id) when the connection dropped before it came.
    webchat.agent.hold = asyncio.Event()
    page = browser()
    session_id = await page.open(webchat.url)
    message = {"message": "help", "session_id": session_id, "client_id": "c-1"}
    ack = await page.sio.call("user_uttered", message, timeout=TIMEOUT)
    assert ack == {"ok": True}  # while the turn is still running
    again = await page.sio.call("user_uttered", message, timeout=TIMEOUT)
    assert again["ok"] is True
    webchat.agent.hold.set()
    assert [m["text"] for m in await drain(page)] == ["echo: help"]
    assert [m.text for m in webchat.received] == ["help"]


async def test_the_stock_widget_with_the_documented_settings_gets_what_it_missed_once(
    webchat, browser
):
    # docs/webchat.md: rasa-webchat 1.0.1's onSocketEvent "connect" handler asks with the last
    # id it stored, then the widget's own session_request (no last id) follows.
    page = browser()
    session_id = await page.open(webchat.url)
    await page.say("hello", session_id)
    last = (await page.reply())["message_id"]
    await page.close()
    sent_id = await staff_writes_while_away(webchat, session_id, "Sam here")
    widget = browser()
    await widget.sio.connect(webchat.url, transports=["polling"],
                             headers={"Origin": "http://127.0.0.1:8080"}, wait_timeout=TIMEOUT)
    await widget.sio.emit("session_request", {"session_id": session_id, "last_message_id": last})
    await widget.sio.emit("session_request", {"session_id": session_id})
    for _ in range(2):
        assert await asyncio.wait_for(widget.confirmed.get(), TIMEOUT) == session_id
    got = await drain(widget)
    assert [(m["text"], m["message_id"]) for m in got] == [("Sam here", sent_id)]
