"""The feedback survey offered when staff resolve a conversation in the console, delivered the
way staff replies go (the Rasa server's staff relay: the web chat page's room, the SMS
outbox), and offered by the duty service's quiet-period watcher through the same relay.

A Sanic app stands in for the Rasa server as in ``test_relay.py`` (the real web chat and relay
channels, Rasa's in-memory tracker and lock stores), its turns wrapped in the channels' real
``survey_first`` so a "yes" on the page starts the survey. The console is the real duty
service app with the real ``RelayTakeover``.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from argon2 import PasswordHasher
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot import settings as settings_module
from bot.channels.feedback_turn import survey_first
from bot.channels.relay import RelayInput
from bot.channels import webchat
from bot.channels.webchat import WebChatInput
from bot.duty import staff as staff_module
from bot.duty.app import create_app
from bot.duty import handoff
from bot.duty.handoff import RelayTakeover
from bot.duty.keys import DispatchTimings
from bot.escalation import dispatch
from bot.escalation.engine import record_escalation
from bot.feedback import questions, store, survey
from bot.sms.pseudonym import pseudonym
from bot.store import db
from bot.store.db import transaction
from bot.store.models.feedback import FeedbackSurvey
from bot.store.models.sms import SmsContact
from tests.console.conftest import PASSWORD, sign_in
from tests.handoff.conftest import PERSON, eventually
from tests.handoff.test_relay import ORIGIN, RELAY_TOKEN, Browser, StubAgent, free_port, status_of

Q = questions.load()


@pytest.fixture
async def rasa_stub(configure):
    """The stand-in Rasa server, with the survey's turn in front of the dialogue."""
    configure(RELAY_TOKEN=RELAY_TOKEN)
    agent = StubAgent()
    Sanic.test_mode = True
    app = Sanic(f"feedback_test_{uuid.uuid4().hex[:8]}", configure_logging=False)
    app.ctx.agent = agent
    turn = survey_first(agent.on_new_message)
    app.blueprint(WebChatInput(allowed_origins=[ORIGIN]).blueprint(turn))
    app.blueprint(RelayInput().blueprint(turn), url_prefix="/webhooks/relay")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True,
                                     access_log=False)
    await server.startup()
    task = asyncio.ensure_future(server.serve_forever())
    url = f"http://127.0.0.1:{port}"
    # http: the console's cookies are Secure (and not sent by the test client) under https.
    configure(RELAY_TOKEN=RELAY_TOKEN, RASA_URL=url, DUTY_PUBLIC_URL="http://localhost:8080")
    try:
        yield url, agent
    finally:
        task.cancel()
        server.close()


@pytest.fixture
async def console(pg_env, aiohttp_client, monkeypatch):
    """The duty service with the real takeover engine; a peer worker signed in. Returns
    ``resolve(ref)``, which presses Resolve and waits for the offer to be done with."""
    monkeypatch.setattr(staff_module, "hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    staff_module.create_staff(db.get_engine(pg_env), "pia", PASSWORD, "peer_worker",
                              display_name="Pia")

    async def start():
        cfg = settings_module.settings()
        engine = RelayTakeover(cfg)
        client = await aiohttp_client(create_app(cfg, takeover=engine))
        csrf = await sign_in(client, "pia")

        async def resolve(ref: str) -> str:
            resp = await client.post(f"/duty/e/{ref}/resolve",
                                     data={"csrf_token": csrf, "outcome": "supported"},
                                     allow_redirects=False)
            assert resp.status == 303
            await engine.offers.idle()
            return resp.headers["Location"]

        return resolve

    return start


def surveys(cid: str) -> list[tuple[str, str, str]]:
    with transaction() as s:
        return [(r.trigger, r.status, r.channel) for r in s.execute(
            select(FeedbackSurvey).where(FeedbackSurvey.conversation_id == cid)).scalars()]


async def test_resolving_a_web_chat_conversation_offers_the_survey_on_the_page(rasa_stub, console):
    url, agent = rasa_stub
    resolve = await console()
    page = Browser()
    try:
        sid = await page.open(url)
        await page.say("hello", sid)
        assert (await page.reply())["text"] == "assistant: hello"
        rec = await asyncio.to_thread(record_escalation, sid, "support", ["asked_for_human"],
                                      "socketio")

        assert "notice=resolved" in await resolve(rec.ref)
        offer = await page.reply()
        assert offer["text"] == Q.offer
        assert [q["title"] for q in offer["quick_replies"]] == ["yes", "no"]
        assert "sender" not in offer  # the assistant's words, not a member of staff's
        assert surveys(sid) == [("resolved", survey.OFFERED, "socketio")]
        # In the transcript (and replayed to a page that reconnects, buttons and all).
        said = (await agent.events(sid))[-1]
        assert said.text == Q.offer and said.metadata == {"feedback": "resolved", "ref": rec.ref}
        assert [b["payload"] for b in said.data["buttons"]] == ["yes", "no"]

        # The person presses "yes": the survey's first question, with its choices as buttons;
        # the dialogue never hears the answer.
        await page.say("yes", sid)
        first = await page.reply()
        assert first["text"] == Q.sets["default"][0].prompt()
        assert [q["title"] for q in first["quick_replies"]] == ["yes", "partly", "no", "skip"]
        assert "yes" not in [e.text for e in await agent.events(sid) if isinstance(e, UserUttered)]
        assert surveys(sid) == [("resolved", survey.ASKING, "socketio")]
    finally:
        await page.sio.eio.disconnect(abort=True)


async def test_resolving_an_sms_conversation_texts_the_offer(rasa_stub, console, fake_twilio,
                                                            handoff):
    url, agent = rasa_stub
    resolve = await console()
    await handoff(dispatchers=0, senders=1)
    pid = pseudonym(PERSON)
    with transaction() as s:
        dispatch.register_contact(s, PERSON)
    rec = await asyncio.to_thread(record_escalation, pid, "urgent", ["self_harm"], "sms")
    await resolve(rec.ref)
    [text] = await eventually(lambda: fake_twilio.to(PERSON), what="the offer by SMS")
    assert text["Body"] == Q.offer
    assert surveys(pid) == [("resolved", survey.OFFERED, "sms")]
    assert [e.text for e in await agent.events(pid)] == [Q.offer]


async def test_nobody_is_asked_who_may_not_be(rasa_stub, console, fake_twilio, handoff):
    """Opted out (STOP), or asked this week already: resolved without an offer."""
    url, agent = rasa_stub
    resolve = await console()
    await handoff(dispatchers=0, senders=1)
    opted = pseudonym(PERSON)
    with transaction() as s:
        dispatch.register_contact(s, PERSON)
        s.get(SmsContact, opted).opted_out = True
    asked = "sms-" + uuid.uuid4().hex
    store.offer(asked, "sms", "goodbye", Q)
    store.handle(asked, "no", "none", Q)
    for cid in (opted, asked):
        rec = await asyncio.to_thread(record_escalation, cid, "urgent", ["self_harm"], "sms")
        assert "notice=resolved" in await resolve(rec.ref)
        assert status_of(rec.ref) == "resolved"
    await asyncio.sleep(0.3)
    assert fake_twilio.to(PERSON) == []
    assert surveys(opted) == [] and surveys(asked) == [("goodbye", survey.DECLINED, "sms")]
    assert await agent.tracker_store.retrieve(opted) is None  # nothing written in the transcript


async def test_a_closed_web_chat_page_is_not_asked(rasa_stub, console):
    url, agent = rasa_stub
    resolve = await console()
    page = Browser()
    sid = await page.open(url)
    await page.say("hello", sid)
    await page.reply()
    await page.sio.eio.disconnect(abort=True)
    await eventually(lambda: webchat.active_channel().present(sid) == 0, what="the page closed")
    rec = await asyncio.to_thread(record_escalation, sid, "support", ["asked_for_human"],
                                  "socketio")
    await resolve(rec.ref)
    # Withdrawn: not counted as offered, not left live, and nothing waits in the transcript to
    # be replayed with nobody's survey behind its buttons.
    assert surveys(sid) == [] and not store.has_live_survey(sid)
    assert [e.text for e in await agent.events(sid) if isinstance(e, BotUttered)] == [
        "assistant: hello"]


async def test_the_relay_down_the_resolution_stands_and_nobody_is_counted_as_asked(
    pg_env, console, configure
):
    configure(RELAY_TOKEN=RELAY_TOKEN, RASA_URL="http://127.0.0.1:1",
              DUTY_PUBLIC_URL="http://localhost:8080")
    resolve = await console()
    rec = await asyncio.to_thread(record_escalation, "sms-" + uuid.uuid4().hex, "urgent",
                                  ["self_harm"], "sms")
    assert "notice=resolved" in await resolve(rec.ref)
    assert status_of(rec.ref) == "resolved"
    with transaction() as s:
        assert s.execute(select(FeedbackSurvey.id)).all() == []


async def test_the_duty_service_offers_after_the_quiet_period_through_the_relay(
    pg_env, rasa_stub, fake_twilio, configure, aiohttp_client
):
    """The quiet-period watcher as the duty service runs it (create_app(dispatch=True)):
    FEEDBACK_QUIET_MINUTES, its poll from DispatchTimings, the offer by SMS through the relay."""
    url, agent = rasa_stub
    configure(RELAY_TOKEN=RELAY_TOKEN, RASA_URL=url, FEEDBACK_QUIET_MINUTES="5")
    pid = pseudonym(PERSON)
    with transaction() as s:
        dispatch.register_contact(s, PERSON)
    # The person's last message, six minutes ago, saved by Rasa's SQL tracker store.
    parsed = make_url(settings_module.settings().database_url)
    sql = SQLTrackerStore(Domain.empty(), dialect="postgresql", host=parsed.host,
                          port=parsed.port, db=parsed.database, username=parsed.username)
    try:
        t = DialogueStateTracker(pid, [])
        t.update(UserUttered("thanks, that helps", input_channel="sms",
                             timestamp=time.time() - 6 * 60))
        await sql.save(t)
    finally:
        sql.engine.dispose()

    client = await aiohttp_client(create_app(
        settings_module.settings(), dispatch=True,
        dispatch_timings=DispatchTimings(sender_poll_s=0.05, quiet_poll_s=0.1)))
    watcher = client.server.app[handoff.QUIET_KEY]
    assert watcher.quiet_s == 5 * 60 and watcher.loop.poll_s == 0.1 and watcher.running
    [text] = await eventually(lambda: fake_twilio.to(PERSON), what="the offer by SMS")
    assert text["Body"] == Q.offer
    assert surveys(pid) == [("quiet", survey.OFFERED, "sms")]
    await asyncio.sleep(0.3)  # more passes: once is once
    assert len(fake_twilio.to(PERSON)) == 1
    await client.close()
    assert not watcher.running
