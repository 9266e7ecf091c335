"""Unmet need: when the directory has nothing suitable open for a person's need and place,
``action_find_services`` keeps one row (need and the directory's place, never their words),
on SQLite and PostgreSQL. The person's answer is the same as ever."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import actions.services as services
from actions.services import ActionFindServices
from bot.directory import beds, loader, unmet
from bot.store.db import transaction
from bot.store.models.directory import UnmetNeed
from tests.actions.conftest import make_tracker, user_event

LONDON = ZoneInfo("Europe/London")
SATURDAY_2330 = dt.datetime(2026, 11, 28, 23, 30, tzinfo=LONDON)
MONDAY_1100 = dt.datetime(2026, 11, 30, 11, 0, tzinfo=LONDON)  # the sanctuaries are shut


@pytest.fixture
def loaded(db_url):
    with transaction() as session:
        loader.import_directory(loader.DEFAULT_PATH, session)
    return db_url


@pytest.fixture
def at(monkeypatch):
    def pin(when):
        monkeypatch.setattr(services, "answer_time", lambda: when)

    return pin


def rows() -> list[dict]:
    with transaction() as session:
        found = session.execute(select(UnmetNeed).order_by(UnmetNeed.id)).scalars().all()
        return [{"conversation": r.conversation_id, "need": r.need, "place": r.place,
                 "at": r.asked_at if r.asked_at.tzinfo else r.asked_at.replace(
                     tzinfo=dt.timezone.utc)} for r in found]


async def ask(dispatcher, text, place, sender="conv-a", intent="ask_services"):
    tracker = make_tracker([user_event(text, intent)], sender_id=sender,
                           slots={"place": place} if place else None)
    await ActionFindServices().run(dispatcher, tracker, {})
    return " ".join(m["text"] for m in dispatcher.messages)


async def test_a_sanctuary_shut_near_bridgwater_is_kept_as_unmet_need(loaded, at, dispatcher):
    at(MONDAY_1100)
    # A place given as a postcode is kept as the directory's place, never the postcode.
    text = await ask(dispatcher, "is the sanctuary open near TA6 3XX", "TA6 3XX")
    # The person still gets the honest answer and a line open now.
    assert "Opening next: Bridgwater Sanctuary" in text and "116 123" in text
    assert rows() == [{"conversation": "conv-a", "need": "sanctuary", "place": "bridgwater",
                       "at": MONDAY_1100.astimezone(dt.timezone.utc)}]


async def test_the_same_request_in_one_conversation_counts_once(loaded, at, dispatcher):
    at(MONDAY_1100)
    await ask(dispatcher, "is the sanctuary open", "Bridgwater")
    at(MONDAY_1100 + dt.timedelta(minutes=20))
    await ask(dispatcher, "any sanctuary at all?", "Bridgwater")
    # Another conversation, and the same one two hours later, are requests of their own.
    await ask(dispatcher, "is the sanctuary open", "Bridgwater", sender="conv-b")
    at(MONDAY_1100 + dt.timedelta(hours=2))
    await ask(dispatcher, "is the sanctuary open", "Bridgwater")
    got = rows()
    assert [(r["conversation"], r["need"], r["place"]) for r in got] == [
        ("conv-a", "sanctuary", "bridgwater"), ("conv-b", "sanctuary", "bridgwater"),
        ("conv-a", "sanctuary", "bridgwater")]


async def test_nothing_is_kept_when_something_suitable_is_open(loaded, at, dispatcher):
    at(SATURDAY_2330)
    await ask(dispatcher, "is the sanctuary open", "Bridgwater")  # open Saturday nights
    await ask(dispatcher, "who can i ring to talk now", None)  # the national lines
    await ask(dispatcher, "hello", None, intent="greet")  # no need named: nothing asked for
    assert rows() == []


async def test_a_full_house_is_not_suitable(loaded, at, dispatcher):
    at(SATURDAY_2330)
    with transaction() as session:
        beds.set_free(session, "bridgwater-sanctuary",
                      beds.tonight("Europe/London", SATURDAY_2330), 0, "test")
    await ask(dispatcher, "is the sanctuary open", "Bridgwater")
    assert [(r["need"], r["place"]) for r in rows()] == [("sanctuary", "bridgwater")]


async def test_an_unknown_or_untold_place_is_kept_as_such_never_as_words(loaded, at, dispatcher):
    at(MONDAY_1100)
    await ask(dispatcher, "is the sanctuary open", "Narnia Lamp-post 7", sender="conv-c")
    await ask(dispatcher, "is the sanctuary open", services.DECLINED, sender="conv-d")
    got = rows()
    assert [(r["need"], r["place"]) for r in got] == [
        ("sanctuary", unmet.PLACE_UNKNOWN), ("sanctuary", unmet.PLACE_NOT_GIVEN)]
    assert not any("narnia" in str(v).lower() or "7" == str(v) for r in got for v in r.values())


async def test_a_failed_record_does_not_touch_the_answer(loaded, at, dispatcher, monkeypatch,
                                                        caplog):
    at(MONDAY_1100)

    def broken(*args, **kwargs):
        raise RuntimeError("database gone; Bridgwater, sanctuary")

    monkeypatch.setattr(unmet, "record", broken)
    text = await ask(dispatcher, "is the sanctuary open", "Bridgwater")
    assert "Opening next: Bridgwater Sanctuary" in text
    assert "unmet need not recorded (RuntimeError)" in caplog.text
    assert "Bridgwater, sanctuary" not in caplog.text
