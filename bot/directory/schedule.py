"""The line's own schedule: when it counts as out of hours (``data/hours.yml``).

The file gives the office hours, when people are pointed to daytime services instead; every
other time (weekday evenings and nights, weekends, bank holidays, dated exceptions such as
Christmas Eve afternoon) is out of hours, when the assistant answers. The assistant's opening
message uses ``line_status()``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import List, Optional

import yaml

from bot.directory import bank_holidays
from bot.directory.hours import open_state
from bot.directory.loader import YamlLoader
from bot.directory.schema import DirectoryError, Issue, _Collector, parse_schedule
from bot.settings import ROOT

log = logging.getLogger(__name__)

HOURS_PATH = ROOT / "data" / "hours.yml"


@dataclasses.dataclass(frozen=True)
class LineStatus:
    out_of_hours: bool
    # "office hours", "weekday evening", "early morning", "weekend", "bank holiday",
    # or a dated exception's note ("Christmas Eve")
    reason: str
    # When that flips (aware, line time zone); None if not within two weeks.
    next_change: Optional[dt.datetime]
    holiday: Optional[str] = None  # the bank holiday's name, on one
    at: Optional[dt.datetime] = None


def load_office_hours(path: Optional[Path] = None):
    """The office-hours ``Schedule`` from ``data/hours.yml``; ``DirectoryError`` if invalid."""
    path = Path(path) if path else HOURS_PATH
    issues: List[Issue] = []
    name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=YamlLoader) or {}  # noqa: S506
    except (OSError, yaml.YAMLError) as exc:
        raise DirectoryError([Issue(name, "", "", f"cannot be read: {type(exc).__name__}")]) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("office_hours"), dict):
        raise DirectoryError([Issue(name, "", "office_hours", "is required (a mapping)")])
    c = _Collector(issues, name, "office_hours")
    schedule = parse_schedule(raw["office_hours"], c)
    if issues or schedule is None:
        raise DirectoryError(issues)
    return schedule


def line_status(at: Optional[dt.datetime] = None, path: Optional[Path] = None) -> LineStatus:
    """Whether the line is out of hours at ``at`` (default now), why, and until when."""
    from bot.directory.query import as_line_time, line_tz
    from bot.settings import settings

    at = as_line_time(at)
    tz = line_tz()
    nation = settings().holiday_nation
    try:
        office = load_office_hours(path)
    except DirectoryError as exc:
        # Safer to answer as if out of hours than to tell someone to ring an office that is shut.
        log.error("line hours unusable (%d problems); treating the line as out of hours", len(exc.issues))
        return LineStatus(True, "hours unknown", None, at=at)

    def holiday(day: dt.date) -> bool:
        return bank_holidays.is_bank_holiday(day, nation)

    state = open_state(office, at, tz, holiday)
    today = at.date()
    holiday_name = bank_holidays.bank_holiday_name(today, nation)
    if state.open_now:
        return LineStatus(False, "office hours", state.open_until, holiday_name, at)
    rule = office.exception_on(today)
    if rule is not None:
        reason = rule.note or "closed today"
    elif holiday_name and office.bank_holidays != "usual":
        reason = "bank holiday"
    elif today.weekday() >= 5:
        reason = "weekend"
    else:
        spans = office.week[today.weekday()]
        first_open = min((s for s, _ in spans), default=None)
        minutes = at.hour * 60 + at.minute
        reason = "early morning" if first_open is not None and minutes < first_open else "weekday evening"
    return LineStatus(True, reason, state.opens_at, holiday_name, at)


def describe(status: LineStatus) -> str:
    """One SMS-sized sentence for the opening message: is the out-of-hours team on now?"""
    until = ""
    if status.next_change is not None:
        until = status.next_change.strftime(" until %H:%M %A").replace(" 00:00", " midnight")
    if status.out_of_hours:
        why = f" (it's {status.holiday})" if status.holiday else ""
        return f"Our out-of-hours team is on duty now{why}{until}."
    opens = until.replace(" until", " from") if until else " later today"
    return (
        f"It's office hours, so our out-of-hours team is on duty{opens}. Your GP or care team can "
        "help today, and I can still listen and find services open now."
    )
