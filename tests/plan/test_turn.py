"""The plan through the channels' turn (bot/channels/plan_turn.py) with the real handler chain
(plan, then the survey, then a stand-in for the dialogue): building, editing, getting back and
deleting a plan on SMS and web chat; risk always reaching the dialogue; bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from sqlalchemy import select

from bot import settings as settings_module
from bot.channels.feedback_turn import survey_first
from bot.channels.plan_turn import plan_first
from bot.channels.webchat import WebChatOutput
from bot.escalation import engine as escalation_engine
from bot.plan import flow, live, sections, store
from bot.store.db import transaction
from bot.store.models.plan import CrisisPlan, PlanSession

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope="module")
def _the_nlu_detector() -> None:
    """The turn reads risk as the Rasa server does: with the NLU's own detector loaded
    (config.yml's pipeline), not the word check alone. Without this, whether a plan answer
    read as risk depended on whether an earlier test in the process had loaded it."""
    from bot.nlu.risk import RiskDetector

    RiskDetector.shared(ROOT / "build" / "spacy_en", ROOT / "build" / "risk_model")


ANSWERS = [
    "I go quiet and stop texting my friends back",
    "a bath, music, writing it down",
    "skip",
    "my sister Jo 07700 900456",
    "my care coordinator at the CMHT",
    "Jo comes round and we watch a film",
]


class Dialogue:
    """Stands in for Rasa: what it heard, and one reply per message."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    async def __call__(self, message: UserMessage) -> None:
        self.heard.append(message.text)
        await message.output_channel.send_text_message(message.sender_id, "dialogue")


class FakeSio:
    def __init__(self) -> None:
        self.emitted: list[dict[str, Any]] = []

    async def emit(self, event: str, data: Any, room: str) -> None:
        self.emitted.append(data)


async def say(text: str, sender: str, channel: str = "sms"):
    """One message through plan -> survey -> dialogue: (what the dialogue heard, the texts)."""
    dialogue, out = Dialogue(), CollectingOutputChannel()
    await plan_first(survey_first(dialogue))(UserMessage(text, out, sender, input_channel=channel))
    return dialogue.heard, [m["text"] for m in out.messages]


async def say_web(text: str, sender: str):
    """One web chat message; what the page receives (``bot_uttered`` payloads)."""
    dialogue, sio = Dialogue(), FakeSio()
    out = WebChatOutput(sio, "bot_uttered")
    await plan_first(survey_first(dialogue))(UserMessage(text, out, sender, input_channel="socketio"))
    return dialogue.heard, sio.emitted


async def build(sender: str, consent: str = "yes", channel: str = "sms") -> None:
    await say("PLAN", sender, channel)
    await say("yes", sender, channel)
    for answer in ANSWERS:
        await say(answer, sender, channel)
    heard, sent = await say(consent, sender, channel)
    assert heard == []


async def test_an_ordinary_message_goes_to_the_dialogue_without_reading_the_plan_tables(sqlite_url):
    reads: list[int] = []
    real = store.live_conversations
    live.view()._read = lambda: (reads.append(1), real())[1]
    for n in range(20):
        heard, sent = await say(f"what is open near me {n}", "sms-quiet")
        assert heard == [f"what is open near me {n}"] and sent == ["dialogue"]
    assert len(reads) == 1


async def test_building_a_plan_by_sms_and_getting_it_back(db_url):
    person = "sms-builder"
    heard, sent = await say("PLAN", person)
    assert heard == [] and sent == [flow.OFFER]
    heard, sent = await say("yes", person)
    assert heard == [] and sent == [flow.INTRO, sections.question(0)]
    for n, answer in enumerate(ANSWERS[:-1]):
        heard, sent = await say(answer, person)
        assert heard == []
        assert sent[0].endswith(sections.question(n + 1))
    heard, sent = await say(ANSWERS[-1], person)
    assert sent == [flow.ASK_CONSENT]
    heard, sent = await say("YES", person)
    assert heard == [] and sent == [flow.CONSENT_YES]
    assert store.has_plan(person) and store.consent(person) is True

    heard, sent = await say("plan", person)
    assert heard == []
    [plan] = sent
    assert plan.startswith("Your plan (it may come as more than one text):")
    assert "Warning signs: I go quiet and stop texting my friends back" in plan
    assert "People I can ask for help: my sister Jo 07700 900456" in plan
    assert "People and places that take my mind off things" not in plan  # skipped
    assert "Samaritans: 116 123" in plan and "NHS 111, option 2" in plan
    assert plan.endswith(flow.PLAN_FOOT)


async def test_the_plan_is_encrypted_at_rest_and_not_readable_with_another_key(sqlite_url, monkeypatch):
    await build("sms-sealed")
    with transaction() as s:
        row = s.get(CrisisPlan, "sms-sealed")
        assert "sister" not in row.ciphertext and "07700" not in row.ciphertext
    monkeypatch.setenv("PLAN_KEY", "another-key-entirely-0123456789abcdef")
    settings_module.reset()
    heard, sent = await say("PLAN", "sms-sealed")
    assert heard == [] and sent == [store.UNREADABLE]
    assert "999" in store.UNREADABLE


async def test_on_web_chat_the_plan_comes_as_one_message_marked_for_print_and_copy(sqlite_url):
    person = "web-session-1"
    heard, emitted = await say_web("PLAN", person)
    assert emitted[0]["text"] == flow.OFFER
    assert [q["payload"] for q in emitted[0]["quick_replies"]] == ["yes", "no"]
    await say_web("yes", person)
    heard, emitted = await say_web("not sleeping", person)
    assert [q["payload"] for q in emitted[0]["quick_replies"]] == ["skip", "done"]
    await say_web("done", person)
    await say_web("no", person)
    heard, emitted = await say_web("PLAN", person)
    assert heard == []
    [plan] = emitted
    assert plan["plan"] is True and plan["text"].startswith(flow.WEB_HEAD)
    assert "Warning signs: not sleeping" in plan["text"] and "116 123" in plan["text"]


async def test_editing_changes_a_step_and_skip_keeps_the_others(db_url):
    person = "sms-editor"
    await build(person)
    heard, sent = await say("EDIT PLAN", person)
    assert sent[0] == flow.EDIT_INTRO
    assert sent[1].endswith('You have: "I go quiet and stop texting my friends back". SKIP keeps it.')
    await say("skip", person)
    await say("running, even for ten minutes", person)
    heard, sent = await say("done", person)
    assert sent == [flow.FINISHED]  # consent was answered already: not asked again
    plan = store.load(person)
    assert plan["warning_signs"] == "I go quiet and stop texting my friends back"
    assert plan["help_myself"] == "running, even for ten minutes"
    assert plan["safer"] == ANSWERS[-1]


async def test_delete_plan_deletes_it_and_plan_then_offers_a_new_one(db_url):
    person = "sms-deleter"
    await build(person)
    heard, sent = await say("Delete plan", person)
    assert heard == [] and sent == [flow.DELETED]
    assert not store.has_plan(person)
    with transaction() as s:
        assert s.execute(select(CrisisPlan)).first() is None
    assert (await say("PLAN", person))[1] == [flow.OFFER]


@pytest.mark.parametrize("phrase", sorted(flow.COMMANDS))
async def test_every_plan_word_is_the_plans_even_where_the_model_reads_risk(sqlite_url, phrase):
    """The NLU's model reads "delete plan" and "my plan" as urgent; a plan word is a command
    from a closed list, so it goes to the plan, never to the risk path (or nobody could delete
    their plan)."""
    person = "sms-word-" + phrase.replace(" ", "-").replace("'", "")
    await build(person)
    heard, sent = await say(phrase.upper(), person)
    assert heard == [] and sent


async def test_share_and_private_change_consent_with_a_word(sqlite_url):
    person = "sms-consent"
    await build(person, consent="no")
    assert store.consent(person) is False
    assert (await say("plan share", person))[1] == [flow.SHARE_ON]
    assert store.consent(person) is True
    assert (await say("PLAN PRIVATE", person))[1] == [flow.SHARE_OFF]
    assert store.consent(person) is False


async def test_risk_in_a_plan_answer_reaches_the_dialogue_and_the_plan_pauses(db_url):
    person = "sms-risk"
    await say("PLAN", person)
    await say("yes", person)
    heard, sent = await say("when I start thinking about killing myself", person)
    # The dialogue (and its risk path) got the message first; then the pause is said.
    assert heard == ["when I start thinking about killing myself"]
    assert sent == ["dialogue", flow.PAUSED]
    assert store.load(person) is None  # nothing of it kept in the plan
    with transaction() as s:
        assert s.execute(select(PlanSession)).first() is None
    # The next message is the dialogue's, not a plan step.
    assert (await say("it's getting worse", person))[0] == ["it's getting worse"]


async def test_not_offered_or_begun_during_imminent_risk_but_a_saved_plan_comes_back(db_url):
    person = "sms-imminent"
    escalation_engine.record_escalation(person, "imminent", ["overdose_taken"], channel="sms")
    heard, sent = await say("PLAN", person)
    assert heard == [] and sent == [flow.NOT_NOW]
    assert (await say("make plan", person))[1] == [flow.NOT_NOW]
    with transaction() as s:
        assert s.execute(select(PlanSession)).first() is None

    other = "sms-has-one"
    await build(other)
    escalation_engine.record_escalation(other, "imminent", ["at_height"], channel="sms")
    heard, sent = await say("PLAN", other)
    assert sent[0].startswith("Your plan") and "116 123" in sent[0]


def set_emergency(conversation_id: str, on: bool) -> None:
    """A ``risk_emergency`` slot row in Rasa's events table, as the tracker store writes it."""
    import json
    import time

    from bot.store import db
    from bot.store.rasa_events import RASA_EVENTS

    engine = db.get_engine()
    RASA_EVENTS.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(RASA_EVENTS.insert().values(
            sender_id=conversation_id, type_name="slot", timestamp=time.time(),
            data=json.dumps({"event": "slot", "name": "risk_emergency", "value": on})))


async def test_the_emergency_slot_holds_the_plan_back_until_it_stands_down(db_url):
    person = "web-emergency"
    set_emergency(person, True)
    assert (await say("PLAN", person, "socketio"))[1] == [flow.NOT_NOW]
    set_emergency(person, False)
    assert (await say("PLAN", person, "socketio"))[1] == [flow.OFFER]


async def test_once_they_confirm_they_are_safe_the_offer_can_be_taken_up(db_url):
    person = "sms-stood-down"
    escalation_engine.record_escalation(person, "imminent", ["overdose_taken"], channel="sms")
    assert (await say("PLAN", person))[1] == [flow.NOT_NOW]
    # What action_stand_down writes on the live escalation as the emergency stands down.
    escalation_engine.flag_for_staff(person, "said_safe", "confirmed safe", channel="sms",
                                     actor="assistant")
    assert (await say("PLAN", person))[1] == [flow.OFFER]
    assert (await say("yes", person))[1] == [flow.INTRO, sections.question(0)]


async def test_bad_input_is_stored_safely_or_refused_with_a_clear_answer(db_url):
    person = "sms-bad-input"
    await say("PLAN", person)
    await say("yes", person)
    heard, sent = await say("x" * 20_000, person)
    assert heard == [] and sent == [flow.TOO_LONG]
    assert store.load(person) is None
    heard, sent = await say("\x00\x07\x1b", person)
    assert sent == [flow.EMPTY + " " + sections.question(0)]
    await say("tired\x00 and\u202e snappy\r\n\r\n\r\nquiet", person)
    await say("\U0001F3B5\U0001F6C1", person)  # emoji only
    assert store.load(person) == {"warning_signs": "tired and snappy\nquiet",
                                  "help_myself": "\U0001F3B5\U0001F6C1"}
    heard, sent = await say("plan", person)
    assert "Things I can do to help myself: \U0001F3B5\U0001F6C1" in sent[0]


async def test_stop_at_the_sms_webhook_ends_the_building_and_keeps_what_was_saved(db_url):
    from bot.channels import inbox

    person = inbox.receive("SM" + "1" * 32, "+447700900123", "hi", 0).pseudonym
    await say("PLAN", person)
    await say("yes", person)
    await say("not sleeping", person)
    inbox.receive("SM" + "2" * 32, "+447700900123", "STOP", 0)
    with transaction() as s:
        assert s.execute(select(PlanSession)).first() is None
    assert store.load(person) == {"warning_signs": "not sleeping"}
    # After START, "yes" is the dialogue's again, not an answer to step 2.
    inbox.receive("SM" + "3" * 32, "+447700900123", "START", 0)
    assert (await say("yes", person))[0] == ["yes"]


async def test_an_opt_out_word_that_reaches_an_sms_turn_goes_to_the_dialogue(sqlite_url):
    person = "sms-optout"
    await say("PLAN", person)
    await say("yes", person)
    heard, sent = await say("STOP", person)
    assert heard == ["STOP"] and sent == ["dialogue"]
    with transaction() as s:
        assert s.execute(select(PlanSession)).first() is None


async def test_stop_on_web_chat_stops_building(sqlite_url):
    person = "web-stopper"
    await say("PLAN", person, "socketio")
    await say("yes", person, "socketio")
    await say("not sleeping", person, "socketio")
    heard, sent = await say("stop", person, "socketio")
    assert heard == [] and sent == [flow.STOPPED]


async def test_forget_deletes_plan_consent_and_building_and_has_plan_says_so(db_url):
    person = "sms-forget"
    assert not store.has_plan(person)
    await build(person)
    await say("plan edit", person)
    assert store.has_plan(person)
    assert store.forget(person) is True
    assert not store.has_plan(person) and store.consent(person) is None
    with transaction() as s:
        assert s.execute(select(PlanSession)).first() is None
    assert store.forget(person) is False


async def test_a_dialogue_that_raises_is_run_once_and_its_error_is_the_turns(sqlite_url):
    calls = []

    async def broken(message):
        calls.append(message.text)
        raise RuntimeError("the dialogue failed")

    for text in ("hello", "I want to kill myself"):
        with pytest.raises(RuntimeError):
            await plan_first(broken)(UserMessage(text, CollectingOutputChannel(), "c-raise",
                                                 input_channel="sms"))
    assert calls == ["hello", "I want to kill myself"]


async def test_while_a_human_holds_the_conversation_plan_words_go_to_them(db_url):
    """A plan word, or an answer mid-building, is the staff member's to answer once they have
    taken the conversation over: it reaches the dialogue (which relays it), the plan says
    nothing."""
    person = "sms-held"
    await say("PLAN", person)
    await say("yes", person)
    esc = escalation_engine.record_escalation(person, "support", channel="sms")
    escalation_engine.take_over(esc.ref, "staff:pia", "Pia")
    for text in ("I stop sleeping", "PLAN", "PLAN DELETE"):
        heard, sent = await say(text, person)
        assert heard == [text] and sent == ["dialogue"]
    assert store.load(person) is None  # nothing of what they said to Pia went into a plan


async def test_when_the_plans_database_work_fails_every_message_goes_to_the_dialogue(
        sqlite_url, monkeypatch):
    """Mid-building, the plan's tables fail: the answer, a risk message and a plan word all
    reach the dialogue (and so its risk path); no crash, no plan text in their place."""
    person = "sms-plan-db-down"
    await say("PLAN", person)
    await say("yes", person)

    def down(*args, **kwargs):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(store, "handle", down)
    for text in ("I stop sleeping", "when I start thinking about killing myself", "PLAN"):
        heard, sent = await say(text, person)
        assert heard == [text] and sent == ["dialogue"]
