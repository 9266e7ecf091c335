"""The rota covers the line's hours: whenever the line says its out-of-hours team is on duty
(data/hours.yml, bank holidays included), every tier of every ladder has someone on call."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

from bot.escalation import coverage, rota
from bot.escalation.__main__ import main

LONDON = ZoneInfo("Europe/London")

# Round the clock for each tier except the peer workers, who are off on Tuesday 02:00-03:00
# (a weekday night: out of hours) and Wednesday 10:00-11:00 (office hours: not a gap).
GAPPY = """
timezone: Europe/London
staff:
  - {id: pia, name: Pia, role: peer_worker, phone: "07700 900501"}
  - {id: sam, name: Sam, role: duty_manager, phone: "07700 900502"}
  - {id: cal, name: Cal, role: crisis_team, phone: "07700 900503"}
tiers:
  - id: peer_workers
    name: Peer workers
    shifts:
      - {days: [mon, thu, fri, sat, sun], from: "00:00", to: "00:00", staff: [pia]}
      - {days: [tue], from: "00:00", to: "02:00", staff: [pia]}
      - {days: [tue], from: "03:00", to: "24:00", staff: [pia]}
      - {days: [wed], from: "00:00", to: "10:00", staff: [pia]}
      - {days: [wed], from: "11:00", to: "24:00", staff: [pia]}
  - id: duty_manager
    name: Duty manager
    shifts: [{days: daily, from: "00:00", to: "00:00", staff: [sam]}]
  - id: crisis_team
    name: Crisis team
    shifts: [{days: daily, from: "00:00", to: "00:00", staff: [cal]}]
ladders:
  support: [peer_workers, duty_manager]
  urgent: [peer_workers, duty_manager, crisis_team]
  imminent: [duty_manager, crisis_team]
"""


def test_a_constructed_gap_is_found_with_its_time_and_tier(tmp_path):
    path = tmp_path / "rota.yml"
    path.write_text(GAPPY)
    r = rota.load(path)
    monday = dt.datetime(2027, 2, 1, tzinfo=LONDON)  # no bank holiday that week
    gaps = coverage.find_gaps(r, monday, days=7)
    assert [(g.start.astimezone(LONDON), g.end.astimezone(LONDON), g.tier, g.levels)
            for g in gaps] == [
        (dt.datetime(2027, 2, 2, 2, 0, tzinfo=LONDON), dt.datetime(2027, 2, 2, 3, 0, tzinfo=LONDON),
         "peer_workers", ("support", "urgent")),
    ]
    # Wednesday 10:00-11:00 is office hours: the line does not say a team is on duty then.

    out = io.StringIO()
    assert main(["rota", "check", "--file", str(path), "--from", "2027-02-01T00:00",
                 "--days", "7"], out=out) == 1
    text = out.getvalue()
    assert "1 gap(s)" in text
    assert "Tue 02 Feb 2027 02:00 to 03:00: nobody on call for Peer workers (peer_workers" in text
    assert "07700" not in text and "+447700" not in text  # never a phone number


def test_a_rota_without_bank_holiday_cover_leaves_easter_monday_and_christmas_eve_uncovered(
    tmp_path,
):
    # The example rota as it was: weekday evenings and weekends only.
    text = rota.DEFAULT_PATH.read_text(encoding="utf-8")
    kept = [line for line in text.splitlines()
            if "bank_holidays, from" not in line and "dates: [2026-12-24" not in line]
    path = tmp_path / "rota.yml"
    path.write_text("\n".join(kept) + "\n")
    r = rota.load(path)
    gaps = coverage.find_gaps(r, dt.datetime(2026, 12, 1, tzinfo=LONDON), days=400)

    def uncovered(at: dt.datetime) -> set[str]:
        return {g.tier for g in gaps if g.start <= at < g.end}

    easter_monday = dt.datetime(2027, 3, 29, 11, 0, tzinfo=LONDON)
    assert uncovered(easter_monday) == {"peer_workers", "duty_manager"}
    christmas_eve = dt.datetime(2026, 12, 24, 15, 0, tzinfo=LONDON)
    assert uncovered(christmas_eve) == {"peer_workers", "duty_manager"}


def test_the_example_rota_covers_the_next_400_days():
    r = rota.load()
    # From now, as `make test` and `rota check` run it, and from a fixed date that includes
    # Christmas Eve and New Year's Eve afternoons and the bank holidays of 2027.
    assert coverage.find_gaps(r) == []
    assert coverage.find_gaps(r, dt.datetime(2026, 12, 1, tzinfo=LONDON)) == []
    out = io.StringIO()
    assert main(["rota", "check"], out=out) == 0
    assert "covers the line's hours" in out.getvalue()


def test_a_gap_across_the_october_clock_change_is_measured_in_real_time(tmp_path):
    # Peer workers cover 09:00 to 02:00; on the night the clocks go back (31 Oct 2027) the
    # night shift runs an hour longer, to 02:00 GMT, and the gap to 09:00 GMT is seven hours.
    path = tmp_path / "rota.yml"
    path.write_text(GAPPY.replace(
        """      - {days: [mon, thu, fri, sat, sun], from: "00:00", to: "00:00", staff: [pia]}
      - {days: [tue], from: "00:00", to: "02:00", staff: [pia]}
      - {days: [tue], from: "03:00", to: "24:00", staff: [pia]}
      - {days: [wed], from: "00:00", to: "10:00", staff: [pia]}
      - {days: [wed], from: "11:00", to: "24:00", staff: [pia]}""",
        """      - {days: daily, from: "18:00", to: "02:00", staff: [pia]}
      - {days: daily, from: "09:00", to: "18:00", staff: [pia]}""",
    ))
    r = rota.load(path)
    gaps = coverage.find_gaps(r, dt.datetime(2027, 10, 30, 12, 0, tzinfo=LONDON), days=1)
    assert [(g.start, g.end) for g in gaps] == [
        (dt.datetime(2027, 10, 31, 2, 0, tzinfo=dt.timezone.utc),  # 02:00 GMT
         dt.datetime(2027, 10, 31, 9, 0, tzinfo=dt.timezone.utc)),  # 09:00 GMT
    ]


def test_dated_and_bank_holiday_shifts_are_validated_and_put_people_on_call(tmp_path):
    path = tmp_path / "rota.yml"
    path.write_text(GAPPY.replace(
        "shifts: [{days: daily, from: \"00:00\", to: \"00:00\", staff: [sam]}]",
        "shifts:\n"
        "      - {days: bank_holidays, from: \"09:00\", to: \"17:00\", staff: [sam]}\n"
        "      - {dates: [2027-12-24], from: \"13:00\", to: \"17:00\", staff: [sam]}",
    ))
    r = rota.load(path)
    assert [m.id for m in r.on_call("duty_manager", dt.datetime(2027, 3, 29, 11, tzinfo=LONDON))] == ["sam"]
    assert r.on_call("duty_manager", dt.datetime(2027, 3, 30, 11, tzinfo=LONDON)) == []
    assert [m.id for m in r.on_call("duty_manager", dt.datetime(2027, 12, 24, 14, tzinfo=LONDON))] == ["sam"]

    bad = tmp_path / "bad.yml"
    bad.write_text(GAPPY.replace(
        "shifts: [{days: daily, from: \"00:00\", to: \"00:00\", staff: [sam]}]",
        "shifts:\n"
        "      - {dates: [2027-02-30], from: \"09:00\", to: \"17:00\", staff: [sam]}\n"
        "      - {days: daily, dates: [2027-12-24], from: \"09:00\", to: \"17:00\", staff: [sam]}",
    ))
    try:
        rota.load(bad)
    except rota.RotaError as exc:
        problems = "\n".join(exc.problems)
    else:
        raise AssertionError("an impossible date was accepted")
    assert "field 'dates': '2027-02-30' is not a date" in problems
    assert "give either field 'days' or field 'dates' (not both)" in problems
