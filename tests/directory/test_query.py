"""Finding services: open now first, honest about unknown places, and never without an answer."""

import datetime as dt

import pytest

from bot import settings as settings_module
from bot.directory import loader, query
from bot.directory.messages import MAX_CHARS, fits
from bot.directory.query import answer, find_services, set_capacity
from bot.store.db import transaction

from .conftest import LONDON, london

SAT_NIGHT = london(2026, 11, 28, 23, 30)


def keys(results):
    return [m.service.key for m in results]


def test_open_now_near_bridgwater_on_saturday_night(loaded):
    results = find_services("crisis", "bridgewater", at=SAT_NIGHT)
    assert results.place.key == "bridgwater" and results.place_status == "local"
    open_now = [m for m in results if m.open_now]
    assert keys(open_now) == [
        "somerset-crisis-team", "bridgwater-sanctuary",  # local first
        "samaritans", "shout", "nhs-111-mental-health",  # then national
    ]
    sanctuary = open_now[1]
    assert sanctuary.open_until == london(2026, 11, 29, 2, 0)
    assert sanctuary.open_until.tzinfo is not None
    # Services elsewhere in Somerset (Taunton Haven) are not offered to someone in Bridgwater.
    assert "taunton-haven" not in keys(results)


def test_closed_services_come_after_open_ones_by_opening_time(loaded):
    # Tuesday 23:30 in Yeovil: the crisis café is shut (Fri to Mon) and opens on Friday.
    results = find_services("sanctuary", "Yeovil", at=london(2026, 11, 24, 23, 30))
    cafe = next(m for m in results if m.service.key == "yeovil-crisis-cafe")
    assert not cafe.open_now and cafe.opens_at == london(2026, 11, 27, 17, 0)
    assert not any(m.open_now for m in results)


def test_unknown_place_gets_national_services_and_a_flag(loaded):
    results = find_services("crisis", "Leeds", at=SAT_NIGHT)
    assert results.place is None and results.place_status == "unknown" and results.national_only
    assert keys(results) == ["samaritans", "shout", "nhs-111-mental-health"]
    declined = find_services("crisis", "I'd rather not say", at=SAT_NIGHT)
    assert declined.place_status == "declined" and keys(declined) == keys(results)


def test_known_place_without_local_services_for_the_need(loaded):
    results = find_services("talk", "Minehead", at=SAT_NIGHT)
    assert results.place.key == "minehead"
    assert results.place_status == "local"  # the county peer-support evening counts as local
    assert find_services("money", "Frome", at=SAT_NIGHT).place_status == "local"


def test_postcode_finds_local_services(loaded):
    results = find_services("pharmacy", "TA6 3xx", at=london(2026, 11, 24, 21, 0))
    assert results.place.postcode == "TA6"
    first = results[0]
    assert first.service.key == "bridgwater-late-pharmacy" and first.open_now
    assert first.open_until == london(2026, 11, 24, 22, 0)


def test_bank_holiday_uses_bank_holiday_hours(loaded):
    # Monday 28 December 2026 (substitute Boxing Day): Bridgwater pharmacy keeps Sunday hours.
    results = find_services("pharmacy", "Bridgwater", at=london(2026, 12, 28, 17, 0))
    pharmacy = results[0]
    assert not pharmacy.open_now
    assert pharmacy.opens_at == london(2026, 12, 29, 8, 0)
    # Christmas Day: the sanctuary opens early by a dated exception.
    xmas = find_services("sanctuary", "Bridgwater", at=london(2026, 12, 25, 15, 0))
    assert xmas[0].service.key == "bridgwater-sanctuary" and xmas[0].open_now


def test_audience_filters_services_for_others(loaded):
    adults = keys(find_services("crisis", "Taunton", at=london(2026, 11, 24, 20, 30)))
    young = keys(find_services("crisis", "Taunton", "young_people", at=london(2026, 11, 24, 20, 30)))
    assert "somerset-young-peoples-line" in young and "somerset-young-peoples-line" not in adults
    assert "taunton-haven" in adults and "taunton-haven" not in young  # adults only
    carers = keys(find_services("carers", "Yeovil", at=london(2026, 11, 25, 19, 30)))
    assert carers[:2] == ["somerset-carers-line", "yeovil-carers-group"]


def test_full_sanctuary_is_not_offered_as_open(loaded):
    at = dt.datetime.now(LONDON)
    with transaction() as s:
        set_capacity("taunton-haven", 0, s)
    haven = next(m for m in find_services("sanctuary", "Taunton", at=at) if m.service.key == "taunton-haven")
    assert haven.beds_free == 0 and haven.full and not haven.available_now
    with transaction() as s:
        set_capacity("taunton-haven", 2, s)
        loader.import_directory(loader.DEFAULT_PATH, s)  # a reload keeps tonight's count
    haven = next(m for m in find_services("sanctuary", "Taunton", at=at) if m.service.key == "taunton-haven")
    assert haven.beds_free == 2
    # Last night's figure is not trusted tomorrow.
    stale = find_services("sanctuary", "Taunton", at=at + dt.timedelta(days=1))
    assert next(m for m in stale if m.service.key == "taunton-haven").beds_free is None


def test_unknown_need_is_a_caller_error():
    with pytest.raises(ValueError, match="unknown need"):
        find_services("cake", None)


# ---- answers -------------------------------------------------------------------------------


def assert_sms(messages):
    assert messages, "an answer must never be empty"
    for m in messages:
        assert fits(m), (len(m), m)
    assert any("116 123" in m or "85258" in m or "(24 hours)" in m for m in messages)


def test_answer_near_bridgwater(loaded):
    messages = answer("crisis", "bridgewater", at=SAT_NIGHT)
    assert_sms(messages)
    assert messages[0].startswith("Open now near Bridgwater: ")
    assert "Bridgwater Sanctuary (until 02:00) 01632 960123" in messages[0]
    assert "Samaritans (24 hours) 116 123" in messages[1]


def test_answer_unknown_place_is_honest(loaded):
    messages = answer("sanctuary", "Leeds", at=SAT_NIGHT)
    assert_sms(messages)
    assert messages[0].startswith(
        "I don't have local services for that place, but these are open right now across the UK: "
    )
    assert "Samaritans (24 hours) 116 123" in messages[0]


def test_answer_declined_place(loaded):
    messages = answer("crisis", "I'd rather not say", at=SAT_NIGHT)
    assert messages[0].startswith("That's fine, you don't have to say where you are.")
    assert "NHS 111 mental health (24 hours) 111 option 2" in messages[0]


def test_answer_when_nothing_local_is_open_still_gives_an_open_service(loaded):
    messages = answer("money", "Frome", at=SAT_NIGHT)
    assert_sms(messages)
    assert messages[0] == (
        "Nothing near Frome for money and benefits advice is open right now. Opening next: "
        "Somerset Money and Benefits Advice (opens Mon 09:00) 01632 960160."
    )
    assert messages[1].startswith("If you need someone now, these are open across the UK: Samaritans")


def test_answer_for_carers_in_yeovil_on_a_weekday_evening(loaded):
    messages = answer("support for carers", "Yeovil", at=london(2026, 11, 25, 19, 30))
    assert messages[0].startswith("Open now near Yeovil: Somerset Carers' Line (until 20:00) 01632 960130; "
                                  "Yeovil Carers' Evening Group (until 21:00) 01632 960131")


def test_answer_emergency_puts_999_first(loaded):
    messages = answer("emergency", "Taunton", at=SAT_NIGHT)
    assert messages[0] == "If anyone's life is in danger, call 999 now."
    assert "Musgrove Park Hospital A&E (24 hours)" in messages[1]


def test_every_open_local_service_is_named_within_sms_limits(loaded):
    at = london(2026, 11, 28, 20, 30)
    results = find_services("crisis", "Somerset", at=at)
    local_open = [m.service.contact.phone for m in results if m.local and m.available_now]
    assert len(local_open) == 6
    messages = answer("crisis", "Somerset", at=at)
    assert all(len(m) <= MAX_CHARS for m in messages)
    text = " ".join(messages)
    assert all(phone in text for phone in local_open)


def test_answer_falls_back_when_the_database_is_down(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    settings_module.reset()
    try:
        messages = answer("crisis", "Bridgwater", at=SAT_NIGHT)
    finally:
        settings_module.reset()
    assert_sms(messages)
    assert messages[0].startswith("I can't look up local services just now")
    assert "Samaritans (24 hours) 116 123" in messages[0]


def test_answer_falls_back_to_built_in_list_when_files_are_broken_too(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    (tmp_path / "broken.yml").write_text("services: [", encoding="utf-8")
    monkeypatch.setattr(loader, "DEFAULT_PATH", tmp_path)
    settings_module.reset()
    try:
        messages = answer("crisis", None, at=SAT_NIGHT)
        emergency = answer("emergency", None, at=SAT_NIGHT)
    finally:
        settings_module.reset()
    assert_sms(messages)
    assert "Samaritans (24 hours) 116 123" in messages[0] and "text SHOUT to 85258" in messages[0]
    assert emergency[0] == "If anyone's life is in danger, call 999 now."


def test_answer_reads_data_files_before_anything_is_imported(sqlite_url):
    messages = answer("crisis", "Bridgwater", at=SAT_NIGHT)
    assert "Bridgwater Sanctuary (until 02:00)" in messages[0]


def test_answer_never_raises_on_odd_input(loaded):
    for need, place in [(None, None), ("???", "???"), ("crisis", "x" * 5000), ("", "")]:
        assert_sms(answer(need, place, audience="martians", at=SAT_NIGHT))


def test_naive_time_is_line_local_time(loaded):
    naive = find_services("crisis", "Bridgwater", at=dt.datetime(2026, 11, 28, 23, 30))
    assert naive.at == SAT_NIGHT and naive.at.tzinfo is not None
    assert query.as_line_time(None).tzinfo is not None
