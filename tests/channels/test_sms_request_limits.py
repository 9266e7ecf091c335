"""Large and unsigned requests cannot hold up the Rasa server.

An unsigned 10 MB form body was read and parsed whole before the signature was looked at
(sanic allowed 100 MB): three at once delayed the acknowledgement of a risk SMS to 13 s.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.store.models.sms import SmsInbox
from bot.channels.sms import MAX_FIELDS, MAX_REQUEST_BYTES
from bot.store.db import transaction
from tests.channels.conftest import AUTH_TOKEN, PUBLIC_BASE, StubAgent

TEN_MB = 10 * 1024 * 1024
WEBHOOK = "/webhooks/sms/webhook"


async def first_answer(port: int, headers: dict[str, str], sent_body: bytes,
                       request: str = f"POST {WEBHOOK}") -> tuple[str, float]:
    """Send the request line, the headers and only ``sent_body`` of the body they announce;
    the status line of the answer and how long it took. A server that waits for the whole
    body before answering never answers here (the test's time-out)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        head = f"{request} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(head.encode() + sent_body)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout=5)
        return line.decode().strip(), time.monotonic() - started
    finally:
        writer.close()


async def test_an_unsigned_10_mb_body_is_refused_without_being_read(twilio_env, servers):
    server = await servers(StubAgent())
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    # Announced as 10 MB; only the first 64 KB ever sent: the answer cannot wait for the rest.
    line, took = await first_answer(server.port, {**form, "Content-Length": str(TEN_MB)},
                                    b"Body=" + b"x" * 65_531)
    assert line.split()[1] in ("403", "413") and took < 2
    # No signature, a small body announced: refused before the body is read too.
    line, took = await first_answer(server.port, {**form, "Content-Length": "60000"},
                                    b"Body=xxx")
    assert line.split()[1] == "403" and took < 2


async def test_a_signed_request_beyond_the_cap_gets_413_and_stores_nothing(twilio_env, servers):
    server = await servers(StubAgent())
    big = {"MessageSid": "SM" + "a" * 32, "From": "+447700900123",
           "Body": "x" * (MAX_REQUEST_BYTES + 1)}
    status, body, _ = await server.post(WEBHOOK, big)
    assert status == 413 and "larger than" in body
    # Chunked, so no Content-Length gives the size away: still cut off at the cap.

    async def chunks():
        yield b"MessageSid=SM" + b"b" * 32 + b"&From=%2B447700900123&Body="
        for _ in range(40):
            yield b"y" * 4096

    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE + WEBHOOK, {})
    async with server.session.post(server.url + WEBHOOK, data=chunks(), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature,
    }) as resp:
        assert resp.status == 413
    with transaction() as s:
        assert s.execute(select(func.count()).select_from(SmsInbox)).scalar_one() == 0


async def test_a_form_with_too_many_fields_gets_413(twilio_env, servers):
    server = await servers(StubAgent())
    params = {"MessageSid": "SM" + "c" * 32, "From": "+447700900123", "Body": "hi",
              **{f"X{i}": "" for i in range(MAX_FIELDS)}}
    status, body, _ = await server.post(WEBHOOK, params)
    assert status == 413 and "fields" in body


async def test_a_real_message_is_acknowledged_while_big_unsigned_bodies_arrive(
    twilio_env, servers
):
    server = await servers(StubAgent())
    form = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(TEN_MB)}
    floods = [asyncio.ensure_future(first_answer(server.port, form, b"Body=" + b"x" * 65_531))
              for _ in range(3)]
    started = time.monotonic()
    status, _, _ = await server.sms("i have taken all my pills")
    assert status == 200 and time.monotonic() - started < 2
    for answer in await asyncio.gather(*floods):
        assert answer[0].split()[1] in ("403", "413")


async def test_the_rasa_servers_request_size_limit_is_lowered(twilio_env, servers):
    # Every route of the server, not only the webhook (here the channel's health route):
    # sanic's default was 100 MB.
    server = await servers(StubAgent())
    line, _ = await first_answer(server.port, {"Content-Type": "application/json",
                                               "Content-Length": str(5 * 1024 * 1024)}, b"{",
                                 request="GET /webhooks/sms/")
    assert line.split()[1] == "413"
