"""The rota: loading the example, who is on call across midnight and clock changes, validation."""

from __future__ import annotations

import copy
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.escalation import rota
from bot.escalation.engine import LEVELS

LONDON = ZoneInfo("Europe/London")
UTC = dt.timezone.utc  # not datetime.UTC: that is 3.11+, the project runs on 3.10


def london(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LONDON)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def ids(people) -> list[str]:
    return [p.id for p in people]


def minimal(**changes) -> dict:
    """A small valid rota as loaded YAML: one tier with one night shift."""
    data = {
        "timezone": "Europe/London",
        "staff": [
            {"id": "nia", "name": "Nia", "role": "peer_worker", "phone": "07700 900501"},
            {"id": "omar", "name": "Omar", "role": "duty_manager", "phone": "+44 7700 900502"},
            {"id": "pat", "name": "Pat", "role": "sanctuary_volunteer", "phone": "07700900503"},
        ],
        "tiers": [
            {
                "id": "night",
                "name": "Night",
                "shifts": [{"days": ["sat"], "from": "22:00", "to": "06:00", "staff": ["nia"]}],
            },
            {
                "id": "manager",
                "name": "Manager",
                "shifts": [{"days": "daily", "from": "00:00", "to": "24:00", "staff": ["omar"]}],
            },
        ],
        "ladders": {level: ["night", "manager"] for level in LEVELS},
    }
    data.update(changes)
    return data


# --- the example file -------------------------------------------------------------------------


def test_example_rota_loads_with_a_ladder_for_every_level():
    loaded = rota.load()
    for level in LEVELS:
        assert loaded.ladder(level), level
    assert [t.id for t in loaded.ladder("urgent")] == ["peer_workers", "duty_manager", "crisis_team"]
    assert [t.id for t in loaded.ladder("imminent")] == ["duty_manager", "crisis_team"]
    # The houses are the service directory's, under the same keys (one bed count each).
    assert set(loaded.sanctuaries) == {"bridgwater-sanctuary", "taunton-haven"}
    # Fictional numbers only: Ofcom's drama range.
    assert all(p.phone.startswith("+447700900") for p in loaded.staff.values())


def test_example_risk_ladders_always_reach_someone():
    # Risk never waits for opening hours: urgent and imminent end at the crisis team, on call
    # around the clock. A request to talk (support) may find nobody in weekday daytime, when
    # the out-of-hours line is closed; the all-tiers-exhausted path answers that honestly.
    loaded = rota.load()
    start = london(2026, 11, 23, 0, 0)  # a Monday
    for half_hour in range(0, 2 * 24 * 7):
        at = start + dt.timedelta(minutes=30 * half_hour)
        for level in ("urgent", "imminent"):
            assert loaded.on_call(loaded.ladder(level)[-1], at), (level, at)
    assert loaded.on_call("duty_manager", london(2026, 11, 23, 12, 0)) == []


def test_example_night_shift_crosses_midnight():
    loaded = rota.load()
    # Tuesday 24 November 2026, 23:30: Tuesday's peer workers.
    assert ids(loaded.on_call("peer_workers", london(2026, 11, 24, 23, 30))) == ["aisha", "ben"]
    # Wednesday 00:30: still Tuesday's shift (17:00 to 01:00).
    assert ids(loaded.on_call("peer_workers", london(2026, 11, 25, 0, 30))) == ["aisha", "ben"]
    # Wednesday 01:00: the night peer worker until the office opens at 09:00.
    assert ids(loaded.on_call("peer_workers", london(2026, 11, 25, 1, 0))) == ["mo"]
    assert ids(loaded.on_call("peer_workers", london(2026, 11, 25, 8, 59))) == ["mo"]
    # Office hours: nobody (the line is not on duty then; the crisis team still is).
    assert loaded.on_call("peer_workers", london(2026, 11, 25, 12, 0)) == []
    # Friday 00:30 belongs to Thursday night; Saturday 00:30 to Friday night.
    assert ids(loaded.on_call("peer_workers", london(2026, 11, 27, 0, 30))) == ["aisha", "ben"]
    assert ids(loaded.on_call("peer_workers", london(2026, 11, 28, 0, 30))) == ["chloe", "dev"]


def test_tiers_and_houses_can_be_passed_as_objects_and_houses_open():
    loaded = rota.load()
    friday_night = london(2026, 11, 27, 23, 0)
    house = loaded.sanctuaries["taunton-haven"]
    assert ids(loaded.on_call(house, friday_night)) == ["liam"]
    assert [h.id for h in loaded.houses_open(friday_night)] == ["bridgwater-sanctuary", "taunton-haven"]
    assert loaded.houses_open(london(2026, 11, 27, 12, 0)) == []


# --- clock changes --------------------------------------------------------------------------


def test_night_shift_across_the_autumn_clock_change_is_nine_hours():
    # Sunday 25 October 2026: at 02:00 BST the clocks go back to 01:00 GMT. The Saturday shift
    # 22:00 to 06:00 therefore runs from 21:00 UTC to 06:00 UTC.
    loaded = rota.parse(minimal())

    def on(at):
        return ids(loaded.on_call("night", at))

    assert on(utc(2026, 10, 24, 20, 59)) == []
    assert on(utc(2026, 10, 24, 21, 0)) == ["nia"]  # 22:00 BST
    assert on(utc(2026, 10, 25, 0, 30)) == ["nia"]  # 01:30 BST, the first time
    assert on(utc(2026, 10, 25, 1, 30)) == ["nia"]  # 01:30 GMT, the second time
    assert on(utc(2026, 10, 25, 5, 30)) == ["nia"]  # an offset fixed at BST would end at 05:00
    assert on(utc(2026, 10, 25, 6, 0)) == []  # 06:00 GMT


def test_night_shift_across_the_spring_clock_change_is_seven_hours():
    # Sunday 29 March 2026: at 01:00 GMT the clocks go forward to 02:00 BST.
    loaded = rota.parse(minimal())

    def on(at):
        return ids(loaded.on_call("night", at))

    assert on(utc(2026, 3, 28, 22, 0)) == ["nia"]  # 22:00 GMT
    assert on(utc(2026, 3, 29, 4, 59)) == ["nia"]
    assert on(utc(2026, 3, 29, 5, 0)) == []  # 06:00 BST


def test_on_call_accepts_any_timezone_but_not_a_naive_time():
    loaded = rota.parse(minimal())
    tokyo = dt.datetime(2026, 11, 29, 7, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # Sat 22:00 GMT
    assert ids(loaded.on_call("night", tokyo)) == ["nia"]
    with pytest.raises(ValueError, match="timezone-aware"):
        loaded.on_call("night", dt.datetime(2026, 11, 28, 23, 0))
    with pytest.raises(KeyError, match="no tier or sanctuary house called 'nope'"):
        loaded.on_call("nope", tokyo)
    with pytest.raises(KeyError, match="no ladder"):
        loaded.ladder("whenever")


def test_equal_times_mean_a_24_hour_shift():
    data = minimal()
    data["tiers"][0]["shifts"][0].update({"from": "09:00", "to": "09:00"})
    loaded = rota.parse(data)
    assert ids(loaded.on_call("night", london(2026, 11, 29, 8, 59))) == ["nia"]  # Sunday
    assert loaded.on_call("night", london(2026, 11, 29, 9, 0)) == []


def test_phone_numbers_are_normalised_and_kept_out_of_repr():
    loaded = rota.parse(minimal())
    assert [p.phone for p in loaded.staff.values()] == [
        "+447700900501", "+447700900502", "+447700900503"
    ]
    assert "7700" not in repr(loaded.staff["nia"])
    assert "7700" not in repr(loaded.on_call("manager", london(2026, 11, 29, 12, 0)))


def test_a_staff_phone_written_with_the_international_zero_is_the_phone_that_texts_in():
    # "+44 (0)7700 900501" is how many people write a UK number. The rota's own parser kept
    # the zero (+4407700900501), so an ACK texted from that phone (Twilio sends +447700900501)
    # was not recognised as the staff member's.
    data = minimal()
    data["staff"][0]["phone"] = "+44 (0)7700 900501"
    loaded = rota.parse(data)
    assert loaded.staff["nia"].phone == "+447700900501"


def test_a_phone_with_letters_in_it_is_refused_not_misread():
    data = minimal()
    data["staff"][0]["phone"] = "07700 9OO501"
    problems = _problems(data)
    assert any("phone" in p for p in problems)


# --- validation -----------------------------------------------------------------------------


def _problems(data) -> list[str]:
    with pytest.raises(rota.RotaError) as info:
        rota.parse(data, "data/rota/test.yml")
    assert str(info.value).startswith("data/rota/test.yml: ")
    return info.value.problems


def test_every_problem_is_listed_with_entry_and_field():
    data = minimal(timezone="Europe/Londn")
    data["staff"].append({"id": "nia", "name": "Nia again", "role": "peer_worker", "phone": "07700 900509"})
    data["staff"].append({"id": "Q", "name": "", "role": "boss", "phone": "12345", "email": "x"})
    data["tiers"][0]["shifts"].append(
        {"days": ["sat", "funday"], "from": 1080, "to": "25:00", "staff": ["nia", "zoe", "nia"]}
    )
    data["ladders"] = {"urgent": ["night", "nowhere"], "imminent": []}
    problems = _problems(data)
    text = "\n".join(problems)
    expected = [
        "top level: field 'timezone': 'Europe/Londn' is not a known time zone",
        "staff[3] (id 'nia'): field 'id' repeats an earlier staff member's id",
        "staff[4]: unknown field 'email'",
        "staff[4]: field 'id' must be lower-case letters",
        "staff[4]: field 'name' must be non-empty text",
        "staff[4]: field 'role' must be one of peer_worker, duty_manager, crisis_team, sanctuary_volunteer",
        "staff[4]: field 'phone' is not a UK (07…) or international (+…) number",
        "tiers[0] (id 'night').shifts[1]: field 'days': 'funday' is not a day",
        "tiers[0] (id 'night').shifts[1]: field 'from': put times in quotes",
        "tiers[0] (id 'night').shifts[1]: field 'to' must be a time HH:MM",
        "tiers[0] (id 'night').shifts[1]: field 'staff': 'zoe' is not in the staff list",
        "tiers[0] (id 'night').shifts[1]: field 'staff' names someone twice",
        "ladders: field 'support' is missing",
        "ladders.urgent: 'nowhere' is not a tier id",
        "ladders.imminent: must be a non-empty list",
    ]
    for line in expected:
        assert line in text, f"missing: {line}\n--- got:\n{text}"
    # The bad number is not repeated: it could be a real person's.
    assert "12345" not in text


def test_missing_top_level_fields_and_wrong_types():
    assert _problems([]) == ["top level: must be a mapping of field: value"]
    problems = _problems({"timezone": "Europe/London", "staff": {}, "tiers": [], "ladders": {}})
    assert "top level: field 'staff' must be a list" in problems


def test_sanctuary_volunteers_must_be_volunteers_and_staff_its_shifts():
    data = minimal(
        sanctuaries=[
            {
                "id": "night",  # clashes with a tier id: on_call takes either
                "name": "House",
                "area": "Lewes",
                "volunteers": ["pat", "omar"],
                "shifts": [{"days": "weekends", "from": "20:00", "to": "08:00", "staff": ["nia"]}],
            }
        ]
    )
    text = "\n".join(_problems(data))
    house = "sanctuaries[0] (id 'night')"
    assert f"{house}: field 'volunteers': 'omar' does not have role sanctuary_volunteer" in text
    assert f"{house}.shifts[0]: field 'staff': 'nia' is not one of this house's volunteers" in text
    assert f"{house}: field 'id' repeats a tier's or another house's id" in text


def test_file_errors_name_the_file_and_line(tmp_path):
    missing = tmp_path / "nope.yml"
    with pytest.raises(rota.RotaError, match="nope.yml: 1 problem"):
        rota.load(missing)

    broken = tmp_path / "broken.yml"
    broken.write_text("timezone: Europe/London\nstaff: [\n", encoding="utf-8")
    with pytest.raises(rota.RotaError, match=r"(?s)broken.yml.*line \d+: not valid YAML"):
        rota.load(broken)

    duplicate = tmp_path / "duplicate.yml"
    duplicate.write_text("timezone: Europe/London\ntimezone: Europe/Paris\n", encoding="utf-8")
    with pytest.raises(rota.RotaError, match=r"line 2: not valid YAML \(duplicate key 'timezone'\)"):
        rota.load(duplicate)


def test_a_valid_rota_round_trips_through_a_file(tmp_path):
    import yaml

    path = tmp_path / "rota.yml"
    path.write_text(yaml.safe_dump(minimal()), encoding="utf-8")
    loaded = rota.load(path)
    assert list(loaded.tiers) == ["night", "manager"]


def test_parse_does_not_change_its_input():
    data = minimal()
    before = copy.deepcopy(data)
    rota.parse(data)
    assert data == before


def test_cli_shows_who_is_on_call_without_phone_numbers():
    import io

    from bot.escalation.__main__ import main

    out = io.StringIO()
    assert main(["rota", "--at", "2026-11-24T19:00"], out=out) == 0
    text = out.getvalue()
    assert "tier peer_workers: Aisha (aisha), Ben (ben)" in text
    assert "urgent: peer_workers -> duty_manager -> crisis_team" in text
    assert "7700" not in text and "+44" not in text


def test_cli_reports_an_invalid_rota(tmp_path):
    import io

    from bot.escalation.__main__ import main

    path = tmp_path / "rota.yml"
    path.write_text("timezone: Mars/Olympus\n", encoding="utf-8")
    out = io.StringIO()
    assert main(["rota", "--file", str(path)], out=out) == 1
    assert "field 'timezone'" in out.getvalue() and "field 'staff' is missing" in out.getvalue()
