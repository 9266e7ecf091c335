"""Pure parts of the channel: segments, pseudonyms, the token bucket; and the DB claim rules."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.channels import inbox
from bot.store.models.sms import SmsContact, SmsInbox, SmsOptOut, SmsOutbox
from bot.sms.pseudonym import (
    BadNumber,
    decrypt_number,
    encrypt_number,
    normalise_number,
    pseudonym,
)
from bot.channels.ratelimit import TokenBucket
from bot.sms.segments import (
    GSM7,
    UCS2,
    encoding_of,
    normalise,
    segment_count,
    split_message,
)
from bot.store.db import transaction
from tests.channels.conftest import PERSON, StubAgent, eventually, new_sid

# -- segments -------------------------------------------------------------------------------


def test_gsm7_sizes():
    assert segment_count("a" * 160) == 1
    assert segment_count("a" * 161) == 2
    assert segment_count("a" * 306) == 2 and segment_count("a" * 307) == 3
    # Extension characters take two septets.
    assert segment_count("€" * 80) == 1 and segment_count("€" * 81) == 2
    assert encoding_of("Call 999 or go to A&E.") == GSM7


def test_ucs2_sizes():
    assert encoding_of("héllo ✓") == UCS2
    assert segment_count("✓" * 70) == 1 and segment_count("✓" * 71) == 2
    assert segment_count("✓" * 134) == 2 and segment_count("✓" * 135) == 3
    # An emoji is a surrogate pair: two units, never split across segments.
    assert segment_count("🌿" * 35) == 1 and segment_count("🌿" * 36) == 2


def test_curly_quotes_do_not_force_ucs2():
    [part] = split_message("I\u2019m here \u2013 you\u2019re not alone\u2026")
    assert part.encoding == GSM7 and part.text == "I'm here - you're not alone..."


def test_split_prefers_sentence_boundaries():
    text = "First sentence is here. " * 5 + "Second part follows! And a question?"
    parts = split_message(text, max_segments=1)
    assert all(p.segments == 1 for p in parts)
    assert all(p.text[-1] in ".!?" for p in parts)
    assert " ".join(p.text for p in parts) == text.strip()


def test_a_single_huge_word_is_cut_by_characters():
    parts = split_message("x" * 400, max_segments=1)
    assert [len(p.text) for p in parts] == [160, 160, 80]


def test_empty_text_sends_nothing():
    assert split_message("  \n ") == []
    with pytest.raises(ValueError):
        split_message("hi", max_segments=0)


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("abc  XYZ.,!?\n€[é✓🌿\u2019")), min_size=0, max_size=700
    ),
    st.integers(min_value=1, max_value=4),
)
def test_split_property_every_part_fits_and_no_words_are_lost(text, max_segments):
    parts = split_message(text, max_segments=max_segments)
    assert all(p.text and p.text == p.text.strip() for p in parts)
    assert all(segment_count(p.text) <= max_segments for p in parts)
    # Splitting only happens at white space or inside an over-long word: the characters
    # other than white space come out in order, none lost, none added.
    assert "".join("".join(p.text.split()) for p in parts) == "".join(normalise(text).split())


# -- pseudonyms -----------------------------------------------------------------------------


def test_pseudonym_is_stable_keyed_and_hides_the_number():
    a = pseudonym(PERSON, key="k1")
    assert a == pseudonym("+44 7700 900123", key="k1")
    assert a != pseudonym(PERSON, key="k2")
    assert a.startswith("sms-") and "7700900123" not in a and len(a) <= 64


def test_number_encryption_round_trip_and_wrong_key():
    token = encrypt_number(PERSON, key="k1")
    assert PERSON not in token and decrypt_number(token, key="k1") == PERSON
    with pytest.raises(ValueError):
        decrypt_number(token, key="k2")


def test_bad_numbers_are_refused_without_echoing_them():
    with pytest.raises(BadNumber) as err:
        normalise_number("07700 900123")
    assert "07700" not in str(err.value)


# -- token bucket ---------------------------------------------------------------------------


def test_token_bucket_refills_and_never_says_drop():
    now = [0.0]
    bucket = TokenBucket(capacity=2, refill_per_s=1, clock=lambda: now[0])
    assert bucket.try_take("a") and bucket.try_take("a")
    assert not bucket.try_take("a") and bucket.wait_s("a") == pytest.approx(1.0)
    assert bucket.try_take("b")  # per sender
    now[0] = 1.0
    assert bucket.try_take("a")


# -- claims: one turn at a time per conversation, across processes --------------------------


def _statuses():
    with transaction() as s:
        return s.execute(select(SmsInbox.status).order_by(SmsInbox.id)).scalars().all()


def test_a_second_worker_never_takes_the_next_message_of_a_busy_conversation(
    twilio_env, fake_twilio
):
    other = "+447700900999"
    for body in ("one", "two"):
        inbox.receive(new_sid(), PERSON, body, 0)
    inbox.receive(new_sid(), other, "elsewhere", 0)
    lease = dt.timedelta(seconds=30)
    a = inbox.claim("worker-a", lease)
    assert sorted(c.body for c in a) == ["elsewhere", "one"]
    # Worker B (another process) sees "two" waiting but "one" is still being answered.
    assert inbox.claim("worker-b", lease) == []
    inbox.finish(next(c.id for c in a if c.body == "one"), "worker-a", "done")
    [b] = inbox.claim("worker-b", lease)
    assert b.body == "two"


def test_concurrent_claims_never_double_run_a_conversation(twilio_env, fake_twilio):
    for i in range(5):
        inbox.receive(new_sid(), PERSON, f"m{i}", 0)
    results, barrier = {}, threading.Barrier(4)

    def claimer(name):
        barrier.wait()
        results[name] = inbox.claim(name, dt.timedelta(seconds=30))

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [c for rows in results.values() for c in rows]
    assert [c.body for c in claimed] == ["m0"]
    assert _statuses().count("processing") == 1


def test_duplicate_sid_is_stored_once(twilio_env, fake_twilio):
    sid = new_sid()
    first = inbox.receive(sid, PERSON, "hello", 0)
    again = inbox.receive(sid, PERSON, "hello", 0)
    assert not first.duplicate and again.duplicate and again.inbox_id == first.inbox_id
    assert len(_statuses()) == 1


def test_a_repeat_in_the_same_batch_is_stored_once_and_the_person_once(twilio_env, fake_twilio):
    sid = new_sid()
    first, again, other = inbox.receive_many([
        (sid, PERSON, "hello", 0), (sid, PERSON, "hello", 0), (new_sid(), PERSON, "more", 0),
    ])
    assert not first.duplicate and again.duplicate and again.inbox_id == first.inbox_id
    assert not other.duplicate and other.pseudonym == first.pseudonym
    assert len(_statuses()) == 2
    with transaction() as s:
        [contact] = s.execute(select(SmsContact)).scalars().all()
        assert decrypt_number(contact.number_enc) == PERSON


def test_webhooks_repeated_at_the_same_moment_store_the_message_once(twilio_env, fake_twilio):
    """Twilio's retry can reach another process while the first delivery is being stored:
    both are acknowledged, one row is kept, and both name it."""
    sid, barrier, results = new_sid(), threading.Barrier(4), []

    def deliver() -> None:
        barrier.wait()
        results.append(inbox.receive(sid, "+447700900777", "are you there", 0))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 4
    assert len({r.inbox_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert len(_statuses()) == 1


def test_a_keyword_repeated_is_acted_on_once(twilio_env, fake_twilio):
    sid = new_sid()
    first = inbox.receive(sid, PERSON, "STOP", 0)
    again = inbox.receive(sid, PERSON, "STOP", 0)
    assert first.kind == "opt_out" and not first.duplicate
    assert again.duplicate and again.inbox_id == first.inbox_id
    with transaction() as s:
        assert len(s.execute(select(SmsOptOut)).scalars().all()) == 1


# -- privacy --------------------------------------------------------------------------------


async def test_no_number_or_message_text_reaches_the_logs(
    twilio_env, fake_twilio, servers, caplog
):
    caplog.set_level(logging.DEBUG)
    fake_twilio.script = [(500, None, 0), (400, 21211, 0)]
    secret = "my secret plan tonight"
    server = await servers(StubAgent())
    await server.sms(secret)
    await server.sms(secret + " again")
    await eventually(lambda: len(fake_twilio.requests) >= 3, what="sends and retries")
    await server.sms("STOP")
    await server.sms("still there?")  # its reply is suppressed after STOP

    def suppressed():
        with transaction() as s:
            return "suppressed_opted_out" in s.execute(select(SmsOutbox.status)).scalars().all()

    await eventually(suppressed, what="the suppressed reply")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # the channel does log, by pseudonym
    for needle in (PERSON, PERSON[1:], "7700900123", secret):
        assert needle not in logged
