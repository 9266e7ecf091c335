"""An honest wait, end to end (issue 27, part 3): the duty service's wait watcher sends a person
waiting for a human an update through the Rasa server's staff relay, on web chat and SMS, and
stops for good once a human has the conversation.

The Rasa server is the stand-in of ``test_relay.py`` (the real web chat and relay channels,
Rasa's in-memory tracker and lock stores); the duty side is the real ``WaitWatcher`` with the
duty service's ``send_wait``, the real dispatcher and SMS sender, and the shared fake Twilio
API. Real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import functools

from sqlalchemy import select

from bot import settings as settings_module
from bot.channels import webchat
from bot.duty.app import create_app
from bot.duty.handoff import WAIT_KEY, RelayClient, RelayTakeover, send_wait
from bot.duty.keys import DispatchTimings
from bot.escalation import dispatch, engine, wait
from bot.escalation.engine import record_escalation
from bot.escalation.wait_watch import WaitWatcher
from bot.plan import store as plan_store
from bot.sms.pseudonym import pseudonym
from bot.store.db import transaction
from bot.store.models import EscalationEvent
from tests.handoff.conftest import PERSON, ROTA, eventually
from tests.handoff import test_relay
from tests.handoff.test_relay import RELAY_TOKEN, Browser, staff, status_of

# The stand-in Rasa server of test_relay.py (the real web chat and relay channels).
rasa_stub = test_relay.rasa_stub

# The test rota with nobody on shift in any tier (a gap in the rota).
NOBODY = "\n".join(line.replace('[{days: daily, from: "00:00", to: "00:00", staff: [pia]}]', "[]")
                   .replace('[{days: daily, from: "00:00", to: "00:00", staff: [sam]}]', "[]")
                   .replace('[{days: daily, from: "00:00", to: "00:00", staff: [cal]}]', "[]")
                   for line in ROTA.splitlines())
# Long enough for several more updates at the tests' interval: none may come.
QUIET_S = 1.2
INTERVAL_S = 0.3


def watcher(**options) -> WaitWatcher:
    relay = RelayClient(settings_module.settings())
    options = {"interval_s": INTERVAL_S, "poll_s": 0.05, **options}
    return WaitWatcher(functools.partial(send_wait, relay), **options)


def trail(ref: str, kind: str) -> list[dict]:
    with transaction() as s:
        esc = engine.load(s, ref, lock=False)
        return [dict(e.data) for e in s.execute(
            select(EscalationEvent).where(EscalationEvent.escalation_id == esc.id,
                                          EscalationEvent.kind == kind)
            .order_by(EscalationEvent.seq)).scalars()]


def texts_to_person(fake_twilio) -> list[str]:
    return [m["Body"] for m in fake_twilio.to(PERSON)]


def sms_person() -> str:
    with transaction() as s:
        dispatch.register_contact(s, PERSON)
    return pseudonym(PERSON)


async def test_web_chat_staff_on_call_but_slow_then_a_take_over_stops_the_updates(
    pg_env, rasa_stub, fake_twilio, handoff
):
    """Staff are on call and alerted but nobody has answered: the person hears, every
    interval, that they are still waiting and that nobody knows yet how long (no history);
    when a member of staff takes over they hear who joined, and then no update ever again."""
    url, agent = rasa_stub
    await handoff()  # the dispatcher alerts tier 1; support's timeout is 15 minutes
    page = Browser()
    waits = watcher()
    try:
        sid = await page.open(url)
        rec = await asyncio.to_thread(record_escalation, sid, "support", ["asked_for_human"],
                                      "socketio")
        await eventually(lambda: status_of(rec.ref) == "alerted", what="the first alert")
        await waits.start()
        first = await page.reply()
        assert first["text"].startswith("Automated update: you're still waiting for a person. "
                                        "I don't know yet how long it will be.")
        assert "Team on call now: 2." in first["text"] and "Reply CALM" in first["text"]
        assert first["sender"] == "system"
        second = await page.reply()
        assert second["text"] == first["text"]
        # In the transcript as the line's own message.
        said = [e for e in await agent.events(sid)][-1]
        assert said.metadata["sender"] == "system" and said.metadata["wait"] is True

        await RelayTakeover(settings_module.settings()).take_over(rec.ref, staff())
        joined = (await page.reply())["text"]
        while joined.startswith("Automated update"):  # one sent as the take-over began
            joined = (await page.reply())["text"]
        assert joined == ("Pia from the on-call team has joined the conversation. You are now "
                          "talking to a person, not the automated assistant.")
        sent = len(trail(rec.ref, wait.UPDATE_KIND))
        await asyncio.sleep(QUIET_S)
        assert page.uttered.empty()
        assert len(trail(rec.ref, wait.UPDATE_KIND)) == sent
        assert [e.text for e in await agent.events(sid)][-1] == joined
        entries = trail(rec.ref, wait.UPDATE_KIND)
        assert [e["number"] for e in entries] == list(range(1, sent + 1))
        assert {e["wording"] for e in entries} == {wait.UNKNOWN}
    finally:
        await waits.stop()
        await page.sio.eio.disconnect(abort=True)


async def test_sms_with_nobody_on_call_says_so_plainly_with_the_numbers(
    pg_env, rasa_stub, fake_twilio, handoff, configure, tmp_path
):
    """A gap in the rota: every tier is skipped, the person is told once that nobody could be
    reached (with 999, 111 and Samaritans), and then each update says it is still trying,
    honestly, with the numbers; the person's plan is offered when they have one."""
    url, _ = rasa_stub
    empty = tmp_path / "nobody.yml"
    empty.write_text(NOBODY)
    configure(RELAY_TOKEN=RELAY_TOKEN, RASA_URL=url, ROTA_FILE=str(empty))
    pid = sms_person()
    rec = await asyncio.to_thread(record_escalation, pid, "support", ["asked_for_human"], "sms")
    await handoff()
    [told] = await eventually(lambda: texts_to_person(fake_twilio), what="the honest message")
    assert told == dispatch.NO_HUMAN_TEXT and "999" in told and "116 123" in told
    waits = watcher(has_plan=lambda cid: cid == pid)
    await waits.start()
    try:
        texts = await eventually(lambda: len(texts_to_person(fake_twilio)) >= 2
                                 and texts_to_person(fake_twilio), what="an update by SMS")
        update = texts[1]
        assert update.startswith("Automated update: I still haven't reached anyone from our "
                                 "team, and I'm still trying.")
        for needed in ("999", "Samaritans 116 123", "NHS 111 option 2", "Reply CALM",
                       "PLAN for your plan"):
            assert needed in update
        assert len(update) <= 306
        [entry, *_] = trail(rec.ref, wait.UPDATE_KIND)
        assert entry["wording"] == wait.UNREACHED and entry["on_call"] == 0
        assert entry["offers"] == ["calm", "plan"]
        assert status_of(rec.ref) == "open"  # nobody was alerted: still waiting
    finally:
        await waits.stop()


async def test_sms_a_resolution_stops_the_updates(pg_env, rasa_stub, fake_twilio, handoff):
    await handoff()
    pid = sms_person()
    rec = await asyncio.to_thread(record_escalation, pid, "support", ["asked_for_human"], "sms")
    waits = watcher()
    await waits.start()
    try:
        await eventually(lambda: len(texts_to_person(fake_twilio)) >= 2, what="two updates")
        await asyncio.to_thread(engine.resolve, rec.ref, "staff:sam", "signposted")
        await asyncio.sleep(INTERVAL_S)  # an update claimed just before may still arrive
        count = len(texts_to_person(fake_twilio))
        await asyncio.sleep(QUIET_S)
        assert len(texts_to_person(fake_twilio)) == count
        assert all(t.startswith("Automated update") for t in texts_to_person(fake_twilio))
        assert len(trail(rec.ref, wait.UPDATE_KIND)) == count
    finally:
        await waits.stop()


async def test_a_take_over_between_the_claim_and_the_send_is_never_followed_by_an_update(
    pg_env, rasa_stub, fake_twilio, handoff
):
    """The race the row lock cannot close: the update is claimed, then staff take over, then
    the update reaches the relay. The relay checks the pause under the conversation's lock
    and refuses it; the person's last message is "has joined", and the trail says why the
    update did not go."""
    await handoff(dispatchers=0)
    pid = sms_person()
    rec = await asyncio.to_thread(record_escalation, pid, "urgent", ["self_harm"], "sms")
    relay = RelayClient(settings_module.settings())
    takeover = RelayTakeover(settings_module.settings())

    async def take_over_then_send(message) -> None:
        await takeover.take_over(rec.ref, staff())
        await send_wait(relay, message)

    waits = WaitWatcher(take_over_then_send, interval_s=0, poll_s=0.05)
    await waits.run_once()
    assert waits.outcomes == [(rec.ref, 1, "paused")]
    assert trail(rec.ref, wait.UNSENT_KIND) == [{"number": 1, "code": "paused"}]
    [joined] = await eventually(lambda: texts_to_person(fake_twilio), what="the joined text")
    assert joined.startswith("Pia from the on-call team has joined")
    await waits.run_once()  # held now: nothing is even claimed
    assert len(trail(rec.ref, wait.UPDATE_KIND)) == 1
    await asyncio.sleep(0.3)
    assert texts_to_person(fake_twilio) == [joined]


async def test_web_chat_with_no_page_open_gets_nothing_recorded(pg_env, rasa_stub):
    url, agent = rasa_stub
    page = Browser()
    sid = await page.open(url)
    await page.sio.eio.disconnect(abort=True)
    await eventually(lambda: not webchat.present(sid), what="the page to close")
    rec = await asyncio.to_thread(record_escalation, sid, "support", ["asked_for_human"],
                                  "socketio")
    waits = watcher(interval_s=0)
    await waits.run_once()
    assert waits.outcomes == [(rec.ref, 1, "absent")]
    tracker = await agent.tracker_store.retrieve(sid)
    assert tracker is None or not [e for e in tracker.events
                                   if getattr(e, "metadata", None) and e.metadata.get("wait")]


async def test_the_duty_service_runs_the_wait_watcher_from_its_settings(
    pg_env, rasa_stub, fake_twilio, configure, aiohttp_client
):
    url, _ = rasa_stub
    configure(RELAY_TOKEN=RELAY_TOKEN, RASA_URL=url, WAIT_UPDATE_SECONDS="1")
    pid = sms_person()
    # The person has a crisis plan saved (bot/plan): the duty service's updates offer it.
    for said in ("PLAN", "yes", "Going for a walk helps", "DONE"):
        await asyncio.to_thread(plan_store.handle, pid, said, "sms")
    assert await asyncio.to_thread(plan_store.has_plan, pid)
    await asyncio.to_thread(record_escalation, pid, "support", ["asked_for_human"], "sms")
    client = await aiohttp_client(create_app(
        settings_module.settings(), dispatch=True,
        dispatch_timings=DispatchTimings(sender_poll_s=0.05, wait_poll_s=0.05)))
    waits = client.server.app[WAIT_KEY]
    assert waits.interval_s == 1 and waits.loop.poll_s == 0.05 and waits.running
    [update] = await eventually(lambda: texts_to_person(fake_twilio), what="an update by SMS")
    assert update.startswith("Automated update: you're still waiting for a person.")
    assert "PLAN for your plan" in update
    await client.close()
    assert not waits.running

    configure(RELAY_TOKEN=RELAY_TOKEN, RASA_URL=url, WAIT_UPDATE_SECONDS="0")
    client = await aiohttp_client(create_app(settings_module.settings(), dispatch=True))
    assert WAIT_KEY not in client.server.app
    await client.close()
