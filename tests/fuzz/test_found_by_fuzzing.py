"""Plain regression tests, one for each bug the fuzz tests in this folder found.

Each was a 5xx (or a traceback in the log) for a client's mistake; the fuzz tests would find
them again, but only with luck, so each gets a fixed example here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import urlencode

from sqlalchemy import select

from bot.store.models.sms import SmsInbox, SmsOutbox
from bot.store.db import transaction
from tests.channels.conftest import StubAgent, new_sid
from tests.duty.conftest import AUTH, TOKEN
from tests.fuzz.conftest import RELAY_TOKEN
from tests.fuzz.test_sms_fuzz import FORM, STATUS, WEBHOOK, post_raw, sign
from tests.helpers import eventually

PERSON = "+447700900600"


# -- SMS channel (bot/channels/sms.py) -------------------------------------------------------


async def test_a_nul_in_an_sms_is_dropped_and_the_message_kept(twilio_env, servers):
    """Was a 500 on PostgreSQL ("A string literal cannot contain NUL"): the message was lost."""
    agent = StubAgent()
    server = await servers(agent)
    sid = new_sid()
    pairs = [("MessageSid", sid), ("From", PERSON), ("Body", "help\x00 me"), ("NumMedia", "0")]
    status, _ = await post_raw(server, WEBHOOK, urlencode(pairs).encode(),
                               {"Content-Type": FORM, "X-Twilio-Signature": sign(WEBHOOK, pairs)})
    assert status == 200
    await eventually(lambda: agent.messages, what="the turn")
    assert agent.messages[0].text == "help me"


async def test_status_callbacks_twilio_would_never_send_are_400_not_500(
    twilio_env, fake_twilio, servers
):
    """A NUL in ErrorCode was a 500 on PostgreSQL; a status longer than the column, too."""
    server = await servers(StubAgent())
    await server.sms("hello")
    await eventually(lambda: fake_twilio.created, what="the reply")
    sent = fake_twilio.created[0]["sid"]

    def marked():
        with transaction() as s:
            return s.execute(select(SmsOutbox.twilio_sid)).scalar_one() == sent

    await eventually(marked, what="the SID on the outbox row")

    async def callback(*pairs: tuple[str, str]) -> int:
        pairs = (("MessageSid", sent), *pairs)
        status, _ = await post_raw(server, STATUS, urlencode(pairs).encode(),
                                   {"Content-Type": FORM, "X-Twilio-Signature": sign(STATUS,
                                                                                     pairs)})
        return status

    assert await callback(("MessageStatus", "x" * 30)) == 400
    assert await callback(("MessageStatus", "sent\x00")) == 400
    # A known status with an error code that is not a number: recorded, the code dropped.
    assert await callback(("MessageStatus", "undelivered"), ("ErrorCode", "300\x0003")) == 204
    with transaction() as s:
        row = s.execute(select(SmsOutbox)).scalar_one()
        assert row.delivery_status == "undelivered" and row.error_code is None
        assert s.execute(select(SmsInbox.message_sid)).scalar_one()  # the hello, stored


# -- staff relay (bot/channels/relay.py) -----------------------------------------------------


async def test_relay_refuses_malformed_calls_with_400_not_502(relay):
    """Each of these was a 502 "relay_failed" (and an ERROR in the Rasa server's log)."""
    url, session, agent = relay
    headers = {"Authorization": f"Bearer {RELAY_TOKEN}", "Content-Type": "application/json"}
    base = {"conversation_id": "sms-" + "a" * 40, "channel": "sms", "ref": "E7K2Q",
            "actor": "staff:pia", "display_name": "Pia", "text": "hello"}
    cases = {
        "not JSON": b'{"conversation_id": ',
        "text not a string": json.dumps({**base, "text": 12}).encode(),
        "display name not a string": json.dumps({**base, "display_name": ["Pia"]}).encode(),
        "web chat id that is not one": json.dumps({**base, "channel": "socketio",
                                                   "conversation_id": "nope"}).encode(),
        "SMS id longer than any": json.dumps({**base, "conversation_id": "s" * 65}).encode(),
    }
    for name, data in cases.items():
        async with session.post(f"{url}/webhooks/relay/send", data=data,
                                headers=headers) as resp:
            body = await resp.json()
            assert resp.status == 400, (name, resp.status, body)
            assert body["error"] == "bad_request" and body["message"], name
    # Refused before the transcript was touched: nothing recorded that nobody received.
    assert await agent.tracker_store.retrieve("nope") is None
    # And a NUL in a staff message is dropped, not a database error.
    async with session.post(f"{url}/webhooks/relay/send", headers=headers,
                            data=json.dumps({**base, "text": "hi\x00 there"})) as resp:
        assert resp.status == 200, await resp.text()
    with transaction() as s:
        assert s.execute(select(SmsOutbox.body)).scalar_one() == "hi there"


# -- duty service (bot/duty/api.py, middlewares.py) -------------------------------------------


async def test_limit_in_other_digits_is_400_not_500(client):
    """``?limit=²`` was a 500 (str.isdigit() says yes, int() says no); ``١٢`` was read as 12."""
    for raw in ("²", "١٢", "１０"):
        resp = await client.get("/api/escalations", params={"limit": raw}, headers=AUTH)
        assert resp.status == 400, raw
        assert (await resp.json())["error"] == "bad_request"


async def test_an_id_with_a_trailing_newline_is_not_that_id(client, seed):
    """``/api/escalations/1%0A`` returned escalation 1: the id pattern ended in ``$``."""
    esc_id = seed("urgent")
    assert (await client.get(f"/api/escalations/{esc_id}", headers=AUTH)).status == 200
    for key in (f"{esc_id}%0A", f"{esc_id}%0A%0A"):
        resp = await client.get(f"/api/escalations/{key}", headers=AUTH)
        assert resp.status == 404, key
        assert (await resp.json())["error"] == "not_found"


async def raw_request(client, header: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(b"GET /api/escalations HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header
                     + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    return int(answer.split()[1]), answer


async def test_headers_that_are_not_utf8_are_401_not_500(client):
    """A bearer token or session cookie with bytes that are not UTF-8 was a 500."""
    for header in (b"Authorization: Bearer \x80\xff", b"Cookie: duty_session=\xc3\x28"):
        status, answer = await raw_request(client, header)
        assert status == 401, answer[:200]


async def test_a_malformed_request_is_one_warning_without_the_header_in_the_log(
    client, caplog
):
    """aiohttp logged an unparseable request at ERROR with a traceback quoting the header line,
    session cookie or API token included."""
    caplog.set_level(logging.DEBUG)
    status, _ = await raw_request(client, b"Authorization: Bearer " + TOKEN.encode() + b"\x01")
    assert status == 400
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert records and all(r.levelno == logging.WARNING and not r.exc_info for r in records)
    assert not [r for r in caplog.records if TOKEN in r.getMessage()]


async def test_a_message_sid_with_a_trailing_newline_is_refused(twilio_env, fake_twilio, servers):
    # "^...$" matched before a final newline, so "SM…\n" was stored as a second message.
    server = await servers(StubAgent())
    status, _, _ = await server.sms("hello", sid=new_sid() + "\n")
    assert status == 400
    with transaction() as s:
        assert s.execute(select(SmsInbox.id)).first() is None
