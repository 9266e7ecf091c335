"""Opening hours: weekly spans in local time, bank-holiday rules, dated exceptions.

A span is ``(start, end)`` in minutes after local midnight of the day it belongs to; ``end`` may
pass 1440, so "Friday 18:00-02:00" is ``(1080, 1560)`` on Friday and the tail after midnight
still belongs to Friday's opening (a Saturday bank holiday does not cut it short).

Wall-clock times become instants with ``zoneinfo`` in the line's time zone, so a night that
crosses a clock change is an hour shorter (March) or longer (October) than it looks. A wall time
that does not exist (01:30 on the spring-forward night) means the instant an hour later by the
new clock; an ambiguous one (01:30 on the autumn night) means its first occurrence. Every
comparison happens in UTC: comparing two aware datetimes that share a ``ZoneInfo`` compares
their wall times and would be wrong across a change.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_GROUPS = {
    "daily": DAYS,
    "weekdays": DAYS[:5],
    "weekends": DAYS[5:],
}
UTC = dt.timezone.utc
Span = Tuple[int, int]

# A bank holiday keeps the usual hours, closes, or follows Saturday's or Sunday's hours;
# otherwise the rule is a tuple of spans of its own.
BANK_HOLIDAY_WORDS = ("usual", "closed", "saturday", "sunday")
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def parse_time(text: str, *, allow_24: bool = False) -> int:
    """Minutes after midnight for ``HH:MM``; ``24:00`` only where ``allow_24`` (an end)."""
    m = _TIME.match(text)
    if not m:
        raise ValueError(f"{text.strip()!r} is not a time (write HH:MM, e.g. 17:00)")
    hours, minutes = int(m.group(1)), int(m.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise ValueError(
            f"{text.strip()!r} is not a time of day (use 00:00 to 23:59; 24:00 only as an end)"
        )
    return hours * 60 + minutes


def parse_span(text: str) -> Span:
    """``"17:00-02:00"`` -> ``(1020, 1560)``: an end at or before the start is the next day."""
    if not isinstance(text, str):
        raise ValueError(
            f"{text!r} is not a span of time: write it in quotes as \"HH:MM-HH:MM\""
        )
    parts = text.replace("–", "-").split("-")
    if len(parts) != 2:
        raise ValueError(f"{text!r} is not a span of time: write \"HH:MM-HH:MM\"")
    start = parse_time(parts[0])
    end = parse_time(parts[1], allow_24=True)
    if end == start:
        raise ValueError(f"{text!r} starts and ends at the same time (for all day write 00:00-24:00)")
    if end < start:
        end += 1440
    return (start, end)


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_span(span: Span) -> str:
    start, end = span
    end_text = "24:00" if end == 1440 else format_minutes(end % 1440)
    return f"{format_minutes(start)}-{end_text}"


@dataclass(frozen=True)
class DatedRule:
    """Different hours (or closed, when ``spans`` is empty) from ``first`` to ``last`` inclusive."""

    first: dt.date
    last: dt.date
    spans: Tuple[Span, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Schedule:
    """When a service (or the line's office) is open, in local wall time."""

    week: Tuple[Tuple[Span, ...], ...] = field(default_factory=lambda: ((),) * 7)
    always: bool = False
    bank_holidays: object = "usual"  # one of BANK_HOLIDAY_WORDS, or a tuple of spans
    exceptions: Tuple[DatedRule, ...] = ()

    @classmethod
    def open_always(cls) -> "Schedule":
        return cls(week=(((0, 1440),),) * 7, always=True)

    def exception_on(self, day: dt.date) -> Optional[DatedRule]:
        for rule in self.exceptions:
            if rule.first <= day <= rule.last:
                return rule
        return None

    def spans_on(self, day: dt.date, is_holiday: Callable[[dt.date], bool]) -> Tuple[Span, ...]:
        """The spans that start on ``day``: dated exceptions, then bank holidays, then the week."""
        rule = self.exception_on(day)
        if rule is not None:
            return rule.spans
        if self.bank_holidays != "usual" and is_holiday(day):
            if self.bank_holidays == "closed":
                return ()
            if self.bank_holidays == "saturday":
                return self.week[5]
            if self.bank_holidays == "sunday":
                return self.week[6]
            return tuple(self.bank_holidays)  # its own spans
        return self.week[day.weekday()]


def to_instant(day: dt.date, minutes: int, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant of ``minutes`` after local midnight of ``day`` (may run into later days)."""
    extra_days, minute = divmod(minutes, 1440)
    local = dt.datetime.combine(
        day + dt.timedelta(days=extra_days), dt.time(minute // 60, minute % 60), tzinfo=tz
    )
    return local.astimezone(UTC)


def intervals(
    schedule: Schedule,
    first: dt.date,
    last: dt.date,
    tz: ZoneInfo,
    is_holiday: Callable[[dt.date], bool],
) -> List[Tuple[dt.datetime, dt.datetime]]:
    """Open intervals (UTC) for spans starting on ``first``..``last``, merged where they touch."""
    raw: List[Tuple[dt.datetime, dt.datetime]] = []
    day = first
    while day <= last:
        for start, end in schedule.spans_on(day, is_holiday):
            raw.append((to_instant(day, start, tz), to_instant(day, end, tz)))
        day += dt.timedelta(days=1)
    return merge(raw)


def merge(items: Iterable[Tuple[dt.datetime, dt.datetime]]) -> List[Tuple[dt.datetime, dt.datetime]]:
    merged: List[Tuple[dt.datetime, dt.datetime]] = []
    for start, end in sorted(items):
        if end <= start:
            continue  # a span wholly inside the spring-forward gap
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True)
class OpenState:
    open_now: bool
    open_until: Optional[dt.datetime]  # None when open with no end in sight (24/7)
    opens_at: Optional[dt.datetime]  # None when open now, or not opening within the horizon


HORIZON_DAYS = 14


def open_state(
    schedule: Schedule,
    at: dt.datetime,
    tz: ZoneInfo,
    is_holiday: Callable[[dt.date], bool],
    horizon_days: int = HORIZON_DAYS,
) -> OpenState:
    """Whether ``schedule`` is open at ``at`` (aware), until when, or when it next opens.

    Times are returned in ``tz``. Spans can be up to 48 hours from their day's midnight, so
    the two days before ``at`` are included.
    """
    if at.tzinfo is None:
        raise ValueError("open_state needs an aware datetime")
    now = at.astimezone(UTC)
    today = at.astimezone(tz).date()
    last = today + dt.timedelta(days=horizon_days)
    found = intervals(schedule, today - dt.timedelta(days=2), last, tz, is_holiday)
    horizon_end = to_instant(last, 0, tz)
    for start, end in found:
        if start <= now < end:
            until = None if end >= horizon_end else end.astimezone(tz)
            return OpenState(True, until, None)
        if start > now:
            return OpenState(False, None, start.astimezone(tz))
    return OpenState(False, None, None)


def week_from_mapping(spans_by_day: Sequence[Tuple[str, Tuple[Span, ...]]]) -> Tuple[Tuple[Span, ...], ...]:
    """Expand ``[("weekdays", spans), ("fri", spans)]`` into seven days: groups first, days last."""
    week: List[Tuple[Span, ...]] = [() for _ in DAYS]
    ordered = sorted(spans_by_day, key=lambda kv: 0 if kv[0] == "daily" else 1 if kv[0] in DAY_GROUPS else 2)
    for key, spans in ordered:
        for day in DAY_GROUPS.get(key, (key,)):
            week[DAYS.index(day)] = tuple(spans)
    return tuple(week)
