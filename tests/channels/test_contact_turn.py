"""The block list and fair use in the turn (bot/channels/contact_turn.py), through the chain
the channels run (the turn gate, the rules, the survey, the dialogue):

- a blocked sender's ordinary message gets the emergency numbers and nothing else (no
  dialogue turn); a message that shows risk, or follows one within the hour, still goes to
  the dialogue; a conversation a human holds is not blocked; a block ends at its time and
  when lifted; the block list is not read once a turn;
- the fair-use note comes once after very frequent contact (threshold, window), never on risk
  or while staff are involved;
- both replies fit one SMS, carry the numbers and judge nobody.

Here the dialogue is a stub; the SMS webhook and web chat tests drive the real channels and
tests/integration/test_line_servers.py the real Rasa server's risk path.
"""

from __future__ import annotations

import datetime as dt

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot import settings as settings_module
from bot.channels import contact_turn
from bot.channels.contact_turn import BLOCKED_REPLY, FAIR_USE_REPLY, FrequentContact, contact_rules
from bot.channels.feedback_turn import survey_first
from bot.channels.gate import gated
from bot.escalation import blocks, engine
from bot.sms.segments import GSM7, encoding_of, segment_count
from bot.store.db import get_engine
from bot.store.models import utcnow
from tests.helpers import eventually

URGENT = "I want to kill myself tonight"


class Dialogue:
    def __init__(self):
        self.heard: list[str] = []

    async def __call__(self, message: UserMessage):
        self.heard.append(message.text)
        await message.output_channel.send_text_message(message.sender_id, "dialogue")


async def say(text: str, sender: str, channel: str = "sms"):
    """One turn through the channels' chain; (what the dialogue heard, what was sent)."""
    dialogue, out = Dialogue(), CollectingOutputChannel()
    turn = gated(contact_rules(survey_first(dialogue)))
    await turn(UserMessage(text, out, sender, input_channel=channel))
    return dialogue.heard, [m["text"] for m in out.messages]


def block(conversation: str, hours: int = 24, channel: str = "sms") -> tuple[str, int]:
    esc = engine.record_escalation(conversation, "support", channel=channel)
    engine.resolve(esc.ref, "staff:mo", "supported")
    return esc.ref, blocks.block(get_engine(), esc.ref, "staff:mo", "repeated abusive messages",
                                 hours)


# --- the replies ----------------------------------------------------------------------------

JUDGEMENT = ("abuse", "abusive", "misuse", "inappropriate", "banned", "blocked", "warning",
             "police", "too many", "too much", "too often", "stop texting", "waste", "behaviour",
             "behavior", "you have been", "fault", "must", "rules", "unacceptable")


@pytest.mark.parametrize("text", [BLOCKED_REPLY, FAIR_USE_REPLY], ids=["blocked", "fair_use"])
async def test_each_reply_fits_one_sms_gives_the_numbers_and_judges_nobody(text):
    assert encoding_of(text) == GSM7
    assert len(text) <= 306 and segment_count(text) <= 2
    for needed in ("999", "116 123", "NHS 111, option 2", "automated"):
        assert needed in text
    lowered = text.lower()
    assert not [w for w in JUDGEMENT if w in lowered]
    assert "\u2014" not in text and "\u2019" not in text  # straight quotes, no long dashes


# --- blocked senders ------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["sms", "socketio"])
async def test_a_blocked_senders_message_gets_the_numbers_and_no_dialogue_turn(db_url, channel):
    block("c-blocked", channel=channel)
    heard, sent = await say("hello, anyone there?", "c-blocked", channel)
    assert heard == [] and sent == [BLOCKED_REPLY]
    # Everyone else is answered as usual.
    assert await say("hello", "c-other", channel) == (["hello"], ["dialogue"])


@pytest.mark.parametrize("channel", ["sms", "socketio"])
async def test_a_blocked_sender_who_shows_risk_reaches_the_dialogue(sqlite_url, channel):
    block("c-risk", channel=channel)
    heard, sent = await say(URGENT, "c-risk", channel)
    assert heard == [URGENT] and sent == ["dialogue"]
    # "no" to "are you safe?" shows no risk on its own: it follows one, so it goes through.
    assert await say("no", "c-risk", channel) == (["no"], ["dialogue"])


async def test_a_blocked_conversation_a_human_holds_comes_through(sqlite_url):
    block("c-held")
    live = engine.record_escalation("c-held", "support", channel="sms")
    engine.take_over(live.ref, "staff:pia", "Pia")
    assert await say("are you still there", "c-held") == (["are you still there"], ["dialogue"])
    engine.hand_back(live.ref, "staff:pia")
    assert await say("hello?", "c-held") == ([], [BLOCKED_REPLY])


async def test_a_block_ends_at_its_time(sqlite_url, monkeypatch):
    block("c-ends", hours=4)
    assert (await say("hello", "c-ends"))[0] == []
    later = utcnow() + dt.timedelta(hours=4, seconds=1)
    monkeypatch.setattr(blocks, "utcnow", lambda: later)
    # No new read of the list is needed: the view keeps each block's end.
    assert await say("hello again", "c-ends") == (["hello again"], ["dialogue"])


async def test_a_lifted_block_reaches_the_channels_within_a_second(sqlite_url):
    _, block_id = block("c-lifted")
    assert (await say("hello", "c-lifted"))[1] == [BLOCKED_REPLY]
    blocks.unblock(get_engine(), block_id, "staff:mo")

    async def answered():
        return (await say("hello", "c-lifted"))[0] == ["hello"]

    await eventually(answered, timeout=3, what="the lifted block to reach the channel")


async def test_a_new_block_reaches_the_channels_within_a_second(sqlite_url):
    assert (await say("hello", "c-new"))[0] == ["hello"]
    block("c-new")

    async def blocked():
        return (await say("hello", "c-new"))[1] == [BLOCKED_REPLY]

    await eventually(blocked, timeout=3, what="the block to reach the channel")


async def test_ordinary_turns_do_not_read_the_block_list_each_time(sqlite_url):
    block("c-blocked-2")
    view = blocks.view()
    real, reads = view._read, []
    view._read = lambda: (reads.append(1), real())[1]
    for n in range(20):
        assert (await say(f"hello {n}", "c-quiet"))[0] == [f"hello {n}"]
        assert (await say(f"hello {n}", "c-blocked-2"))[1] == [BLOCKED_REPLY]
    assert len(reads) == 1


async def test_when_the_block_list_cannot_be_read_the_dialogue_answers(sqlite_url):
    def broken():
        raise OSError("database down")

    blocks.view()._read = broken
    assert await say("hello", "c-1") == (["hello"], ["dialogue"])


# --- fair use -------------------------------------------------------------------------------


def test_contacts_are_counted_after_a_quiet_gap_within_the_window():
    clock = [0.0]
    counter = FrequentContact(3, window_s=3600, gap_s=60, clock=lambda: clock[0])

    def at(t: float) -> bool:
        clock[0] = t
        return counter.seen("c")

    # One long conversation is one contact, however many messages.
    assert [at(t) for t in range(0, 50, 5)] == [False] * 10
    assert at(200) is False  # the second contact
    assert at(300) is True  # the third: due
    counter.noted("c")
    assert at(400) is False  # the fourth, within the window of the note
    # An hour on, the contacts of the note's time have left the window; once three fall in
    # one again (3950, 4100, 4200), the note is due again.
    assert at(3950) is False and at(4100) is False
    assert at(4200) is True
    assert FrequentContact(0, 3600, clock=lambda: clock[0]).seen("c") is False


def test_the_counter_forgets_the_least_recently_heard_from():
    counter = FrequentContact(2, 3600, gap_s=0, size=3)
    for c in "abcd":
        counter.seen(c)
    assert list(counter._seen) == ["b", "c", "d"]


def test_threshold_and_window_are_settings(monkeypatch, sqlite_url):
    monkeypatch.setenv("FAIR_USE_CONTACTS", "4")
    monkeypatch.setenv("FAIR_USE_WINDOW_HOURS", "6")
    settings_module.reset()
    contact_turn.reset()
    assert (contact_turn.counter().contacts, contact_turn.counter().window_s) == (4, 6 * 3600)
    monkeypatch.setenv("FAIR_USE_CONTACTS", "-3")
    settings_module.reset()
    assert settings_module.settings().fair_use_contacts == 0  # off
    monkeypatch.delenv("FAIR_USE_CONTACTS")
    monkeypatch.delenv("FAIR_USE_WINDOW_HOURS")
    settings_module.reset()
    assert (settings_module.settings().fair_use_contacts,
            settings_module.settings().fair_use_window_hours) == (10, 24)


@pytest.fixture
def every_message_a_contact(monkeypatch):
    """Three contacts in an hour, each message its own contact (no quiet gap needed)."""
    counter = FrequentContact(3, window_s=3600, gap_s=0)
    monkeypatch.setattr(contact_turn, "_counter", counter)
    return counter


@pytest.mark.parametrize("channel", ["sms", "socketio"])
async def test_the_fair_use_note_comes_once_after_the_dialogues_answer(
        sqlite_url, every_message_a_contact, channel):
    assert (await say("hi", "c-often", channel))[1] == ["dialogue"]
    assert (await say("hi", "c-often", channel))[1] == ["dialogue"]
    assert await say("hi again", "c-often", channel) == (["hi again"], ["dialogue", FAIR_USE_REPLY])
    for _ in range(3):
        assert (await say("hi", "c-often", channel))[1] == ["dialogue"]


async def test_the_fair_use_note_never_comes_with_risk(sqlite_url, every_message_a_contact):
    await say("hi", "c-risky")
    await say("hi", "c-risky")
    assert await say(URGENT, "c-risky") == ([URGENT], ["dialogue"])
    # Nor on the rest of that conversation's hour ("no" to "are you safe?").
    assert await say("no", "c-risky") == (["no"], ["dialogue"])
    assert await say("ok", "c-risky") == (["ok"], ["dialogue"])


async def test_the_fair_use_note_waits_while_staff_are_involved(sqlite_url, every_message_a_contact):
    live = engine.record_escalation("c-waiting", "support", channel="sms")
    for _ in range(4):
        assert (await say("is someone coming", "c-waiting"))[1] == ["dialogue"]
    engine.resolve(live.ref, "staff:mo", "supported")
    assert (await say("thanks", "c-waiting"))[1] == ["dialogue", FAIR_USE_REPLY]


async def test_a_blocked_sender_gets_only_the_blocked_reply(sqlite_url, every_message_a_contact):
    block("c-both")
    for _ in range(4):
        assert (await say("hi", "c-both"))[1] == [BLOCKED_REPLY]
