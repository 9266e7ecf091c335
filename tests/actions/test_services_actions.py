"""Signposting actions: the conversation ends at a service that is open and serves the place."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk.events import SlotSet

import actions.services as services
from actions.services import DECLINED, ActionFindServices, ValidatePlaceForm
from tests.actions.conftest import make_tracker, user_event

LONDON = ZoneInfo("Europe/London")
SATURDAY_2330 = dt.datetime(2026, 11, 28, 23, 30, tzinfo=LONDON)
MONDAY_1100 = dt.datetime(2026, 11, 30, 11, 0, tzinfo=LONDON)


@pytest.fixture
def at(monkeypatch):
    def pin(when):
        monkeypatch.setattr(services, "answer_time", lambda: when)

    return pin


def _texts(dispatcher):
    return " ".join(m["text"] for m in dispatcher.messages)


async def test_saturday_night_near_bridgwater_gets_the_sanctuary_open_now(at, dispatcher):
    at(SATURDAY_2330)
    tracker = make_tracker(
        [user_event("is anything open near bridgwater tonight", "ask_services")],
        slots={"place": "Bridgwater"},
    )
    events = await ActionFindServices().run(dispatcher, tracker, {})
    text = _texts(dispatcher)
    assert "Bridgwater Sanctuary" in text and "01632 960123" in text
    assert "116 123" in text  # a national line open now is always there too
    assert SlotSet("place", "Bridgwater") in events


async def test_a_closed_door_is_not_offered_as_open(at, dispatcher):
    at(MONDAY_1100)  # the sanctuary opens Wednesday to Sunday evenings only
    tracker = make_tracker(
        [user_event("is the sanctuary open", "ask_services")], slots={"place": "Bridgwater"}
    )
    await ActionFindServices().run(dispatcher, tracker, {})
    text = _texts(dispatcher)
    assert "open right now" in text and "Opening next: Bridgwater Sanctuary (opens" in text
    assert "116 123" in text


async def test_unknown_place_gets_national_services_and_an_honest_sentence(at, dispatcher):
    at(SATURDAY_2330)
    tracker = make_tracker([user_event("what's open in narnia", "ask_services")], slots={"place": "Narnia"})
    await ActionFindServices().run(dispatcher, tracker, {})
    text = _texts(dispatcher)
    assert "116 123" in text
    assert "Narnia" in text or "that place" in text or "local" in text


async def test_rather_not_say_outside_the_form_still_gets_services(at, dispatcher):
    at(SATURDAY_2330)
    tracker = make_tracker(
        [user_event("who can i call tonight", "ask_services"), user_event("rather not say", "decline_place")]
    )
    events = await ActionFindServices().run(dispatcher, tracker, {})
    assert "116 123" in _texts(dispatcher)
    assert SlotSet("place", DECLINED) in events


async def test_carer_asking_in_yeovil_is_offered_carers_support(at, dispatcher):
    at(dt.datetime(2026, 11, 25, 19, 30, tzinfo=LONDON))  # Wednesday evening group
    tracker = make_tracker(
        [user_event("support for carers in yeovil", "carer_self_support")], slots={"place": "Yeovil"}
    )
    events = await ActionFindServices().run(dispatcher, tracker, {})
    assert "Carers" in _texts(dispatcher)
    assert SlotSet("audience", "carers") in events


def test_place_validation_tolerates_misspellings_and_keeps_unknown_places(dispatcher):
    form = ValidatePlaceForm()
    tracker = make_tracker([])
    assert form.validate_place("bridgewater", dispatcher, tracker, {}) == {"place": "Bridgwater"}
    assert form.validate_place("TA1", dispatcher, tracker, {}) == {"place": "Taunton"}
    assert form.validate_place("I'd rather not say", dispatcher, tracker, {}) == {"place": DECLINED}
    assert form.validate_place("Atlantis", dispatcher, tracker, {}) == {"place": "Atlantis"}
    assert dispatcher.messages == []


async def test_the_place_is_asked_only_when_it_matters(dispatcher):
    form = ValidatePlaceForm()
    national = make_tracker([user_event("is there a helpline i can ring now", "ask_services")])
    local = make_tracker([user_event("is the sanctuary open tonight", "ask_services")])
    assert await form.required_slots(["place"], dispatcher, national, {}) == []
    assert await form.required_slots(["place"], dispatcher, local, {}) == ["place"]
