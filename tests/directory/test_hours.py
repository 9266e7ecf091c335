"""Opening hours: overnight spans, closed days, clock changes, bank holidays, dated exceptions."""

import datetime as dt

import pytest

from bot.directory import bank_holidays
from bot.directory.hours import DatedRule, Schedule, open_state, parse_span
from bot.directory.schema import DirectoryError, _Collector, parse_schedule

from .conftest import LONDON, london


def holiday(day: dt.date) -> bool:
    return bank_holidays.is_bank_holiday(day, "ENG")


def schedule(raw: dict) -> Schedule:
    issues = []
    result = parse_schedule(raw, _Collector(issues, "test.yml", "entry"))
    if issues:
        raise DirectoryError(issues)
    return result


def state(sched: Schedule, at: dt.datetime):
    return open_state(sched, at, LONDON, holiday)


# Friday and Saturday nights 22:00 to 04:00; closed the rest of the week.
WEEKEND_NIGHTS = {"hours": {"fri": "22:00-04:00", "sat": "22:00-04:00"}}


def test_overnight_span_is_open_after_midnight_and_closes_next_morning():
    s = schedule(WEEKEND_NIGHTS)
    at = london(2026, 11, 28, 1, 30)  # Saturday 01:30: still Friday night's opening
    st = state(s, at)
    assert st.open_now
    assert st.open_until == london(2026, 11, 28, 4, 0)


def test_closed_day_reports_when_it_next_opens():
    s = schedule(WEEKEND_NIGHTS)
    st = state(s, london(2026, 11, 24, 12, 0))  # a Tuesday
    assert not st.open_now
    assert st.opens_at == london(2026, 11, 27, 22, 0)  # Friday evening


def test_back_to_back_nights_merge_into_one_opening():
    s = schedule({"hours": {"daily": "00:00-24:00"}})
    st = state(s, london(2026, 11, 24, 12, 0))
    assert st.open_now and st.open_until is None  # no end in sight


def test_day_overrides_group():
    s = schedule({"hours": {"weekdays": "09:00-17:00", "wed": "closed"}})
    assert not state(s, london(2026, 11, 25, 12, 0)).open_now  # Wednesday
    assert state(s, london(2026, 11, 26, 12, 0)).open_now  # Thursday


def test_spring_clock_change_night_is_an_hour_shorter():
    # 29 March 2026: clocks go forward at 01:00 GMT. Saturday 22:00 to Sunday 04:00 BST is 5 hours.
    s = schedule(WEEKEND_NIGHTS)
    st = state(s, london(2026, 3, 28, 23, 0))
    assert st.open_now
    until = st.open_until
    assert until.utcoffset() == dt.timedelta(hours=1)  # BST
    assert (until.hour, until.minute) == (4, 0)
    opened = dt.datetime(2026, 3, 28, 22, 0, tzinfo=LONDON)
    assert until.astimezone(dt.timezone.utc) - opened.astimezone(dt.timezone.utc) == dt.timedelta(hours=5)
    # 03:30 BST (02:30 UTC) is open; 04:30 BST is not.
    assert state(s, dt.datetime(2026, 3, 29, 2, 30, tzinfo=dt.timezone.utc)).open_now
    assert not state(s, london(2026, 3, 29, 4, 30)).open_now


def test_autumn_clock_change_night_is_an_hour_longer():
    # 25 October 2026: clocks go back at 02:00 BST. Saturday 22:00 to Sunday 04:00 GMT is 7 hours.
    s = schedule(WEEKEND_NIGHTS)
    st = state(s, london(2026, 10, 24, 23, 0))
    assert st.open_until.utcoffset() == dt.timedelta(0)  # GMT
    assert (st.open_until.hour, st.open_until.minute) == (4, 0)
    opened = dt.datetime(2026, 10, 24, 22, 0, tzinfo=LONDON).astimezone(dt.timezone.utc)
    assert st.open_until.astimezone(dt.timezone.utc) - opened == dt.timedelta(hours=7)
    # 03:30 GMT, after the repeated hour, is still open.
    assert state(s, dt.datetime(2026, 10, 25, 3, 30, tzinfo=dt.timezone.utc)).open_now


def test_opening_time_after_spring_change_is_in_summer_time():
    s = schedule({"hours": {"sun": "10:00-16:00"}})
    st = state(s, london(2026, 3, 28, 12, 0))
    assert st.opens_at == london(2026, 3, 29, 10, 0)
    assert st.opens_at.astimezone(dt.timezone.utc).hour == 9  # 10:00 BST


def test_bank_holiday_closed_on_christmas_and_the_substitute_monday():
    s = schedule({"hours": {"weekdays": "09:00-17:00"}, "bank_holidays": "closed"})
    assert not state(s, london(2026, 12, 25, 12, 0)).open_now  # Christmas Day, Friday
    # Boxing Day is a Saturday in 2026: Monday 28 December is the substitute bank holiday.
    st = state(s, london(2026, 12, 28, 12, 0))
    assert not st.open_now
    assert st.opens_at == london(2026, 12, 29, 9, 0)
    assert state(s, london(2026, 12, 29, 12, 0)).open_now


def test_bank_holiday_own_hours_and_sunday_hours():
    own = schedule({"hours": {"weekdays": "09:00-17:00"}, "bank_holidays": "18:00-02:00"})
    assert not own.always
    assert not state(own, london(2026, 12, 28, 12, 0)).open_now
    st = state(own, london(2026, 12, 28, 23, 0))
    assert st.open_now and st.open_until == london(2026, 12, 29, 2, 0)
    sunday = schedule({"hours": {"weekdays": "08:00-22:00", "sun": "10:00-16:00"},
                       "bank_holidays": "sunday"})
    assert not state(sunday, london(2026, 12, 28, 9, 0)).open_now
    assert state(sunday, london(2026, 12, 28, 11, 0)).open_until == london(2026, 12, 28, 16, 0)


def test_overnight_opening_is_not_cut_short_by_a_bank_holiday_morning():
    # Open Sunday 20:00 to 08:00; Monday 28 December is a closed bank holiday, but Sunday's night runs on.
    s = schedule({"hours": {"daily": "20:00-08:00"}, "bank_holidays": "closed"})
    st = state(s, london(2026, 12, 28, 3, 0))
    assert st.open_now and st.open_until == london(2026, 12, 28, 8, 0)
    assert state(s, london(2026, 12, 28, 9, 0)).opens_at == london(2026, 12, 29, 20, 0)


def test_dated_exceptions_close_a_day_or_set_its_hours():
    s = schedule({
        "hours": {"daily": "18:00-23:00"},
        "exceptions": [
            {"date": "2026-12-24", "hours": "12:00-16:00", "note": "Christmas Eve"},
            {"from": "2026-12-30", "to": "2027-01-01", "closed": True},
        ],
    })
    assert state(s, london(2026, 12, 24, 13, 0)).open_now
    assert not state(s, london(2026, 12, 24, 19, 0)).open_now
    st = state(s, london(2026, 12, 30, 19, 0))
    assert not st.open_now and st.opens_at == london(2027, 1, 2, 18, 0)
    assert s.exception_on(dt.date(2026, 12, 24)) == DatedRule(
        dt.date(2026, 12, 24), dt.date(2026, 12, 24), ((720, 960),), "Christmas Eve"
    )


def test_nothing_within_a_fortnight_means_no_opening_time():
    s = schedule({"hours": {"mon": "09:00-10:00"},
                  "exceptions": [{"from": "2026-11-01", "to": "2026-12-31", "closed": True}]})
    st = state(s, london(2026, 11, 24, 12, 0))
    assert not st.open_now and st.opens_at is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("25:00-02:00", "'25:00' is not a time of day"),
        ("17:60-18:00", "'17:60' is not a time of day"),
        ("24:00-02:00", "'24:00' is not a time of day"),
        ("5pm-2am", "'5pm' is not a time"),
        ("17:00-17:00", "starts and ends at the same time"),
        ("17:00", "is not a span of time"),
    ],
)
def test_impossible_times_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_span(text)


def test_end_of_day_may_be_written_24_00():
    assert parse_span("00:00-24:00") == (0, 1440)
    assert parse_span("17:00-02:00") == (1020, 1560)


def test_scottish_bank_holiday_only_in_scotland():
    st_andrews = dt.date(2026, 11, 30)  # Monday, St Andrew's Day
    assert bank_holidays.is_bank_holiday(st_andrews, "SCT")
    assert not bank_holidays.is_bank_holiday(st_andrews, "ENG")
    assert bank_holidays.bank_holiday_name(dt.date(2026, 12, 28), "ENG") == "Boxing Day (observed)"
    with pytest.raises(ValueError, match="HOLIDAY_NATION"):
        bank_holidays.nation_code("Narnia")
