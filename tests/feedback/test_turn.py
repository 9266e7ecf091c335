"""The channels' survey turn (bot/channels/feedback_turn.py): a live survey takes the message
unless it shows risk; risk ends the survey and the dialogue gets the message."""

from __future__ import annotations

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot.channels.feedback_turn import survey_first
from bot.feedback import questions, store, survey

Q = questions.load()
pytestmark = pytest.mark.asyncio


class Dialogue:
    def __init__(self):
        self.heard: list[str] = []

    async def __call__(self, message: UserMessage):
        self.heard.append(message.text)
        await message.output_channel.send_text_message(message.sender_id, "dialogue")


async def _say(text: str, sender: str, channel: str = "rest"):
    dialogue, out = Dialogue(), CollectingOutputChannel()
    await survey_first(dialogue)(UserMessage(text, out, sender, input_channel=channel))
    return dialogue.heard, out.messages


async def test_without_a_survey_the_dialogue_answers(sqlite_url):
    assert await _say("hello", "c-1") == (["hello"], [{"recipient_id": "c-1", "text": "dialogue"}])


async def test_a_survey_on_web_chat_asks_with_buttons_and_keeps_answers_out_of_the_dialogue(sqlite_url):
    store.offer("web-1", "socketio", "goodbye", Q)
    heard, sent = await _say("yes", "web-1", "socketio")
    assert heard == []
    assert sent[0]["text"] == Q.sets["default"][0].prompt()
    assert [b["payload"] for b in sent[0]["buttons"]] == ["yes", "partly", "no", "skip"]
    heard, sent = await _say("2", "web-1", "socketio")
    assert heard == [] and sent[0]["text"] == Q.sets["default"][1].prompt()


async def test_sms_gets_one_question_per_text_without_buttons(sqlite_url):
    store.offer("sms-x", "sms", "goodbye", Q)
    heard, sent = await _say("YES", "sms-x", "sms")
    assert heard == [] and len(sent) == 1 and "buttons" not in sent[0]
    assert sent[0]["text"].endswith("Reply 1 yes, 2 partly, 3 no, or SKIP.")


@pytest.mark.parametrize("answered_first", [False, True])
async def test_risk_always_wins(sqlite_url, answered_first):
    store.offer("c-risk", "rest", "goodbye", Q)
    if answered_first:
        await _say("yes", "c-risk")
    heard, sent = await _say("i want to kill myself tonight", "c-risk")
    # The dialogue (and its risk path) got the message; the survey said nothing and is over.
    assert heard == ["i want to kill myself tonight"]
    assert [m["text"] for m in sent] == ["dialogue"]
    assert not store.has_live_survey("c-risk")
    from bot.store.db import transaction
    from bot.store.models.feedback import FeedbackSurvey
    from sqlalchemy import select
    with transaction() as s:
        assert s.execute(select(FeedbackSurvey.status)).scalar_one() == survey.RISK


async def test_a_second_non_answer_ends_politely_and_the_dialogue_hears_it(sqlite_url):
    store.offer("c-2", "rest", "goodbye", Q)
    await _say("yes", "c-2")
    heard, sent = await _say("what do you mean", "c-2")
    assert heard == [] and sent[0]["text"].startswith(survey.AGAIN)
    heard, sent = await _say("can I talk to someone", "c-2")
    assert heard == ["can I talk to someone"]
    assert [m["text"] for m in sent] == [Q.ended, "dialogue"]


async def test_no_questions_file_no_survey(sqlite_url, monkeypatch):
    store.offer("c-3", "rest", "goodbye", Q)
    monkeypatch.setattr("bot.channels.feedback_turn.configured", lambda: None)
    assert (await _say("yes", "c-3"))[0] == ["yes"]


async def test_sms_stop_at_the_webhook_ends_the_survey_and_never_asks_again(db_url):
    from bot.channels import inbox

    received = inbox.receive("SM" + "1" * 32, "+447700900123", "hi", 0)
    person = received.pseudonym
    store.offer(person, "sms", "goodbye", Q)
    await _say("yes", person, "sms")
    inbox.receive("SM" + "2" * 32, "+447700900123", "STOP", 0)
    assert not store.has_live_survey(person)
    assert store.standing(person).do_not_ask


# An ordinary turn costs no query (bot/feedback/live.py): the survey's table is read at most
# once a second, and an offer made in another process is still honoured.


async def test_ordinary_turns_do_not_read_the_survey_table_each_time(sqlite_url):
    from bot.feedback import live

    reads = []
    real = store.live_conversations
    view = live.view()
    view._read = lambda: (reads.append(1), real())[1]
    for n in range(20):
        assert (await _say(f"what is open near me {n}", "c-quiet"))[0] == [f"what is open near me {n}"]
    assert len(reads) == 1  # one read of the live set, not one query per message


async def test_an_offer_from_another_process_is_taken_up_with_yes(sqlite_url):
    from bot.feedback import live

    await _say("hello", "c-other")  # the view has read the (empty) set of live surveys
    store.offer("c-other", "rest", "goodbye", Q)
    live.view().note("c-other", False)  # as if the action server, not this process, offered
    heard, sent = await _say("yes", "c-other")
    assert heard == [] and sent[0]["text"] == Q.sets["default"][0].prompt()


async def test_an_offer_the_view_missed_lapses_when_the_person_talks_on(sqlite_url):
    """Made elsewhere a moment ago: "thanks again" goes to the dialogue, and a later "yes"
    (to the dialogue's question) does not start the survey."""
    from bot.feedback import live

    await _say("hello", "c-on")
    store.offer("c-on", "rest", "goodbye", Q)
    live.view().note("c-on", False)
    assert (await _say("thanks again, one more thing", "c-on"))[0] == ["thanks again, one more thing"]
    heard, _ = await _say("yes", "c-on")
    assert heard == ["yes"]
    assert not store.has_live_survey("c-on")


async def test_risk_ends_a_survey_the_view_has_not_seen(sqlite_url):
    from bot.feedback import live

    await _say("hello", "c-r2")
    store.offer("c-r2", "rest", "goodbye", Q)
    live.view().note("c-r2", False)
    heard, _ = await _say("i am going to end it tonight", "c-r2")
    assert heard == ["i am going to end it tonight"]
    assert not store.has_live_survey("c-r2")


def test_a_read_of_the_live_surveys_never_holds_up_the_event_loop():
    """The channels ask ``known`` on the event loop; a slow read in another thread must not
    make it wait (it answers from what it has, or says a read is due)."""
    import threading
    import time as _time

    from bot.feedback.live import LiveSurveys

    started, release = threading.Event(), threading.Event()

    def slow_read():
        started.set()
        release.wait(5)
        return frozenset({"c-slow"})

    view = LiveSurveys(slow_read, refresh_s=0.0)
    reader = threading.Thread(target=view.needs_lookup, args=("c-1", "hello", False))
    reader.start()
    assert started.wait(5)
    t0 = _time.monotonic()
    view.known("c-1", "hello", False)
    view.note("c-2", True)
    waited = _time.monotonic() - t0
    release.set()
    reader.join(5)
    assert waited < 0.5
    # A note made while the read was under way outlives it (the read may predate it).
    assert view._view() == {"c-slow", "c-2"}


async def test_a_dialogue_that_raises_is_run_once_and_its_error_is_the_turns(sqlite_url):
    """The fail-safe needs the turn's own error; running the dialogue a second time would
    answer (and escalate) twice."""
    calls = []

    async def broken(message):
        calls.append(message.text)
        raise RuntimeError("the dialogue failed")

    out = CollectingOutputChannel()
    with pytest.raises(RuntimeError):
        await survey_first(broken)(UserMessage("hello", out, "c-raise", input_channel="rest"))
    assert calls == ["hello"]
