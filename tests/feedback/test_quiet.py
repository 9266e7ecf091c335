"""The quiet-period offer (bot/feedback/quiet.py, quiet_watch.py): a conversation that ended
without a goodbye is offered the survey once, after the quiet period, through ``send`` (the
duty service's staff relay); never to a conversation with a live escalation or an emergency,
the opted out, the forgotten, or someone asked this week; once across restarts and two duty
services. Rasa's own SQLTrackerStore writes the ``events`` table, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import pytest

from tests.helpers import tracker_store_for
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import select, update

from bot.escalation.engine import record_escalation, resolve
from bot.feedback import questions, quiet, store, survey, tracker
from bot.feedback.offers import ABSENT, UNREACHABLE, NotSent, Offers
from bot.feedback.quiet_watch import QuietWatcher
from bot.store.db import transaction
from bot.store.models import utcnow
from bot.store.models.feedback import FeedbackPerson, FeedbackQuiet, FeedbackSurvey
from bot.store.models.sms import SmsContact

Q = questions.load()
QUIET_S = 30 * 60.0
SECRET = "the exact words the person wrote"


@pytest.fixture
async def rasa(db_url):
    """Rasa's SQL tracker store on the test database, as the Rasa server writes it."""
    s = tracker_store_for(db_url)
    yield s
    s.engine.dispose()


def sms_id() -> str:
    return "sms-" + uuid.uuid4().hex


def web_id() -> str:
    return uuid.uuid4().hex


async def talk(rasa: SQLTrackerStore, cid: str, minutes_ago: float, *, channel: str | None = None,
               then: tuple = ()) -> None:
    """The person wrote ``minutes_ago`` and the assistant answered; ``then``: more events
    (an action, a slot) just after."""
    at = time.time() - minutes_ago * 60
    channel = channel or ("sms" if cid.startswith("sms-") else "socketio")
    t = await rasa.retrieve(cid) or DialogueStateTracker(cid, [])
    t.update(UserUttered(SECRET, intent={"name": "chitchat", "confidence": 0.9},
                         parse_data={"risk": {"level": "none", "signals": []}},
                         input_channel=channel, timestamp=at))
    t.update(BotUttered("I'm here.", timestamp=at + 1))
    for i, event in enumerate(then):
        event.timestamp = at + 2 + i
        t.update(event)
    await rasa.save(t)


class Relay:
    """Stands in for the duty service's staff relay: records what it was given to send."""

    def __init__(self, fail: str | None = None) -> None:
        self.sent: list = []
        self.fail = fail

    async def __call__(self, message) -> None:
        if self.fail:
            raise NotSent(self.fail)
        self.sent.append(message)


def watcher(relay: Relay, **options) -> QuietWatcher:
    return QuietWatcher(Offers(relay), quiet_s=QUIET_S, poll_s=0.05, questions=lambda: Q,
                        **options)


def surveys(cid: str) -> list[FeedbackSurvey]:
    with transaction() as s:
        rows = s.execute(select(FeedbackSurvey).where(FeedbackSurvey.conversation_id == cid)
                         .order_by(FeedbackSurvey.id)).scalars().all()
        for r in rows:
            s.expunge(r)
        return list(rows)


def claim_of(cid: str) -> FeedbackQuiet | None:
    with transaction() as s:
        row = s.get(FeedbackQuiet, cid)
        if row is not None:
            s.expunge(row)
        return row


async def test_a_quiet_conversation_is_offered_once_through_the_relay(rasa):
    sms, web = sms_id(), web_id()
    await talk(rasa, sms, 31)
    await talk(rasa, web, 45)
    relay = Relay()
    assert await watcher(relay).run_once() == 2
    by_cid = {m.conversation_id: m for m in relay.sent}
    assert set(by_cid) == {sms, web}
    assert by_cid[sms].text == Q.offer and by_cid[sms].channel == "sms"
    assert by_cid[web].channel == "socketio" and by_cid[web].choices == ("yes", "no")
    assert all(m.trigger == "quiet" and m.ref is None for m in relay.sent)
    [row] = surveys(sms)
    assert (row.trigger, row.status, row.channel) == ("quiet", survey.OFFERED, "sms")
    assert claim_of(sms).outcome == quiet.OFFERED and claim_of(sms).survey_id == row.id
    # The survey is live: the person's "yes" is the survey's (bot/channels/feedback_turn.py).
    assert store.has_live_survey(sms)

    # Once: the next pass, and a restarted duty service, offer nothing more.
    assert await watcher(relay).run_once() == 0
    assert len(relay.sent) == 2 and len(surveys(sms)) == 1


async def test_two_duty_services_offer_once(rasa):
    cids = [sms_id() for _ in range(6)]
    for cid in cids:
        await talk(rasa, cid, 40)
    relay = Relay()
    a, b = watcher(relay), watcher(relay)
    await asyncio.gather(a.run_once(), b.run_once(), a.run_once())
    assert sorted(m.conversation_id for m in relay.sent) == sorted(cids)
    for cid in cids:
        assert len(surveys(cid)) == 1


async def test_not_yet_quiet_and_long_over_are_left_alone(rasa):
    talking, ended_long_ago = sms_id(), sms_id()
    await talk(rasa, talking, 10)
    await talk(rasa, ended_long_ago, 6 * 60)
    relay = Relay()
    assert await watcher(relay).run_once() == 0
    assert relay.sent == [] and claim_of(talking) is None and claim_of(ended_long_ago) is None
    # The window is the watcher's to set: a wider one reaches the older conversation.
    assert await watcher(relay, window_s=7 * 3600).run_once() == 1
    assert [m.conversation_id for m in relay.sent] == [ended_long_ago]


async def test_a_goodbye_has_decided_already(rasa):
    cid = sms_id()
    await talk(rasa, cid, 40, then=(ActionExecuted("utter_goodbye"),
                                     ActionExecuted("action_feedback_offer")))
    relay = Relay()
    await watcher(relay).run_once()
    assert relay.sent == [] and surveys(cid) == []
    assert claim_of(cid).outcome == quiet.GOODBYE
    # Writing again starts a new quiet spell, which may be offered.
    await talk(rasa, cid, 35)
    await watcher(relay).run_once()
    assert [m.conversation_id for m in relay.sent] == [cid]


async def test_never_while_an_escalation_is_live_nor_in_an_emergency(rasa):
    live, emergency, resolved = sms_id(), sms_id(), sms_id()
    for cid in (live, emergency, resolved):
        await talk(rasa, cid, 40)
    record_escalation(live, "urgent", ["self_harm"], channel="sms")
    rec = record_escalation(resolved, "urgent", ["self_harm"], channel="sms")
    resolve(rec.ref, "staff:pia", "supported")
    await talk(rasa, emergency, 40, then=(SlotSet("risk_emergency", True),))
    relay = Relay()
    await watcher(relay).run_once()
    assert [m.conversation_id for m in relay.sent] == [resolved]
    assert claim_of(live).outcome == "live_escalation"
    assert claim_of(emergency).outcome == quiet.EMERGENCY
    assert surveys(live) == [] and surveys(emergency) == []


async def test_never_to_the_opted_out_the_forgotten_or_someone_asked_this_week(rasa):
    opted, forgotten, asked = sms_id(), sms_id(), sms_id()
    for cid in (opted, forgotten, asked):
        await talk(rasa, cid, 40)
    with transaction() as s:
        s.add(SmsContact(pseudonym=opted, number_enc="x", opted_out=True))
    store.forget(forgotten)
    store.offer(asked, "sms", "goodbye", Q, now=utcnow() - dt.timedelta(days=2))
    relay = Relay()
    await watcher(relay).run_once()
    assert relay.sent == []
    assert claim_of(opted).outcome == "do_not_ask"
    assert claim_of(forgotten).outcome == "do_not_ask"
    assert claim_of(asked).outcome in ("asked_this_week", "survey_live")


async def test_carers_get_their_own_set_and_rest_conversations_are_not_written_to(rasa):
    carer, rest = web_id(), "rest-" + uuid.uuid4().hex
    await talk(rasa, carer, 40, then=(SlotSet("audience", "carers"),))
    await talk(rasa, rest, 40, channel="rest")
    relay = Relay()
    await watcher(relay).run_once()
    assert [m.conversation_id for m in relay.sent] == [carer]
    assert surveys(carer)[0].set_name == "carers"
    assert claim_of(rest).outcome == quiet.CHANNEL


async def test_an_offer_the_relay_could_not_deliver_is_withdrawn_and_tried_again(rasa):
    cid = sms_id()
    await talk(rasa, cid, 40)
    down = Relay(fail=UNREACHABLE)
    for attempt in range(1, quiet.MAX_ATTEMPTS + 1):
        await watcher(down).run_once()
        # Nobody got it: no survey counted, a later "yes" is the dialogue's, the week unspent.
        assert surveys(cid) == [] and not store.has_live_survey(cid)
        with transaction() as s:
            assert s.get(FeedbackPerson, cid).last_asked_at is None
        assert (claim_of(cid).outcome, claim_of(cid).attempts) == (quiet.UNSENT, attempt)
    # Given up after MAX_ATTEMPTS: the relay back up, the conversation is not tried again...
    up = Relay()
    await watcher(up).run_once()
    assert up.sent == []
    # ... but one tried fewer times is.
    with transaction() as s:
        s.execute(update(FeedbackQuiet).values(attempts=1))
    await watcher(up).run_once()
    assert [m.conversation_id for m in up.sent] == [cid]
    assert claim_of(cid).outcome == quiet.OFFERED


async def test_web_chat_with_no_page_open_is_not_asked_nor_tried_again(rasa):
    cid = web_id()
    await talk(rasa, cid, 40)
    await watcher(Relay(fail=ABSENT)).run_once()
    assert claim_of(cid).outcome == quiet.ABSENT and surveys(cid) == []
    up = Relay()
    await watcher(up).run_once()
    assert up.sent == []


async def test_an_offer_cut_off_while_sending_lapses_and_is_never_sent_twice(rasa):
    cid = sms_id()
    await talk(rasa, cid, 40)
    [found] = quiet.find(utcnow(), QUIET_S, 7200)
    claimed = quiet.claim_and_offer(found, Q)  # then the duty service died
    assert claimed.outcome == quiet.SENDING and store.has_live_survey(cid)
    relay = Relay()
    w = watcher(relay, sending_timeout=dt.timedelta(seconds=0))
    await w.run_once()
    assert relay.sent == []
    assert claim_of(cid).outcome == quiet.LOST
    [row] = surveys(cid)
    assert row.status == survey.LAPSED and not store.has_live_survey(cid)


async def test_the_watcher_runs_as_a_background_loop_until_stopped(rasa):
    cid = sms_id()
    await talk(rasa, cid, 40)
    relay = Relay()
    w = watcher(relay)
    await w.start()
    try:
        for _ in range(100):
            if relay.sent:
                break
            await asyncio.sleep(0.05)
        assert [m.conversation_id for m in relay.sent] == [cid]
        assert w.running
    finally:
        await w.stop()
    assert not w.running


async def test_without_a_questions_file_nobody_is_asked(rasa):
    cid = sms_id()
    await talk(rasa, cid, 40)
    relay = Relay()
    w = QuietWatcher(Offers(relay), quiet_s=QUIET_S, questions=lambda: None)
    assert await w.run_once() == 0
    assert relay.sent == [] and claim_of(cid) is None


def test_first_id_since_finds_the_first_recent_row(db_url):
    from bot.store.db import get_engine
    from bot.store.rasa_events import RASA_EVENTS

    RASA_EVENTS.create(get_engine(db_url), checkfirst=True)
    with transaction() as s:
        assert tracker.first_id_since(s, 100.0) == 0  # an empty table
        # Ids with gaps (rolled back), stamps nearly in order (a few seconds out, as two
        # turns saving at once).
        stamps = {3: 10.0, 4: 20.0, 9: 30.0, 10: 29.0, 11: 40.0, 20: 50.0, 21: 60.0, 40: 70.0}
        for i, ts in stamps.items():
            s.execute(RASA_EVENTS.insert().values(id=i, sender_id="c", type_name="user",
                                                  timestamp=ts, data="{}"))
    with transaction() as s:
        assert tracker.first_id_since(s, 0.0) == 3
        assert tracker.first_id_since(s, 35.0) == 11
        assert tracker.first_id_since(s, 50.0) == 12  # 20 is the first from 12 on
        assert tracker.first_id_since(s, 70.0) == 22
        assert tracker.first_id_since(s, 71.0) == 41  # nothing recent: past the end
