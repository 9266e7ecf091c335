"""The rota: who is on call for each tier of the escalation ladder, and the sanctuary houses.

The rota document (the example: ``data/rota/rota.yml``) names staff once, then:

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

Validation (pydantic models for each entry, see below) collects every problem and names the
source (a file, or a version in the database), the entry and the field. Phone numbers are
never echoed in errors or in ``repr``, because both end up in logs.

The line runs on the rota in the database (``bot/escalation/rota_store.py``: every version
kept, with who and when); this module reads and checks a rota, wherever it is kept.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, Extra, Field, root_validator, validate_model, validator

from bot.escalation.engine import LEVELS
from bot.settings import ROOT
from bot.sms.pseudonym import normalise_uk_number

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
# Dates stay text, checked by ``ShiftEntry._dates``: PyYAML would raise a bare ValueError on an
# impossible one (2027-02-30) instead of a problem naming the shift.
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def normalise_phone(raw: str) -> str | None:
    """E.164 for a UK number (``07700 900123``, ``+44 (0)7700 900123``) or an international
    one; else None. The SMS transport's own reading (``phonenumbers``), so a staff phone in the
    rota is the same number Twilio sends when that phone texts in."""
    return normalise_uk_number(raw)


# The document's schema, in pydantic (v1, as pinned). Each model checks one entry's own
# fields; its validators turn a field into the value the Rota dataclasses hold. What pydantic
# does not do well is kept by hand, below ``parse``:
# - Entries are validated one at a time, not the whole document in one model: pydantic
#   builds nothing when any entry fails, and the checks *between* entries (a shift names a
#   staff member, a ladder names a tier, a house's volunteers) must still run over the valid
#   entries so that one pass lists every problem, as the people who edit the rota need.
# - Messages are the rota's own ("field 'from': put times in quotes"), with the entry and
#   field named as staff read them (``tiers[0] (id 'night').shifts[1]``), not pydantic's
#   ``loc`` tuples and "str type expected"; and a phone number is never repeated.
# - Strings are not coerced (pydantic v1 turns 5 into "5" and 1080 into "1080"): every field
#   is ``Any`` and its validator says what it accepts, so an unquoted 18:00 (YAML 1.1 reads
#   the number 1080) is caught and explained.

class _Entry(BaseModel):
    class Config:
        extra = Extra.forbid
        arbitrary_types_allowed = True


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be non-empty text")
    return value.strip()


def _a_list(value: Any) -> list:
    if not isinstance(value, list):
        raise ValueError("must be a list")
    return value


def _time(value: Any, allow_24: bool = False) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 18:00 as the base-60 number 1080.
        raise ValueError(': put times in quotes, e.g. "18:00"')
    if allow_24 and value == "24:00":
        return None
    match = _TIME_RE.match(value) if isinstance(value, str) else None
    if not match:
        extra = ' or "24:00"' if allow_24 else ""
        raise ValueError(f'must be a time HH:MM between "00:00" and "23:59"{extra}')
    return dt.time(int(match.group(1)), int(match.group(2)))


class StaffEntry(_Entry):
    id: Any = Field(...)
    name: Any = Field(...)
    role: Any = Field(...)
    phone: Any = Field(...)

    _name = validator("name", pre=True, allow_reuse=True)(_text)

    @validator("id", pre=True)
    def _id(cls, value: Any) -> str:
        if not isinstance(value, str) or not _ID_RE.match(value):
            raise ValueError("must be lower-case letters, digits and _ (starting with a letter)")
        return value

    @validator("role", pre=True)
    def _role(cls, value: Any) -> str:
        if value not in ROLES:
            raise ValueError(f"must be one of {', '.join(ROLES)}")
        return value

    @validator("phone", pre=True)
    def _phone(cls, value: Any) -> str:
        # The value is never repeated in the message: it may be a real person's number.
        phone = normalise_phone(value) if isinstance(value, str) else None
        if phone is None:
            raise ValueError("is not a UK (07…) or international (+…) number written as "
                             "quoted text (value not shown)")
        return phone


class ShiftEntry(_Entry):
    # None: not given (a null given is refused by the validator, which pydantic runs only on
    # a value given).
    days: Any = None  # (weekdays, whether bank holidays are named) once validated
    dates: Any = None
    from_: Any = Field(..., alias="from")
    to: Any = Field(...)
    staff: Any = Field(...)

    @validator("days", pre=True)
    def _days(cls, value: Any) -> tuple[frozenset[int], bool]:
        """Weekdays, and whether bank holidays are named (``bank_holidays``)."""
        if isinstance(value, str) and value in DAY_GROUPS:
            return frozenset(DAY_GROUPS[value]), False
        if value == BANK_HOLIDAYS:
            return frozenset(), True
        if not isinstance(value, list) or not value:
            raise ValueError("must be daily, weekdays, weekends, bank_holidays or a list of "
                             + ", ".join(DAY_NAMES))
        out, holidays, bad = set(), False, []
        for day in value:
            if day == BANK_HOLIDAYS:
                holidays = True
            # YAML 1.1 would read an unquoted no/yes/on/off as booleans; day names are safe.
            elif not isinstance(day, str) or day.lower()[:3] not in DAY_NAMES:
                bad.append(f": {day!r} is not a day ({', '.join(DAY_NAMES)})")
            else:
                out.add(DAY_NAMES.index(day.lower()[:3]))
        if bad:
            raise ValueError("\n".join(bad))
        return frozenset(out), holidays

    @validator("dates", pre=True)
    def _dates(cls, value: Any) -> frozenset[dt.date]:
        if not isinstance(value, list) or not value:
            raise ValueError("must be a list of dates (2026-12-24)")
        out, bad = set(), []
        for item in value:
            try:
                if isinstance(item, dt.datetime) or not isinstance(item, (dt.date, str)):
                    raise ValueError
                out.add(item if isinstance(item, dt.date) else dt.date.fromisoformat(item))
            except ValueError:
                bad.append(f": {item!r} is not a date (2026-12-24)")
        if bad:
            raise ValueError("\n".join(bad))
        return frozenset(out)

    @validator("from_", pre=True)
    def _from(cls, value: Any) -> dt.time:
        return _time(value)

    @validator("to", pre=True)
    def _to(cls, value: Any) -> dt.time | None:
        return _time(value, allow_24=True)

    @validator("staff", pre=True)
    def _staff(cls, value: Any) -> list:
        value = _a_list(value)
        if not value:
            raise ValueError("must name at least one staff member")
        if len(set(map(str, value))) != len(value):
            raise ValueError("names someone twice")
        return value

    @root_validator(skip_on_failure=False)
    def _days_or_dates(cls, values: dict) -> dict:
        # A field that failed its own check is left out of ``values``: it was given.
        given = [k for k in ("days", "dates") if values.get(k, k) is not None]
        if len(given) != 1:
            raise ValueError("give either field 'days' or field 'dates' (not both)")
        return values


class TierEntry(_Entry):
    id: Any = Field(...)
    name: Any = Field(...)
    shifts: Any = Field(...)  # each checked as a ShiftEntry, with the staff list to hand

    _id = validator("id", pre=True, allow_reuse=True)(StaffEntry._id.__func__)
    _name = validator("name", pre=True, allow_reuse=True)(_text)
    _shifts = validator("shifts", pre=True, allow_reuse=True)(_a_list)


class HouseEntry(_Entry):
    id: Any = Field(...)
    name: Any = Field(...)
    area: Any = Field(...)
    volunteers: Any = Field(...)
    shifts: Any = Field(...)

    _text = validator("name", "area", pre=True, allow_reuse=True)(_text)
    _lists = validator("volunteers", "shifts", pre=True, allow_reuse=True)(_a_list)

    @validator("id", pre=True)
    def _id(cls, value: Any) -> str:
        # A house's id is its key in the service directory, which may have hyphens.
        if not isinstance(value, str) or not _HOUSE_ID_RE.match(value):
            raise ValueError("must be lower-case letters, digits and _ or - (starting with a letter)")
        return value


def _ladder(value: Any) -> list:
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of tier ids, first alerted first")
    return value


class Ladders(_Entry):
    support: Any = Field(...)
    urgent: Any = Field(...)
    imminent: Any = Field(...)

    _steps = validator(*LEVELS, pre=True, allow_reuse=True)(_ladder)


class Document(_Entry):
    """The top level; the lists' entries are checked one by one (see above)."""

    timezone: Any = Field(...)
    staff: Any = Field(...)
    tiers: Any = Field(...)
    ladders: Any = Field(...)
    sanctuaries: Any = Field(default_factory=list)

    _lists = validator("staff", "tiers", "sanctuaries", pre=True, allow_reuse=True)(_a_list)

    @validator("timezone", pre=True)
    def _timezone(cls, value: Any) -> ZoneInfo:
        try:
            return ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f": {value!r} is not a known time zone") from None

    @validator("ladders", pre=True)
    def _ladders(cls, value: Any) -> dict:
        if not isinstance(value, dict):
            raise ValueError("must be a mapping of field: value")
        return value


assert tuple(Ladders.__fields__) == LEVELS, "a ladder for every escalation level"


class _Checker:
    """Collects every problem, each naming the source, the entry and the field."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def entry(self, model: type[_Entry], raw: Any, where: str, fields: bool = True,
              partial: Any = None) -> Optional[dict[str, Any]]:
        """``raw`` checked as ``model``: its fields' values by name, or None (its problems
        kept) when it is not valid; with ``partial``, the fields that are valid even so.

        With ``fields=False`` (the ladders) a field's problem is placed at ``where.field``.
        """
        if not isinstance(raw, dict):
            self.problem(where, "must be a mapping of field: value")
            return None
        values, _set, error = validate_model(model, raw)
        if error is None:
            return values
        allowed = ", ".join(sorted(f.alias for f in model.__fields__.values()))
        for err in error.errors():
            key, kind = err["loc"][0], err["type"]
            if key == "__root__":
                self.problem(where, err["msg"])
            elif kind == "value_error.missing":
                self.problem(where, f"field '{key}' is missing")
            elif kind == "value_error.extra":
                self.problem(where, f"unknown field '{key}' (allowed: {allowed})")
            elif not fields:
                self.problem(f"{where}.{key}", err["msg"])
            else:
                for message in err["msg"].split("\n"):
                    sep = "" if message.startswith(":") else " "
                    self.problem(where, f"field '{key}'{sep}{message}")
        return None if partial is None else values

    @staticmethod
    def named(where: str, raw: Any, pattern: re.Pattern) -> str:
        ident = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(ident, str) and pattern.match(ident):
            return f"{where} (id {ident!r})"
        return where

    def shifts(self, raw_shifts: list, where: str, staff: Mapping[str, StaffMember],
               members: set[str] | None) -> tuple[Shift, ...]:
        out = []
        for i, raw in enumerate(raw_shifts):
            here = f"{where}.shifts[{i}]"
            shift = self.entry(ShiftEntry, raw, here)
            # Staff named are checked against the staff list even when the shift has another
            # problem: every problem in one pass.
            who = raw.get("staff") if isinstance(raw, dict) else None
            for name in who if isinstance(who, list) else []:
                if name not in staff:
                    self.problem(here, f"field 'staff': {name!r} is not in the staff list")
                elif members is not None and name not in members:
                    self.problem(here, f"field 'staff': {name!r} is not one of this house's volunteers")
            if shift is None:
                continue
            days, holidays = shift["days"] if shift["days"] is not None else (frozenset(), False)
            dates = shift["dates"] if shift["dates"] is not None else frozenset()
            out.append(Shift(days, shift["from_"], shift["to"],
                             tuple(dict.fromkeys(w for w in shift["staff"] if w in staff)),
                             dates, holidays))
        return tuple(out)


def parse(data: Any, path: str = "<rota>") -> Rota:
    """Validate already-loaded YAML data; raise ``RotaError`` listing every problem.

    ``path`` names the source in the error: a file, or the database's rota version.
    """
    c = _Checker()
    if not isinstance(data, dict):
        raise RotaError(path, ["top level: must be a mapping of field: value"])
    # The top level's valid fields are used even when another is not.
    top = c.entry(Document, data, "top level", partial=True)
    tz = top.get("timezone") or ZoneInfo("Europe/London")

    staff: dict[str, StaffMember] = {}
    for i, raw in enumerate(top.get("staff") or []):
        where = c.named(f"staff[{i}]", raw, _ID_RE)
        entry = c.entry(StaffEntry, raw, where)
        ident = raw.get("id") if isinstance(raw, dict) else None
        if ident in staff:
            c.problem(where, "field 'id' repeats an earlier staff member's id")
        elif entry is not None:
            staff[entry["id"]] = StaffMember(entry["id"], entry["name"], entry["role"], entry["phone"])

    tiers: dict[str, Tier] = {}
    for i, raw in enumerate(top.get("tiers") or []):
        where = c.named(f"tiers[{i}]", raw, _ID_RE)
        entry = c.entry(TierEntry, raw, where)
        raw_shifts = raw.get("shifts") if isinstance(raw, dict) else None
        shifts = c.shifts(raw_shifts if isinstance(raw_shifts, list) else [], where, staff, None)
        ident = raw.get("id") if isinstance(raw, dict) else None
        if ident in tiers:
            c.problem(where, "field 'id' repeats an earlier tier's id")
        elif entry is not None:
            tiers[entry["id"]] = Tier(entry["id"], entry["name"], shifts)
    if "tiers" in data and top.get("tiers") == [] and not c.problems:
        c.problem("top level", "field 'tiers' must list at least one tier")

    ladders: dict[str, tuple[str, ...]] = {}
    raw_ladders = top.get("ladders")
    if isinstance(raw_ladders, dict):
        c.entry(Ladders, raw_ladders, "ladders", fields=False)
        for level in LEVELS:
            steps = raw_ladders.get(level)
            if not isinstance(steps, list) or not steps:
                continue  # reported by the Ladders model
            where = f"ladders.{level}"
            for step in steps:
                if step not in tiers:
                    c.problem(where, f"{step!r} is not a tier id (tiers: {', '.join(tiers) or 'none'})")
            if len(set(map(str, steps))) != len(steps):
                c.problem(where, "names a tier twice")
            ladders[level] = tuple(s for s in steps if s in tiers)

    sanctuaries: dict[str, Sanctuary] = {}
    for i, raw in enumerate(top.get("sanctuaries") or []):
        where = c.named(f"sanctuaries[{i}]", raw, _HOUSE_ID_RE)
        entry = c.entry(HouseEntry, raw, where)
        volunteers = raw.get("volunteers") if isinstance(raw, dict) else None
        volunteers = volunteers if isinstance(volunteers, list) else []
        for v in volunteers:
            if v not in staff:
                c.problem(where, f"field 'volunteers': {v!r} is not in the staff list")
            elif staff[v].role != "sanctuary_volunteer":
                c.problem(where, f"field 'volunteers': {v!r} does not have role sanctuary_volunteer")
        raw_shifts = raw.get("shifts") if isinstance(raw, dict) else None
        shifts = c.shifts(raw_shifts if isinstance(raw_shifts, list) else [], where, staff,
                          {str(v) for v in volunteers})
        ident = raw.get("id") if isinstance(raw, dict) else None
        if ident in sanctuaries or ident in tiers:
            c.problem(where, "field 'id' repeats a tier's or another house's id")
        elif entry is not None:
            sanctuaries[entry["id"]] = Sanctuary(entry["id"], entry["name"], entry["area"],
                                                 tuple(entry["volunteers"]), shifts)

    if c.problems:
        raise RotaError(path, c.problems)
    return Rota(tz, staff, tiers, ladders, sanctuaries)


def read_yaml(text: str, source: str) -> Any:
    """The rota's YAML text as data; ``RotaError`` naming ``source`` and the line if it is not
    YAML (or repeats a key)."""
    try:
        # _UniqueKeyLoader is a SafeLoader: no arbitrary Python objects from the file.
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        problem = getattr(exc, "problem", None) or str(exc)
        raise RotaError(source, [f"{where}: not valid YAML ({problem})"]) from None


def loads(text: str, source: str = "<rota>") -> tuple[Rota, dict]:
    """Validate the rota's YAML ``text``: the rota, and the document as JSON-ready data (what
    the database keeps beside the text). ``RotaError`` names ``source`` and every problem."""
    data = read_yaml(text, source)
    r = parse(data, source)
    # Validated data is plain: dates stay text (the loader reads no timestamps), times are
    # quoted text, so json.dumps needs no help; round-trip to prove it and to copy.
    return r, json.loads(json.dumps(data))


def load(path: str | Path = DEFAULT_PATH) -> Rota:
    """Read and validate a rota file; ``RotaError`` names every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RotaError(str(path), [f"cannot read the file ({exc.strerror})"]) from None
    return loads(text, str(path))[0]
