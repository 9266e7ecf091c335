"""Takeover through the Rasa server's staff relay, on web chat and SMS.

A Sanic app stands in for the Rasa server: the real web chat channel and the real relay
channel, and a stub agent with Rasa's in-memory tracker and lock stores whose turn does what
Rasa's processor does with a paused conversation (records the message, predicts nothing).
The duty side is the real ``RelayTakeover`` talking to it over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import uuid

import aiohttp
import pytest
import socketio
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Sanic
from sqlalchemy import select

from bot import settings as settings_module
from bot.sms.pseudonym import pseudonym
from bot.channels.relay import RelayInput
from bot.channels.webchat import WebChatInput
from bot.duty.handoff import RelayTakeover
from bot.duty.staff import Principal
from bot.duty.takeover import TakeoverError
from bot.escalation import dispatch
from bot.escalation.__main__ import verify
from bot.escalation.engine import record_escalation
from bot.store.db import transaction
from bot.store.models import Escalation
from tests.handoff.conftest import PERSON, eventually

ORIGIN = "http://127.0.0.1:8080"
RELAY_TOKEN = "relay-test-token-51c9"
TIMEOUT = 5


class StubAgent:
    def __init__(self) -> None:
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.lock_store = InMemoryLockStore()

    async def on_new_message(self, message) -> None:
        async with self.lock_store.lock(message.sender_id):
            tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
            tracker.update(UserUttered(message.text, input_channel=message.input_channel))
            if not tracker.is_paused():
                text = f"assistant: {message.text}"
                await message.output_channel.send_text_message(message.sender_id, text)
                tracker.update(BotUttered(text))
            await self.tracker_store.save(tracker)

    async def events(self, cid: str) -> list:
        tracker = await self.tracker_store.retrieve(cid)
        return [e for e in tracker.events if isinstance(e, (UserUttered, BotUttered))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def rasa_stub(configure):
    configure(RELAY_TOKEN=RELAY_TOKEN)
    agent = StubAgent()
    Sanic.test_mode = True
    app = Sanic(f"relay_test_{uuid.uuid4().hex[:8]}", configure_logging=False)
    app.ctx.agent = agent
    app.blueprint(WebChatInput(allowed_origins=[ORIGIN]).blueprint(agent.on_new_message))
    app.blueprint(RelayInput().blueprint(agent.on_new_message), url_prefix="/webhooks/relay")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True,
                                     access_log=False)
    await server.startup()
    task = asyncio.ensure_future(server.serve_forever())
    url = f"http://127.0.0.1:{port}"
    configure(RELAY_TOKEN=RELAY_TOKEN, RASA_URL=url)
    try:
        yield url, agent
    finally:
        task.cancel()
        server.close()


class Browser:
    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.confirmed: asyncio.Queue = asyncio.Queue()
        self.uttered: asyncio.Queue = asyncio.Queue()
        self.sio.on("session_confirm", self.confirmed.put_nowait)
        self.sio.on("bot_uttered", self.uttered.put_nowait)

    async def open(self, url: str) -> str:
        await self.sio.connect(url, transports=["polling"], headers={"Origin": ORIGIN},
                               wait_timeout=TIMEOUT)
        await self.sio.emit("session_request", {"session_id": None})
        return await asyncio.wait_for(self.confirmed.get(), TIMEOUT)

    async def say(self, text: str, session_id: str) -> None:
        await self.sio.emit("user_uttered", {"message": text, "session_id": session_id})

    async def reply(self, timeout: float = TIMEOUT) -> dict:
        return await asyncio.wait_for(self.uttered.get(), timeout)


def staff(username: str = "pia", name: str = "Pia") -> Principal:
    return Principal(1, username, name, "peer_worker", None, "csrf",
                     dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))


def status_of(ref: str) -> str:
    with transaction() as s:
        return s.execute(select(Escalation).where(Escalation.ref == ref)).scalar_one().status


async def test_takeover_on_web_chat_relays_both_ways_and_silences_the_assistant(pg_env, rasa_stub):
    url, agent = rasa_stub
    page = Browser()
    try:
        sid = await page.open(url)
        await page.say("hello", sid)
        assert (await page.reply())["text"] == "assistant: hello"
        rec = await asyncio.to_thread(record_escalation, sid, "urgent", ["self_harm"], "socketio")
        engine = RelayTakeover(settings_module.settings())

        await engine.take_over(rec.ref, staff())
        joined = await page.reply()
        assert joined["text"].startswith("Pia from the on-call team has joined")
        assert joined["sender"] == "staff" and joined["sender_name"] == "Pia"
        assert status_of(rec.ref) == "active"

        await page.say("are you a real person?", sid)
        await engine.reply(rec.ref, staff(), "Yes, I'm Pia. I'm here with you.")
        msg = await page.reply()
        assert msg["text"] == "Yes, I'm Pia. I'm here with you." and msg["sender"] == "staff"
        # The assistant said nothing to the person's message while the human held it.
        with pytest.raises(asyncio.TimeoutError):
            await page.reply(timeout=0.3)

        # The person's message and the staff's are in the transcript the console reads.
        events = await agent.events(sid)
        texts = [(type(e).__name__, e.text, (e.metadata or {}).get("sender")) for e in events]
        assert ("UserUttered", "are you a real person?", None) in texts
        assert ("BotUttered", "Yes, I'm Pia. I'm here with you.", "staff") in texts
        staff_msg = next(e for e in events if e.text.startswith("Yes, I'm Pia"))
        assert staff_msg.metadata["actor"] == "staff:pia"

        # Only the holder may reply.
        with pytest.raises(TakeoverError, match="someone else"):
            await engine.reply(rec.ref, staff("sam", "Sam"), "hi")

        await engine.hand_back(rec.ref, staff())
        assert "handed you back to the automated assistant" in (await page.reply())["text"]
        await page.say("thanks", sid)
        assert (await page.reply())["text"] == "assistant: thanks"
        assert status_of(rec.ref) == "acknowledged"
        with transaction() as s:
            esc = s.execute(select(Escalation).where(Escalation.ref == rec.ref)).scalar_one()
            kinds = [e.kind for e in esc.events]
        assert kinds == ["created", "acknowledged", "taken_over", "staff_message", "handed_back"]
        assert verify().ok
    finally:
        await page.sio.eio.disconnect(abort=True)


async def test_takeover_on_sms_reaches_the_person_through_the_outbox(
    pg_env, rasa_stub, fake_twilio, handoff
):
    url, agent = rasa_stub
    await handoff(dispatchers=0, senders=1)
    pid = pseudonym(PERSON)
    with transaction() as s:
        dispatch.register_contact(s, PERSON)
    rec = await asyncio.to_thread(record_escalation, pid, "urgent", ["self_harm"], "sms")
    engine = RelayTakeover(settings_module.settings())
    await engine.take_over(rec.ref, staff())
    await engine.reply(rec.ref, staff(), "I'm Pia from the team. Are you safe right now?")
    msgs = await eventually(lambda: len(fake_twilio.to(PERSON)) >= 2 and fake_twilio.to(PERSON),
                            what="two SMS to the person")
    assert msgs[0]["Body"].startswith("Pia from the on-call team has joined")
    assert msgs[1]["Body"] == "I'm Pia from the team. Are you safe right now?"
    tracker = await agent.tracker_store.retrieve(pid)
    assert tracker.is_paused()
    await engine.hand_back(rec.ref, staff())
    tracker = await agent.tracker_store.retrieve(pid)
    assert not tracker.is_paused()


async def test_failed_relay_undoes_the_takeover(pg_env, configure):
    configure(RELAY_TOKEN=RELAY_TOKEN, RASA_URL="http://127.0.0.1:1")
    rec = await asyncio.to_thread(record_escalation, "conv-down", "urgent", [], "socketio")
    with pytest.raises(TakeoverError, match="could not be reached"):
        await RelayTakeover(settings_module.settings()).take_over(rec.ref, staff())
    assert status_of(rec.ref) == "acknowledged"  # a human saw it; nobody holds it


async def test_relay_refuses_without_the_token(pg_env, rasa_stub):
    url, _ = rasa_stub
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            async with http.post(f"{url}/webhooks/relay/send", json={}, headers=headers) as resp:
                assert resp.status == 401


async def test_nobody_acknowledged_on_web_chat_tells_the_person_through_the_relay(
    pg_env, rasa_stub, fake_twilio, handoff, configure
):
    from bot.duty.handoff import RelayClient

    url, agent = rasa_stub
    configure(RELAY_TOKEN=RELAY_TOKEN, RASA_URL=url, ESCALATION_ACK_TIMEOUT_S="1")
    relay = RelayClient(settings_module.settings())

    async def notify(cid: str, channel: str, ref: str, text: str) -> None:
        await relay.post("notify", {"conversation_id": cid, "channel": channel, "ref": ref,
                                    "text": text})

    page = Browser()
    try:
        sid = await page.open(url)
        await asyncio.to_thread(record_escalation, sid, "support", ["asked_for_human"], "socketio")
        await handoff(notify=notify)
        told = await page.reply(timeout=5)
        assert "999" in told["text"] and "116 123" in told["text"]
        assert told["sender"] == "system"
        events = await agent.events(sid)
        assert events[-1].metadata["sender"] == "system"
    finally:
        await page.sio.eio.disconnect(abort=True)


async def test_console_takeover_end_to_end_on_web_chat(
    pg_env, rasa_stub, aiohttp_client, monkeypatch, configure
):
    from argon2 import PasswordHasher

    from bot.duty import staff as staff_module
    from bot.duty.app import create_app
    from bot.store import db
    from tests.console.conftest import PASSWORD, sign_in

    monkeypatch.setattr(staff_module, "hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    staff_module.create_staff(db.get_engine(pg_env), "pia", PASSWORD, "peer_worker",
                              display_name="Pia")
    url, agent = rasa_stub
    # http: the console's cookies are Secure (and not sent by the test client) under https.
    configure(RELAY_TOKEN=RELAY_TOKEN, RASA_URL=url, DUTY_PUBLIC_URL="http://localhost:8080")
    cfg = settings_module.settings()
    client = await aiohttp_client(create_app(cfg, takeover=RelayTakeover(cfg)))
    csrf = await sign_in(client, "pia")
    page = Browser()
    try:
        sid = await page.open(url)
        rec = await asyncio.to_thread(record_escalation, sid, "urgent", ["self_harm"], "socketio")
        html = await (await client.get(f"/duty/e/{rec.ref}")).text()
        assert "Take over" in html

        async def post(step: str, **data: str) -> str:
            resp = await client.post(f"/duty/e/{rec.ref}/{step}", data={"csrf_token": csrf, **data},
                                     allow_redirects=False)
            assert resp.status == 303
            return resp.headers["Location"]

        assert "notice=taken_over" in await post("takeover")
        assert (await page.reply())["text"].startswith("Pia from the on-call team has joined")
        assert "notice=reply_sent" in await post("reply", text="Hello, I'm Pia.")
        assert (await page.reply())["text"] == "Hello, I'm Pia."
        await page.say("thank you", sid)
        await asyncio.sleep(0.2)
        # The console's transcript (read from the tracker store) would show it; the stub
        # keeps the tracker in memory, so read it there.
        assert (await agent.events(sid))[-1].text == "thank you"
        assert "notice=handed_back" in await post("handback")
        assert "handed you back" in (await page.reply())["text"]
        assert status_of(rec.ref) == "acknowledged"
    finally:
        await page.sio.eio.disconnect(abort=True)
