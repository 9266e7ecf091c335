"""The rota: who is on call for each tier of the escalation ladder, and the sanctuary houses.

The file (``data/rota/rota.yml``) names staff once, then:

- ``tiers``: the people alerted in turn (peer workers, duty manager, crisis team), each with
  shifts by weekday and local time in the rota's ``timezone`` (Europe/London);
- ``ladders``: for each escalation level, which tiers are alerted, in order;
- ``sanctuaries``: houses that take referrals, with their volunteers and the shifts they are
  open for referrals.

A shift belongs to the day it *starts*: ``days: [fri]``, ``from: "22:00"``, ``to: "08:00"`` is
Friday 22:00 to Saturday 08:00 local time. ``to: "24:00"`` means midnight at the end of the
day; ``to`` equal to ``from`` means 24 hours (a 09:00 to 09:00 on-call day). Times are
wall-clock times, so a night shift across a clock change really is an hour longer (October)
or shorter (March) than usual.

A shift may start on named days, on bank holidays (``days: bank_holidays``, the nation in
``HOLIDAY_NATION``, as the line's own hours use) or on given dates (``dates: [2026-12-24]``
instead of ``days``), so that the rota can cover the times ``data/hours.yml`` counts as out of
hours although they are not weekday evenings or weekends. ``bot/escalation/coverage.py``
checks that it does.

Validation collects every problem and names the file, the entry and the field. Phone numbers
are never echoed in errors or in ``repr``, because both end up in logs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bot.escalation.engine import LEVELS
from bot.settings import ROOT

DEFAULT_PATH = ROOT / "data" / "rota" / "rota.yml"

ROLES = ("peer_worker", "duty_manager", "crisis_team", "sanctuary_volunteer")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_GROUPS = {
    "daily": tuple(range(7)),
    "weekdays": tuple(range(5)),
    "weekends": (5, 6),
}
BANK_HOLIDAYS = "bank_holidays"  # days: the bank holidays of HOLIDAY_NATION
_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
# A house's id is its key in the service directory (``taunton-haven``): one house, one id,
# one bed count (``bot/directory/beds.py``).
_HOUSE_ID_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_UTC = dt.timezone.utc  # not datetime.UTC: that is Python 3.11+, and Rasa 3.6 needs 3.10


class RotaError(ValueError):
    """The rota file is not valid; ``problems`` lists every problem found."""

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{path}: {len(self.problems)} problem(s) in the rota:\n{lines}")


@dataclass(frozen=True)
class StaffMember:
    id: str
    name: str  # first name or role: what the person is told when this member joins
    role: str
    # E.164 (+447700900123). Kept out of repr so that logging a rota lookup cannot leak it.
    phone: str = field(repr=False)


@dataclass(frozen=True)
class Shift:
    days: frozenset[int]  # weekdays on which the shift starts, Monday = 0
    start: dt.time
    end: dt.time | None  # None: midnight at the end of the start day ("24:00")
    staff: tuple[str, ...]
    dates: frozenset[dt.date] = frozenset()  # ... or these dates
    bank_holidays: bool = False  # ... or every bank holiday

    def starts_on(self, day: dt.date) -> bool:
        if day.weekday() in self.days or day in self.dates:
            return True
        if self.bank_holidays:
            from bot.directory.bank_holidays import is_bank_holiday

            return is_bank_holiday(day)
        return False

    def days_label(self) -> str:
        """``mon, tue``, ``weekends``, ``bank holidays`` or ``2026-12-24``: for pages and CLIs."""
        parts = []
        for name, group in DAY_GROUPS.items():
            if self.days == frozenset(group):
                parts.append(name)
                break
        else:
            parts += [DAY_NAMES[d] for d in sorted(self.days)]
        if self.bank_holidays:
            parts.append("bank holidays")
        parts += [d.isoformat() for d in sorted(self.dates)]
        return ", ".join(parts)

    def window(self, day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """The shift starting on ``day``, as a UTC interval [start, end)."""
        start = dt.datetime.combine(day, self.start, tzinfo=tz)
        if self.end is None:
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
        elif self.end > self.start:
            end = dt.datetime.combine(day, self.end, tzinfo=tz)
        else:  # ends on the next day (equal times: 24 hours)
            end = dt.datetime.combine(day + dt.timedelta(days=1), self.end, tzinfo=tz)
        # Compare in UTC: two datetimes sharing one tzinfo compare by wall clock, which is
        # wrong on the night the clocks go back.
        return start.astimezone(_UTC), end.astimezone(_UTC)


@dataclass(frozen=True)
class Tier:
    id: str
    name: str
    shifts: tuple[Shift, ...]


@dataclass(frozen=True)
class Sanctuary:
    id: str
    name: str
    area: str
    volunteers: tuple[str, ...]
    shifts: tuple[Shift, ...]


@dataclass(frozen=True)
class Rota:
    timezone: ZoneInfo
    staff: Mapping[str, StaffMember]
    tiers: Mapping[str, Tier]
    ladders: Mapping[str, tuple[str, ...]]
    sanctuaries: Mapping[str, Sanctuary]

    def ladder(self, level: str) -> list[Tier]:
        """The tiers alerted for ``level``, first to last."""
        if level not in self.ladders:
            raise KeyError(f"no ladder for level {level!r}; levels are {', '.join(LEVELS)}")
        return [self.tiers[tier_id] for tier_id in self.ladders[level]]

    def on_call(self, tier: Tier | Sanctuary | str, at: dt.datetime) -> list[StaffMember]:
        """Who is on shift for ``tier`` (a tier or a sanctuary house, or its id) at ``at``."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("on_call needs a timezone-aware time (e.g. datetime.now(timezone.utc))")
        team_id = tier if isinstance(tier, str) else tier.id
        team = self.tiers.get(team_id) or self.sanctuaries.get(team_id)
        if team is None:
            raise KeyError(f"no tier or sanctuary house called {team_id!r} in the rota")
        moment = at.astimezone(_UTC)
        local_day = moment.astimezone(self.timezone).date()
        found: list[str] = []
        for shift in team.shifts:
            # A shift lasts at most a day (25 hours in October), so only shifts that started
            # today or yesterday (local dates) can cover this moment.
            for day in (local_day - dt.timedelta(days=1), local_day):
                if not shift.starts_on(day):
                    continue
                start, end = shift.window(day, self.timezone)
                if start <= moment < end:
                    found.extend(s for s in shift.staff if s not in found)
        return [self.staff[s] for s in found]

    def houses_open(self, at: dt.datetime) -> list[Sanctuary]:
        """Sanctuary houses with a volunteer on shift at ``at`` (beds are tracked elsewhere)."""
        return [house for house in self.sanctuaries.values() if self.on_call(house, at)]


# --- loading and validation ---------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word; a rota must not."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen[key] = True
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)
# Dates stay text, checked by ``_Checker.dates``: PyYAML would raise a bare ValueError on an
# impossible one (2027-02-30) instead of a problem naming the shift.
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def normalise_phone(raw: str) -> str | None:
    """E.164 for a UK number (``07700 900123``, ``+44 7700 900123``) or an E.164 one; else None."""
    digits = re.sub(r"[\s()-]", "", raw)
    if re.fullmatch(r"0[1-9][0-9]{8,9}", digits):
        return "+44" + digits[1:]
    if re.fullmatch(r"\+[1-9][0-9]{7,14}", digits):
        return digits
    return None


class _Checker:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def mapping(self, value: Any, where: str, required: Iterable[str], optional: Iterable[str] = ()) -> dict:
        if not isinstance(value, dict):
            self.problem(where, "must be a mapping of field: value")
            return {}
        required = tuple(required)
        allowed = set(required) | set(optional)
        for key in required:
            if key not in value:
                self.problem(where, f"field '{key}' is missing")
        for key in value:
            if key not in allowed:
                self.problem(where, f"unknown field '{key}' (allowed: {', '.join(sorted(allowed))})")
        return value

    def text(self, entry: dict, key: str, where: str) -> str:
        value = entry.get(key)
        if key in entry and (not isinstance(value, str) or not value.strip()):
            self.problem(where, f"field '{key}' must be non-empty text")
            return ""
        return (value or "").strip() if isinstance(value, str) else ""

    def ident(self, entry: dict, where: str, house: bool = False) -> str:
        value = entry.get("id")
        pattern = _HOUSE_ID_RE if house else _ID_RE
        if "id" in entry and (not isinstance(value, str) or not pattern.match(value)):
            allowed = "_ or -" if house else "_"
            self.problem(
                where,
                f"field 'id' must be lower-case letters, digits and {allowed} (starting with a letter)",
            )
            return ""
        return value or ""

    def list_of(self, entry: dict, key: str, where: str) -> list:
        value = entry.get(key)
        if key in entry and not isinstance(value, list):
            self.problem(where, f"field '{key}' must be a list")
            return []
        return value or []

    def time(self, value: Any, where: str, key: str, allow_24: bool = False) -> dt.time | None | str:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 18:00 as the base-60 number 1080.
            self.problem(where, f"field '{key}': put times in quotes, e.g. \"18:00\"")
            return "bad"
        if allow_24 and value == "24:00":
            return None
        match = _TIME_RE.match(value) if isinstance(value, str) else None
        if not match:
            extra = ' or "24:00"' if allow_24 else ""
            self.problem(where, f"field '{key}' must be a time HH:MM between \"00:00\" and \"23:59\"{extra}")
            return "bad"
        return dt.time(int(match.group(1)), int(match.group(2)))

    def days(self, value: Any, where: str) -> tuple[frozenset[int], bool]:
        """Weekdays, and whether bank holidays are named (``bank_holidays``)."""
        if isinstance(value, str) and value in DAY_GROUPS:
            return frozenset(DAY_GROUPS[value]), False
        if value == BANK_HOLIDAYS:
            return frozenset(), True
        if not isinstance(value, list) or not value:
            self.problem(
                where,
                "field 'days' must be daily, weekdays, weekends, bank_holidays or a list of "
                + ", ".join(DAY_NAMES),
            )
            return frozenset(), False
        out = set()
        holidays = False
        for day in value:
            if day == BANK_HOLIDAYS:
                holidays = True
                continue
            # YAML 1.1 would read an unquoted no/yes/on/off as booleans; day names are safe.
            if not isinstance(day, str) or day.lower()[:3] not in DAY_NAMES:
                self.problem(where, f"field 'days': {day!r} is not a day ({', '.join(DAY_NAMES)})")
                continue
            out.add(DAY_NAMES.index(day.lower()[:3]))
        return frozenset(out), holidays

    def dates(self, value: Any, where: str) -> frozenset[dt.date]:
        if not isinstance(value, list) or not value:
            self.problem(where, "field 'dates' must be a list of dates (2026-12-24)")
            return frozenset()
        out = set()
        for item in value:
            if isinstance(item, dt.datetime) or not isinstance(item, (dt.date, str)):
                self.problem(where, f"field 'dates': {item!r} is not a date (2026-12-24)")
                continue
            try:
                out.add(item if isinstance(item, dt.date) else dt.date.fromisoformat(item))
            except ValueError:
                self.problem(where, f"field 'dates': {item!r} is not a date (2026-12-24)")
        return frozenset(out)

    def shifts(
        self,
        entry: dict,
        where: str,
        staff: Mapping[str, StaffMember],
        members: set[str] | None,
    ) -> tuple[Shift, ...]:
        out = []
        for i, raw in enumerate(self.list_of(entry, "shifts", where)):
            here = f"{where}.shifts[{i}]"
            shift = self.mapping(raw, here, ("from", "to", "staff"), ("days", "dates"))
            if not shift:
                continue
            days, holidays, dates = frozenset(), False, frozenset()
            if ("days" in shift) == ("dates" in shift):
                self.problem(here, "give either field 'days' or field 'dates' (not both)")
            elif "days" in shift:
                days, holidays = self.days(shift.get("days"), here)
            else:
                dates = self.dates(shift.get("dates"), here)
            start = self.time(shift.get("from"), here, "from") if "from" in shift else "bad"
            end = self.time(shift.get("to"), here, "to", allow_24=True) if "to" in shift else "bad"
            who = self.list_of(shift, "staff", here)
            if "staff" in shift and not who:
                self.problem(here, "field 'staff' must name at least one staff member")
            for name in who:
                if name not in staff:
                    self.problem(here, f"field 'staff': {name!r} is not in the staff list")
                elif members is not None and name not in members:
                    self.problem(here, f"field 'staff': {name!r} is not one of this house's volunteers")
            if len(set(who)) != len(who):
                self.problem(here, "field 'staff' names someone twice")
            if isinstance(start, dt.time) and end != "bad" and (days or holidays or dates):
                out.append(Shift(days, start, end, tuple(dict.fromkeys(w for w in who if w in staff)),
                                 dates, holidays))
        return tuple(out)


def parse(data: Any, path: str = "<rota>") -> Rota:
    """Validate already-loaded YAML data; raise ``RotaError`` listing every problem."""
    c = _Checker(path)
    top = c.mapping(data, "top level", ("timezone", "staff", "tiers", "ladders"), ("sanctuaries",))

    tz = ZoneInfo("Europe/London")
    if "timezone" in top:
        try:
            tz = ZoneInfo(str(top["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            c.problem("top level", f"field 'timezone': {top['timezone']!r} is not a known time zone")

    staff: dict[str, StaffMember] = {}
    for i, raw in enumerate(c.list_of(top, "staff", "top level")):
        where = f"staff[{i}]"
        entry = c.mapping(raw, where, ("id", "name", "role", "phone"))
        if not entry:
            continue
        ident = c.ident(entry, where)
        if ident:
            where = f"staff[{i}] (id {ident!r})"
        name = c.text(entry, "name", where)
        role = entry.get("role")
        if "role" in entry and role not in ROLES:
            c.problem(where, f"field 'role' must be one of {', '.join(ROLES)}")
        phone = None
        if "phone" in entry:
            # The value is never repeated in the message: it may be a real person's number.
            phone = normalise_phone(str(entry["phone"])) if isinstance(entry["phone"], str) else None
            if phone is None:
                c.problem(
                    where,
                    "field 'phone' is not a UK (07…) or international (+…) number written as "
                    "quoted text (value not shown)",
                )
        if ident in staff:
            c.problem(where, "field 'id' repeats an earlier staff member's id")
        elif ident and name and role in ROLES and phone:
            staff[ident] = StaffMember(ident, name, role, phone)

    tiers: dict[str, Tier] = {}
    for i, raw in enumerate(c.list_of(top, "tiers", "top level")):
        where = f"tiers[{i}]"
        entry = c.mapping(raw, where, ("id", "name", "shifts"))
        if not entry:
            continue
        ident = c.ident(entry, where)
        if ident:
            where = f"tiers[{i}] (id {ident!r})"
        name = c.text(entry, "name", where)
        shifts = c.shifts(entry, where, staff, None)
        if ident in tiers:
            c.problem(where, "field 'id' repeats an earlier tier's id")
        elif ident:
            tiers[ident] = Tier(ident, name, shifts)
    if "tiers" in top and not tiers and not c.problems:
        c.problem("top level", "field 'tiers' must list at least one tier")

    ladders: dict[str, tuple[str, ...]] = {}
    raw_ladders = c.mapping(top.get("ladders", {}), "ladders", LEVELS) if "ladders" in top else {}
    for level in LEVELS:
        if level not in raw_ladders:
            continue
        where = f"ladders.{level}"
        steps = raw_ladders[level]
        if not isinstance(steps, list) or not steps:
            c.problem(where, "must be a non-empty list of tier ids, first alerted first")
            continue
        for step in steps:
            if step not in tiers:
                c.problem(where, f"{step!r} is not a tier id (tiers: {', '.join(tiers) or 'none'})")
        if len(set(map(str, steps))) != len(steps):
            c.problem(where, "names a tier twice")
        ladders[level] = tuple(s for s in steps if s in tiers)

    sanctuaries: dict[str, Sanctuary] = {}
    for i, raw in enumerate(c.list_of(top, "sanctuaries", "top level")):
        where = f"sanctuaries[{i}]"
        entry = c.mapping(raw, where, ("id", "name", "area", "volunteers", "shifts"))
        if not entry:
            continue
        ident = c.ident(entry, where, house=True)
        if ident:
            where = f"sanctuaries[{i}] (id {ident!r})"
        name = c.text(entry, "name", where)
        area = c.text(entry, "area", where)
        volunteers = c.list_of(entry, "volunteers", where)
        for v in volunteers:
            if v not in staff:
                c.problem(where, f"field 'volunteers': {v!r} is not in the staff list")
            elif staff[v].role != "sanctuary_volunteer":
                c.problem(where, f"field 'volunteers': {v!r} does not have role sanctuary_volunteer")
        shifts = c.shifts(entry, where, staff, set(volunteers))
        if ident in sanctuaries or ident in tiers:
            c.problem(where, "field 'id' repeats a tier's or another house's id")
        elif ident:
            sanctuaries[ident] = Sanctuary(ident, name, area, tuple(volunteers), shifts)

    if c.problems:
        raise RotaError(path, c.problems)
    return Rota(tz, staff, tiers, ladders, sanctuaries)


def load(path: str | Path = DEFAULT_PATH) -> Rota:
    """Read and validate the rota file; ``RotaError`` names every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RotaError(str(path), [f"cannot read the file ({exc.strerror})"]) from None
    try:
        # _UniqueKeyLoader is a SafeLoader: no arbitrary Python objects from the file.
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        problem = getattr(exc, "problem", None) or str(exc)
        raise RotaError(str(path), [f"{where}: not valid YAML ({problem})"]) from None
    return parse(data, str(path))
