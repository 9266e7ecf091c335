"""Property-based tests of the staff relay (``/webhooks/relay/*`` on the Rasa server).

The relay is the door through which staff words reach a person, so it must refuse anything
without its bearer token (401) and answer any malformed request with a 4xx and a JSON reason,
never a 5xx (the duty service would report "relay failed" to the member of staff) and never a
traceback or the text in the logs. A stand-in for the Rasa server (Rasa's in-memory tracker
and lock stores, the real web chat and relay channels) serves it on loopback HTTP, with the
real delivery: SMS into the outbox of a real database (SQLite, then PostgreSQL).
"""

from __future__ import annotations

import json
import uuid

from hypothesis import strategies as st

from bot.channels.relay import MAX_TEXT
from tests.fuzz.conftest import RELAY_TOKEN as TOKEN
from tests.fuzz.conftest import fuzz_property
from tests.fuzz.strategies import any_text, canary

STEPS = {
    "takeover": ("conversation_id", "channel", "ref", "actor", "display_name"),
    "send": ("conversation_id", "channel", "ref", "actor", "display_name", "text"),
    "handback": ("conversation_id", "channel", "ref", "actor", "display_name"),
    "notify": ("conversation_id", "channel", "ref", "text"),
    "feedback": ("conversation_id", "channel", "text", "choices", "trigger"),
}
# not_present: the feedback offer to a web chat conversation with no page open.
ERROR_CODES = {"bad_request", "unsupported_channel", "not_ready", "not_present"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def relay_request(draw) -> dict:
    """A relay call: usually the right shape with some fields wrong, sometimes not JSON at all."""
    step = draw(st.sampled_from(sorted(STEPS)))
    channel = draw(st.sampled_from(["sms", "socketio", "webchat"]) | any_text)
    conversation_id = (
        uuid.uuid4().hex if channel in ("socketio", "webchat") else "sms-" + uuid.uuid4().hex
    )
    marker = draw(canary())
    good = {
        "conversation_id": conversation_id, "channel": channel, "ref": "E7K2Q",
        "actor": "staff:pia", "display_name": "Pia",
        "text": draw(st.builds(lambda a, b: a + marker + b, any_text, any_text)),
        "choices": ["yes", "no"], "trigger": "resolved",
    }
    body = {key: good[key] for key in STEPS[step]}
    wrong = draw(st.lists(st.sampled_from(sorted(good)), max_size=2, unique=True))
    for key in wrong:
        body[key] = draw(json_values | st.text(min_size=MAX_TEXT - 5, max_size=MAX_TEXT + 50))
    raw = draw(st.one_of(
        st.just(None), st.just(None), st.just(None),
        st.binary(max_size=100), json_values.map(json.dumps).map(str.encode),
        st.just(b'{"conversation_id": '),
    ))
    well_formed = raw is None and not wrong and channel in ("sms", "socketio", "webchat")
    return {"step": step, "body": body, "raw": raw, "well_formed": well_formed,
            "secret": marker}


auth_headers = st.one_of(
    st.just(f"Bearer {TOKEN}"),
    st.just(f"Bearer {TOKEN}"),
    st.sampled_from([None, "", "Bearer", "Bearer ", f"bearer {TOKEN}", f"Token {TOKEN}",
                     f"Bearer {TOKEN} ", f"Bearer {TOKEN[:-1]}", TOKEN]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
)


async def test_relay_answers_401_or_a_json_4xx_never_a_5xx(relay, logs):
    url, session, _ = relay
    secrets: list[str] = []

    @fuzz_property(45, request=relay_request(), auth=auth_headers,
                   content_type=st.sampled_from(["application/json", "text/plain", ""]))
    async def check(request, auth, content_type):
        secrets.append(request["secret"])
        headers = {"Content-Type": content_type}
        if auth is not None:
            headers["Authorization"] = auth
        data = request["raw"] if request["raw"] is not None else json.dumps(request["body"])
        async with session.post(f"{url}/webhooks/relay/{request['step']}", data=data,
                                headers=headers) as resp:
            status, text = resp.status, await resp.text()
        assert "Traceback" not in text
        if auth != f"Bearer {TOKEN}":
            assert status == 401, (status, text)
            return
        assert status in (200, 400, 409), (status, text)
        body = json.loads(text)
        if status == 200:
            assert body["ok"] is True
        else:
            assert body["error"] in ERROR_CODES and body["message"], body
        if request["well_formed"] and request["body"]["channel"] == "sms":
            assert status == 200, (status, text)

    await check()
    logs.assert_clean(secrets)
