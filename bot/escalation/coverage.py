"""Does the rota cover the line's hours? Every gap, for the next 400 days.

The line tells a person "Our out-of-hours team is on duty now" whenever ``data/hours.yml``
says the office is shut (``bot/directory/schedule.py``: weekday evenings and nights, weekends,
bank holidays of ``HOLIDAY_NATION``, dated exceptions such as Christmas Eve afternoon). At
every such moment each tier of every escalation ladder must have someone on call, or an alert
climbs past an empty tier and a request for a person reaches nobody.

The check is exact, not sampled: the line's out-of-hours time and each tier's shifts are
turned into UTC intervals (wall-clock times, so clock changes are honoured) and subtracted,
so a gap of a few minutes is found as surely as one of a day.

Run by ``python -m bot.escalation rota check``, by the tests on the example rota, and by the
duty service (a log line at start-up and a banner on console pages when a gap lies within
``WARN_DAYS``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

from bot.escalation.engine import LEVELS
from bot.escalation.rota import Rota

CHECK_DAYS = 400
WARN_DAYS = 14
_UTC = dt.timezone.utc

Interval = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True)
class Gap:
    """From ``start`` to ``end`` (UTC) the line is out of hours and nobody is on call for
    ``tier``, which the ladders of ``levels`` alert."""

    start: dt.datetime
    end: dt.datetime
    tier: str
    tier_name: str
    levels: tuple[str, ...]

    def describe(self, tz: ZoneInfo) -> str:
        a, b = self.start.astimezone(tz), self.end.astimezone(tz)
        end = b.strftime("%H:%M") if b.date() == a.date() else b.strftime("%a %d %b %Y %H:%M")
        return (f"{a.strftime('%a %d %b %Y %H:%M')} to {end}: nobody on call for "
                f"{self.tier_name} ({self.tier}; {', '.join(self.levels)} ladder"
                f"{'s' if len(self.levels) > 1 else ''})")


def _merge(items: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in sorted(items):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _subtract(base: Sequence[Interval], cut: Sequence[Interval]) -> list[Interval]:
    """``base`` minus ``cut``; both merged and sorted."""
    out: list[Interval] = []
    j = 0
    for start, end in base:
        at = start
        while j < len(cut) and cut[j][1] <= at:
            j += 1
        k = j
        while k < len(cut) and cut[k][0] < end:
            if cut[k][0] > at:
                out.append((at, cut[k][0]))
            at = max(at, cut[k][1])
            k += 1
        if at < end:
            out.append((at, end))
    return out


def _clip(items: Iterable[Interval], start: dt.datetime, end: dt.datetime) -> list[Interval]:
    return [(max(a, start), min(b, end)) for a, b in items if a < end and b > start]


def on_duty_intervals(start: dt.datetime, end: dt.datetime, *, hours_path: Optional[Path] = None,
                      nation: Optional[str] = None) -> list[Interval]:
    """When the line says its out-of-hours team is on duty, within [start, end), in UTC.

    The same rules as ``line_status``: the office-hours schedule from ``data/hours.yml``,
    bank holidays of ``nation`` (default ``HOLIDAY_NATION``), in ``TZ_LINE``. Unreadable
    hours count as out of hours throughout, as ``line_status`` treats them.
    """
    from bot.directory import bank_holidays
    from bot.directory.hours import intervals
    from bot.directory.query import line_tz
    from bot.directory.schedule import load_office_hours
    from bot.directory.schema import DirectoryError

    tz = line_tz()
    whole = [(start, end)]
    try:
        office = load_office_hours(hours_path)
    except DirectoryError:
        return whole

    def holiday(day: dt.date) -> bool:
        return bank_holidays.is_bank_holiday(day, nation)

    first = start.astimezone(tz).date() - dt.timedelta(days=2)
    last = end.astimezone(tz).date() + dt.timedelta(days=1)
    open_ = _clip(intervals(office, first, last, tz, holiday), start, end)
    return _subtract(whole, _merge(open_))


def covered_intervals(r: Rota, team: str, start: dt.datetime, end: dt.datetime) -> list[Interval]:
    """When someone is on call for ``team`` (a tier or house id) within [start, end), in UTC."""
    shifts = (r.tiers.get(team) or r.sanctuaries[team]).shifts
    tz = r.timezone
    day = start.astimezone(tz).date() - dt.timedelta(days=1)  # a shift lasts at most 25 hours
    last = end.astimezone(tz).date()
    found: list[Interval] = []
    while day <= last:
        for shift in shifts:
            if shift.staff and shift.starts_on(day):
                found.append(shift.window(day, tz))
        day += dt.timedelta(days=1)
    return _clip(_merge(found), start, end)


def find_gaps(
    r: Rota,
    start: Optional[dt.datetime] = None,
    days: int = CHECK_DAYS,
    *,
    on_duty: Optional[Callable[[dt.datetime, dt.datetime], list[Interval]]] = None,
) -> list[Gap]:
    """Every time within ``days`` from ``start`` (default now) that the line is out of hours
    and a tier of some ladder has nobody on call, earliest first."""
    start = (start or dt.datetime.now(_UTC)).astimezone(_UTC)
    end = start + dt.timedelta(days=days)
    duty = (on_duty or on_duty_intervals)(start, end)
    levels_of: dict[str, list[str]] = {}
    for level in LEVELS:
        for tier_id in r.ladders.get(level, ()):
            levels_of.setdefault(tier_id, []).append(level)
    gaps: list[Gap] = []
    for tier_id, levels in levels_of.items():
        tier = r.tiers[tier_id]
        for a, b in _subtract(duty, covered_intervals(r, tier_id, start, end)):
            gaps.append(Gap(a, b, tier_id, tier.name, tuple(levels)))
    gaps.sort(key=lambda g: (g.start, g.tier))
    return gaps


def gaps_within(r: Rota, days: int = WARN_DAYS, start: Optional[dt.datetime] = None) -> list[Gap]:
    """The gaps that begin (or are under way) within ``days``: what staff must fix soon."""
    return find_gaps(r, start, days)


def house_problems(r: Rota, services_path: Optional[Path] = None) -> list[str]:
    """Where the rota's sanctuary houses and the service directory's disagree.

    One house, one id, one bed count: each house in the rota must be a sanctuary house with
    beds in the directory under the same key, and each such house in the directory must be in
    the rota (or referrals could never reach it while signposting counts its beds).
    """
    from bot.directory.loader import load_directory

    directory = load_directory(services_path)
    houses = {s.key: s for s in directory.services if s.kind == "sanctuary_house"}
    problems = []
    for house in r.sanctuaries.values():
        service = directory.service(house.id)
        if service is None:
            problems.append(f"rota house {house.id!r} is not in the service directory")
        elif service.kind != "sanctuary_house" or service.capacity_total is None:
            problems.append(f"rota house {house.id!r} is not a sanctuary house with beds "
                            f"(capacity) in the service directory")
    for key in houses:
        if key not in r.sanctuaries:
            problems.append(f"directory sanctuary house {key!r} is not in the rota's sanctuaries")
    return problems
