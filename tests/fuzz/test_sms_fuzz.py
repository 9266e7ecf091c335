"""Property-based tests of the SMS channel's routes: whatever arrives, never a 5xx or a traceback.

The channel runs as in tests/channels (a sanic app on loopback HTTP, a fake Twilio API, a stub
agent), once per test, on SQLite and on PostgreSQL; hypothesis sends it many requests:

- unsigned or wrongly signed requests of any shape get 403 and store nothing;
- signed webhooks with arbitrary fields (unicode, huge, empty, repeated, malformed MessageSid,
  From, NumMedia) get 200 (a message Twilio could send) or a 4xx naming the problem;
- a signed message sent several times, one after another or at once, is stored exactly once;
- signed status callbacks with arbitrary statuses and error codes get 204 or 400;
- and in every case no traceback, no error from our code, and neither the message text nor the
  phone number in the logs.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlencode

from hypothesis import strategies as st
from multidict import MultiDict
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.store.models.sms import SmsInbox, SmsOutbox
from bot.store.db import transaction
from tests.channels.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    LINE_NUMBER,
    PUBLIC_BASE,
    StubAgent,
    new_sid,
)
from tests.fuzz.conftest import fuzz_property
from tests.fuzz.strategies import any_text, canary
from tests.helpers import eventually

WEBHOOK = "/webhooks/sms/webhook"
STATUS = "/webhooks/sms/status"
FORM = "application/x-www-form-urlencoded"
SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
# UK mobile numbers in the range Ofcom keeps for drama (07700 900000-900999), in E.164;
# 9000xx and 9001xx-9003xx are the example rota's staff, so people's numbers start at 900500.
people_numbers = st.integers(900500, 900999).map(lambda n: f"+447700{n}")


async def quiet(_message) -> None:
    """An agent that answers nothing: these tests are about the webhook, not the turn."""


# -- strategies --------------------------------------------------------------------------------

huge_text = st.integers(1_600, 12_000).map(lambda n: "x" * n)
bad_sids = st.one_of(
    any_text,
    st.just(""),
    st.text("0123456789abcdefABCDEF", min_size=30, max_size=40).map(lambda h: "SM" + h),
    st.sampled_from(["SM" + "g" * 32, "sm" + "a" * 32, "SM" + "a" * 32 + "\n", "12"]),
)
bad_numbers = st.one_of(
    any_text.filter(lambda t: not re.fullmatch(r"[\s\-()]*\+[1-9][\d\s\-()]{5,}", t)),
    st.sampled_from(["", "+", "+0123456", "447700900123", "+44770090012345678", "anonymous"]),
)
bad_num_media = st.one_of(
    any_text.filter(lambda t: not re.fullmatch(r"\s*[+-]?\d+\s*", t) and t.strip() != ""),
    st.sampled_from(["-1", "11", "99999999999999999999", "1.5", "１", "²"]),
)


@st.composite
def signed_webhook(draw) -> dict:
    """A Twilio-shaped webhook, each field valid or not; ``valid`` says if all of them are."""
    marker = draw(canary())

    def broken() -> bool:
        # Each field is malformed one time in six, so that most webhooks get as far as the
        # database and the dialogue, where unusual text does the damage.
        return draw(st.integers(0, 5)) == 0

    fields = {
        "MessageSid": draw(st.one_of(st.just(None), bad_sids)) if broken() else new_sid(),
        "From": draw(bad_numbers) if broken() else draw(people_numbers),
        "NumMedia": draw(bad_num_media) if broken() else str(draw(st.integers(0, 10))),
        "Body": draw(st.one_of(
            st.builds(lambda a, b: a + marker + b, any_text, any_text),
            st.just(""),
            huge_text.map(lambda t: t + marker),
            st.none(),
        )),
    }
    valid = (
        fields["MessageSid"] is not None and SID.fullmatch(fields["MessageSid"]) is not None
        and re.fullmatch(r"\+447700\d{6}", fields["From"]) is not None
        and fields["NumMedia"].isascii() and fields["NumMedia"].isdigit()
        and 0 <= int(fields["NumMedia"]) <= 10
        and fields["Body"] is not None and len(fields["Body"]) <= 5000
    )
    pairs = [(k, v) for k, v in fields.items() if v is not None]
    pairs += [("AccountSid", ACCOUNT_SID), ("To", LINE_NUMBER), ("FromCity", "")]
    # Repeated fields, in any order, and fields Twilio never sends.
    extra = draw(st.lists(st.tuples(
        st.sampled_from(["Body", "From", "MessageSid", "NumMedia", "SmsSid"]) | any_text,
        any_text,
    ), min_size=1, max_size=3)) if broken() else []
    if extra:
        valid = False
    pairs = draw(st.permutations(pairs + extra))
    secrets = [marker]
    if fields["From"] and re.fullmatch(r"\+\d{8,}", fields["From"]):
        secrets.append(fields["From"])
    return {"pairs": pairs, "valid": valid, "secrets": secrets, "fields": fields}


def sign(path: str, pairs: list[tuple[str, str]], token: str = AUTH_TOKEN) -> str:
    """What Twilio puts in X-Twilio-Signature for these form fields."""
    return RequestValidator(token).compute_signature(PUBLIC_BASE + path, MultiDict(pairs))


async def post_raw(server, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with server.session.post(server.url + path, data=body, headers=headers) as resp:
        return resp.status, await resp.text()


def inbox_count() -> int:
    with transaction() as s:
        return s.execute(select(func.count()).select_from(SmsInbox)).scalar_one()


# -- properties --------------------------------------------------------------------------------


async def test_unsigned_or_forged_requests_get_403_and_store_nothing(twilio_env, servers, logs):
    server = await servers(StubAgent(quiet))

    @fuzz_property(
        40,
        path=st.sampled_from([WEBHOOK, STATUS]),
        body=st.one_of(
            st.binary(max_size=300),
            st.lists(st.tuples(any_text, any_text), max_size=6).map(
                lambda p: urlencode(p).encode()
            ),
        ),
        content_type=st.sampled_from([FORM, f"{FORM}; charset=utf-8", "application/json",
                                      "text/plain", "multipart/form-data", ""])
        | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
        signature=st.one_of(
            st.none(),
            st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
            st.just(sign(WEBHOOK, [("Body", "hello")], token="not-the-token")),
        ),
    )
    async def check(path, body, content_type, signature):
        headers = {"Content-Type": content_type}
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        status, text = await post_raw(server, path, body, headers)
        assert status == 403, (status, text)
        assert "Traceback" not in text

    await check()
    assert inbox_count() == 0 and server.agent.messages == []
    logs.assert_clean()


async def test_signed_webhooks_with_any_fields_get_200_or_a_4xx(twilio_env, servers, logs):
    server = await servers(StubAgent(quiet))
    secrets: list[str] = []
    accepted: set[str] = set()

    @fuzz_property(50, hook=signed_webhook(), content_type=st.sampled_from(
        [FORM, f"{FORM}; charset=utf-8", "Application/X-WWW-Form-URLEncoded"]))
    async def check(hook, content_type):
        secrets.extend(hook["secrets"])
        pairs = hook["pairs"]
        status, text = await post_raw(
            server, WEBHOOK, urlencode(pairs).encode("utf-8"),
            {"Content-Type": content_type, "X-Twilio-Signature": sign(WEBHOOK, pairs)},
        )
        assert status in (200, 400, 413), (status, text)
        assert "Traceback" not in text and len(text) < 200
        if hook["valid"]:
            assert status == 200, (text, hook["fields"])
        if status == 200:
            assert text.endswith("<Response/>")
            first: dict[str, str] = {}
            for name, value in pairs:  # a repeated field counts by its first value
                first.setdefault(name, value)
            accepted.add(first.get("MessageSid") or first["SmsSid"])
        else:
            # A reason a developer can act on, never an echo of what was sent.
            assert text in {"missing or malformed MessageSid", "missing or malformed From",
                            "malformed NumMedia", "missing Body", "Body too long"}, text

    await check()
    # Everything acknowledged was stored, once.
    with transaction() as s:
        stored = set(s.execute(select(SmsInbox.message_sid)).scalars())
    assert accepted <= stored
    logs.assert_clean(secrets)


async def test_bodies_that_are_not_utf8_get_a_4xx(twilio_env, servers, logs):
    server = await servers(StubAgent(quiet))

    @fuzz_property(
        20,
        body=st.binary(min_size=1, max_size=200).filter(lambda b: not _utf8(b)),
        signed_for_nothing=st.booleans(),
    )
    async def check(body, signed_for_nothing):
        headers = {"Content-Type": FORM}
        if signed_for_nothing:
            # A signature over no fields at all: what a body that cannot be read amounts to.
            headers["X-Twilio-Signature"] = sign(WEBHOOK, [])
        status, text = await post_raw(server, WEBHOOK, body, headers)
        assert status == (400 if signed_for_nothing else 403), (status, text)

    await check()
    assert inbox_count() == 0
    logs.assert_clean()


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def test_a_signed_message_is_stored_once_however_often_twilio_sends_it(
    twilio_env, servers, logs
):
    agent = StubAgent(quiet)
    server = await servers(agent)
    secrets: list[str] = []

    @fuzz_property(
        15,
        text=st.builds(lambda a, m: a + m, any_text.filter(lambda t: t.strip()), canary()),
        number=people_numbers,
        repeats=st.integers(2, 4),
        at_once=st.booleans(),
    )
    async def check(text, number, repeats, at_once):
        secrets.extend([text, number])
        sid = new_sid()
        pairs = [("MessageSid", sid), ("SmsSid", sid), ("AccountSid", ACCOUNT_SID),
                 ("From", number), ("To", LINE_NUMBER), ("Body", text), ("NumMedia", "0")]
        body = urlencode(pairs).encode("utf-8")
        headers = {"Content-Type": FORM, "X-Twilio-Signature": sign(WEBHOOK, pairs)}
        if at_once:
            results = await asyncio.gather(
                *(post_raw(server, WEBHOOK, body, headers) for _ in range(repeats))
            )
        else:
            results = [await post_raw(server, WEBHOOK, body, headers) for _ in range(repeats)]
        assert [status for status, _ in results] == [200] * repeats, results
        with transaction() as s:
            rows = s.execute(select(SmsInbox).where(SmsInbox.message_sid == sid)).scalars().all()
            assert len(rows) == 1
        await eventually(
            lambda: [m for m in agent.messages if m.metadata["sms"]["message_sid"] == sid],
            what="the turn",
        )

    await check()
    # One turn per message, however many deliveries.
    sids = [m.metadata["sms"]["message_sid"] for m in agent.messages]
    assert len(sids) == len(set(sids))
    logs.assert_clean(secrets)


async def test_status_callbacks_with_any_fields_get_204_or_400(
    twilio_env, fake_twilio, servers, logs
):
    server = await servers(StubAgent())  # echoes, so there is a sent message to report on
    await server.sms("hello")
    await eventually(lambda: fake_twilio.created, what="a reply at the fake Twilio")
    sent_sid = fake_twilio.created[0]["sid"]

    def marked():
        with transaction() as s:
            return s.execute(select(SmsOutbox.twilio_sid)).scalar_one() == sent_sid

    await eventually(marked, what="the SID on the outbox row")

    @fuzz_property(
        40,
        sid=st.one_of(st.just(sent_sid), st.builds(new_sid), bad_sids),
        status=st.one_of(
            st.sampled_from(["queued", "sent", "delivered", "undelivered", "failed", "read"]),
            any_text,
            st.text(min_size=25, max_size=300),
        ),
        error_code=st.one_of(st.none(), st.sampled_from(["30003", "30005", "21610"]), any_text,
                             st.text(min_size=33, max_size=200)),
        repeated=st.booleans(),
    )
    async def check(sid, status, error_code, repeated):
        pairs = [("MessageSid", sid), ("MessageStatus", status), ("AccountSid", ACCOUNT_SID)]
        if error_code is not None:
            pairs.append(("ErrorCode", error_code))
        if repeated:
            pairs.append(("MessageStatus", "delivered"))
        resp_status, text = await post_raw(
            server, STATUS, urlencode(pairs).encode("utf-8"),
            {"Content-Type": FORM, "X-Twilio-Signature": sign(STATUS, pairs)},
        )
        assert resp_status in (204, 400), (resp_status, text)
        twilio_like = SID.fullmatch(sid) and re.fullmatch(r"[a-z_]{1,24}", status.lower())
        assert resp_status == (204 if twilio_like else 400), (resp_status, text)

    await check()
    logs.assert_clean()
