"""Outbound: a part that may already be at Twilio is looked for there before it is posted again.

A part is in doubt when an earlier post of it may have been accepted without the row being
marked: its process died with the row ``sending``, or the request timed out after Twilio took
it. The fake Twilio API lists what it accepted as Twilio does, so each test asserts what the
person would see: how many SMS with that text reached their phone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import aiohttp
import pytest
from sqlalchemy import select, update

from bot.sms import outbox
from bot.store.models.sms import SmsOutbox
from bot.escalation import dispatch
from bot.escalation.engine import record_escalation
from bot.store.db import transaction
from bot.store.models import Escalation, utcnow
from tests.channels.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    LINE_NUMBER,
    PERSON,
    StubAgent,
    configure,
    eventually,
    free_port,
    person_id,
)

DEAD_OWNER = "dead-host:1:gone"


def outbox_rows() -> list[SmsOutbox]:
    with transaction() as s:
        return s.execute(select(SmsOutbox).order_by(SmsOutbox.id)).scalars().all()


def row(row_id: int) -> SmsOutbox:
    with transaction() as s:
        return s.execute(select(SmsOutbox).where(SmsOutbox.id == row_id)).scalar_one()


def bodies_to_person(fake) -> list[str]:
    return [m["Body"] for m in fake.to(PERSON)]


def write_part(text: str) -> int:
    """One reply part for PERSON (contact on record), not yet claimed by any sender."""
    with transaction() as s:
        dispatch.register_contact(s, PERSON)
    [row_id] = outbox.enqueue(person_id(), text, "reply", None, 3)
    return row_id


def claimed_by_a_dead_sender(row_id: int) -> None:
    """A sender claims the part and its process dies: the row stays ``sending`` until its
    lease runs out (here at once, as if the lease had long expired)."""
    [claimed] = outbox.claim_due(DEAD_OWNER, dt.timedelta(seconds=30), set())
    assert claimed.id == row_id and not claimed.in_doubt
    with transaction() as s:
        s.execute(update(SmsOutbox).where(SmsOutbox.id == row_id)
                  .values(lease_until=utcnow() - dt.timedelta(seconds=1)))


async def post_as_the_dead_sender(fake, text: str) -> str:
    """What the dead sender did before it was killed: Twilio accepted the part."""
    auth = aiohttp.BasicAuth(ACCOUNT_SID, AUTH_TOKEN)
    async with aiohttp.ClientSession(auth=auth) as session:
        async with session.post(
            f"{fake.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
            data={"To": PERSON, "From": LINE_NUMBER, "Body": text},
        ) as resp:
            assert resp.status == 201
            return (await resp.json())["sid"]


async def settled(row_id: int) -> None:
    await eventually(lambda: row(row_id).status == "sent", what="the row marked sent")
    await asyncio.sleep(0.3)  # nothing else goes out afterwards


async def test_a_part_twilio_accepted_before_its_sender_died_is_not_sent_again(
    twilio_env, fake_twilio, servers, caplog
):
    caplog.set_level(logging.DEBUG)
    text = "You can call Samaritans free on 116 123, day or night."
    row_id = write_part(text)
    claimed_by_a_dead_sender(row_id)
    accepted_sid = await post_as_the_dead_sender(fake_twilio, text)

    await servers(StubAgent())  # the restarted process reclaims the row and looks first
    await settled(row_id)
    assert bodies_to_person(fake_twilio) == [text]
    assert len(fake_twilio.requests) == 1  # the dead sender's post only
    assert [(q["To"], q["From"]) for q in fake_twilio.lookups] == [(PERSON, LINE_NUMBER)]
    assert int(fake_twilio.lookups[0]["PageSize"]) == outbox.LOOKUP_PAGE_SIZE
    found = row(row_id)
    assert found.twilio_sid == accepted_sid and found.delivery_status == "queued"
    assert found.error_code == "found_at_twilio" and found.in_doubt
    # The look-up's query carries the number; neither it nor the text reaches the logs.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "already accepted by Twilio" in logged
    for needle in (PERSON, PERSON[1:], "7700900123", text):
        assert needle not in logged


async def test_a_part_that_never_reached_twilio_is_posted_once(twilio_env, fake_twilio, servers):
    text = "Is anyone with you right now?"
    row_id = write_part(text)
    claimed_by_a_dead_sender(row_id)  # killed before it posted

    await servers(StubAgent())
    await settled(row_id)
    assert bodies_to_person(fake_twilio) == [text]
    assert len(fake_twilio.lookups) == 1 and len(fake_twilio.requests) == 1
    assert row(row_id).twilio_sid == fake_twilio.created[0]["sid"]


@pytest.mark.parametrize("failure", [(500, None, 0), (200, None, 1.0)],
                         ids=["500", "time-out"])
async def test_a_failed_look_up_still_posts_the_part(twilio_env, fake_twilio, servers, failure):
    # The look-up answers 500, or not within send_timeout_s (0.5 s): the part is posted
    # anyway. Had the dead sender's post arrived, the person would get it twice; a duplicate
    # is better than a reply held back.
    fake_twilio.list_script = [failure]
    text = "If you are in danger now, call 999."
    row_id = write_part(text)
    claimed_by_a_dead_sender(row_id)

    await servers(StubAgent())
    await settled(row_id)
    assert bodies_to_person(fake_twilio) == [text]
    assert len(fake_twilio.lookups) == 1
    assert row(row_id).error_code is None


async def test_a_time_out_after_twilio_accepted_ends_with_one_sms(
    twilio_env, fake_twilio, servers
):
    # Twilio creates the message at once but its answer comes after send_timeout_s (0.5 s).
    fake_twilio.hold_s = [1.5]
    server = await servers(StubAgent())
    await server.sms("hello")
    await eventually(lambda: outbox_rows() and outbox_rows()[0].status == "sent",
                     what="the reply marked sent")
    await asyncio.sleep(1.5)  # past the held answer: nothing else goes out
    assert bodies_to_person(fake_twilio) == ["echo: hello"]
    assert len(fake_twilio.requests) == 1 and len(fake_twilio.lookups) == 1
    [sent] = outbox_rows()
    assert sent.twilio_sid == fake_twilio.created[0]["sid"]
    assert sent.attempts == 1 and sent.error_code == "found_at_twilio"


async def test_an_ordinary_send_and_definite_refusals_do_no_look_up(
    twilio_env, fake_twilio, servers
):
    server = await servers(StubAgent())
    await server.sms("hello")
    await eventually(lambda: outbox_rows() and outbox_rows()[0].status == "sent",
                     what="the first reply sent")
    # A 500 and a 429 are answers: Twilio created nothing, so the retries need no look-up.
    fake_twilio.script = [(500, None, 0), (429, 20429, 0)]
    await server.sms("again")
    await eventually(lambda: len(outbox_rows()) == 2 and outbox_rows()[1].status == "sent",
                     what="the second reply sent after two retries")
    await asyncio.sleep(0.2)
    assert bodies_to_person(fake_twilio) == ["echo: hello", "echo: again"]
    assert len(fake_twilio.requests) == 4
    assert fake_twilio.lookups == []
    assert [r.in_doubt for r in outbox_rows()] == [False, False]


async def test_the_same_text_sent_before_by_another_row_is_not_taken_for_this_one(
    twilio_env, fake_twilio, servers
):
    # Two replies with the same short text, seconds apart: the first was sent and recorded;
    # the second's sender died before posting. The copy Twilio lists belongs to the first.
    first = write_part("OK.")
    server = await servers(StubAgent())
    await settled(first)
    await server.stop()

    second = write_part("OK.")
    claimed_by_a_dead_sender(second)
    await servers(StubAgent())
    await settled(second)
    assert bodies_to_person(fake_twilio) == ["OK.", "OK."]
    assert len(fake_twilio.lookups) == 1
    assert row(second).twilio_sid == fake_twilio.created[1]["sid"] != row(first).twilio_sid


async def test_a_found_copy_that_twilio_could_not_deliver_is_shown_to_staff(
    twilio_env, fake_twilio, servers
):
    record_escalation(person_id(), "urgent", ["self_harm"], channel="sms")
    text = "Someone from the team will text you shortly."
    row_id = write_part(text)
    claimed_by_a_dead_sender(row_id)
    await post_as_the_dead_sender(fake_twilio, text)
    # Its "undelivered" callback came while no row held the SID, so it matched nothing.
    fake_twilio.created[0].update(status="undelivered", error_code=30003)

    await servers(StubAgent())
    await settled(row_id)
    assert len(fake_twilio.requests) == 1
    found = row(row_id)
    assert found.delivery_status == "undelivered" and found.error_code == "30003"
    with transaction() as s:
        esc = s.execute(select(Escalation).where(
            Escalation.conversation_id == person_id())).scalar_one()
        assert "delivery_failed" in [e.kind for e in esc.events]


async def test_a_connection_never_made_leaves_the_part_out_of_doubt(
    twilio_env, fake_twilio, servers, monkeypatch
):
    # Nothing listens on the API's port: no request can have reached Twilio.
    configure(monkeypatch, f"http://127.0.0.1:{free_port()}")
    server = await servers(StubAgent(), max_send_attempts=2)
    await server.sms("hello")
    await eventually(lambda: outbox_rows() and outbox_rows()[0].status == "failed",
                     what="giving up")
    [failed] = outbox_rows()
    assert failed.error_code == "gave_up:network" and not failed.in_doubt


async def test_local_mode_records_a_part_in_doubt_without_a_look_up(
    twilio_env, fake_twilio, servers, monkeypatch
):
    row_id = write_part("Take a slow breath.")
    claimed_by_a_dead_sender(row_id)
    configure(monkeypatch, fake_twilio.url, TWILIO_ACCOUNT_SID=None)
    await servers(StubAgent())
    await eventually(lambda: row(row_id).status == "not_sent_local", what="recorded locally")
    assert fake_twilio.lookups == [] and fake_twilio.requests == []
