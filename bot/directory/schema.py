"""The directory's data: places and services, validated from plain dicts (YAML or the DB).

``parse_place`` and ``parse_service`` validate one entry with its pydantic model
(``PlaceEntry``, ``ServiceEntry``) and turn it into a frozen dataclass, or record every
problem naming the field; ``place_to_dict`` / ``service_to_dict`` are their inverses, used by
``export`` and to keep each service's full specification in the database. docs/directory.md
describes every field.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from pydantic import BaseModel, Extra, Field, ValidationError, root_validator, validate_model, validator
from pydantic.error_wrappers import ErrorWrapper

from bot.directory.hours import (
    BANK_HOLIDAY_WORDS,
    DAY_GROUPS,
    DAYS,
    DatedRule,
    Schedule,
    format_span,
    parse_span,
    week_from_mapping,
)
from bot.directory.needs import NEEDS

KINDS = {
    "emergency": "emergency service",
    "helpline": "helpline",
    "text_line": "text line",
    "crisis_team": "crisis team",
    "sanctuary_house": "sanctuary house",
    "crisis_cafe": "crisis café",
    "carers_support": "carers' support",
    "advocacy": "advocacy",
    "housing": "housing",
    "money_benefits": "money and benefits",
    "pharmacy": "pharmacy",
    "a_and_e": "A&E",
    "peer_group": "peer group",
}
AUDIENCES = ("anyone", "adults", "young_people", "carers", "veterans", "lgbtq_plus")
NATIONAL = "national"
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
POSTCODE_DISTRICT = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")

SERVICE_FIELDS = {
    "key", "name", "kind", "example", "areas", "needs", "for", "contact", "self_referral",
    "hours", "bank_holidays", "exceptions", "capacity", "notes",
}
CONTACT_FIELDS = {"phone", "phone_option", "text", "text_keyword", "web", "address"}
PLACE_FIELDS = {"key", "name", "kind", "county", "postcodes", "aliases", "ambiguous"}
EXCEPTION_FIELDS = {"date", "from", "to", "hours", "closed", "note"}


@dataclass(frozen=True)
class Issue:
    """One validation problem: which file, which entry, which field, and what is wrong."""

    file: str
    entry: str
    field: str
    message: str

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.file, self.entry, self.field) if p)
        return f"{where}: {self.message}"


class DirectoryError(ValueError):
    """The directory did not validate; ``issues`` lists every problem found."""

    def __init__(self, issues: List[Issue]):
        self.issues = list(issues)
        lines = [str(i) for i in self.issues]
        super().__init__(f"{len(lines)} problem(s) in the service directory:\n" + "\n".join(lines))


@dataclass(frozen=True)
class Place:
    key: str
    name: str
    kind: str = "town"  # "town" or "county"
    county: Optional[str] = None
    postcodes: Tuple[str, ...] = ()
    aliases: Tuple[str, ...] = ()
    # A place whose name is an everyday word ("Street", "Wells") is matched only in capitals,
    # on its own, or after "in"/"near", never inside ordinary sentences.
    ambiguous: bool = False
    # The postcode district the person gave, when that is how the place was found.
    postcode: Optional[str] = None

    @property
    def phrase(self) -> str:
        """"near Bridgwater", "in Somerset"."""
        return f"{'in' if self.kind == 'county' else 'near'} {self.name}"


@dataclass(frozen=True)
class Contact:
    phone: Optional[str] = None
    phone_option: Optional[str] = None  # "option 2" for NHS 111's mental-health line
    text: Optional[str] = None  # a number to text
    text_keyword: Optional[str] = None  # "SHOUT"
    web: Optional[str] = None
    address: Optional[str] = None


@dataclass(frozen=True)
class Service:
    key: str
    name: str
    kind: str
    areas: Tuple[str, ...]
    needs: Tuple[str, ...]
    audiences: Tuple[str, ...]
    contact: Contact
    schedule: Schedule
    example: bool = False
    self_referral: bool = True
    capacity_total: Optional[int] = None
    notes: str = ""
    source: str = ""

    @property
    def national(self) -> bool:
        return NATIONAL in self.areas


@dataclass(frozen=True)
class Directory:
    places: Tuple[Place, ...] = ()
    services: Tuple[Service, ...] = ()
    sources: Tuple[str, ...] = ()
    warnings: Tuple[str, ...] = field(default=(), compare=False)

    def place(self, key: str) -> Optional[Place]:
        return next((p for p in self.places if p.key == key), None)

    def service(self, key: str) -> Optional[Service]:
        return next((s for s in self.services if s.key == key), None)


class _Collector:
    """Collects issues for one entry so a file reports every problem at once."""

    def __init__(self, issues: List[Issue], file: str, entry: str):
        self.issues, self.file, self.entry = issues, file, entry

    def add(self, field_name: str, message: str) -> None:
        self.issues.append(Issue(self.file, self.entry, field_name, message))


def entry_label(raw: Any, index: int) -> str:
    key = raw.get("key") if isinstance(raw, Mapping) else None
    return f"entry {index + 1} ({key})" if key else f"entry {index + 1}"


def normalise_postcode(text: str) -> str:
    return re.sub(r"\s+", "", str(text)).upper()


# -- the entries' schema (pydantic) ----------------------------------------------------------
# One pydantic model per kind of entry: it lists the fields (an unknown one is an error), says
# which are required, and runs every check, collecting every problem at once. ``_issues`` turns
# pydantic's errors into ``Issue``s that name the field as people write it (``needs[1]``,
# ``hours.fri[0]``, ``exceptions[0].date``), with the project's own messages.
# The opening-hours grammar ("17:00-02:00", overnight spans, 24:00) stays in bot/directory/
# hours.py: no library reads it, and its messages say what to write instead.


class _Text(str):
    """Text as people write it in YAML: a string or a number (``phone: 999``), never a
    true/false, stripped."""

    @classmethod
    def __get_validators__(cls):
        yield cls.validate

    @classmethod
    def validate(cls, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError(f"must be text, got {value!r}")
        return str(value).strip()


def _words(value: Any) -> List[str]:
    """A list of words; one word alone (``areas: national``) is a list of one."""
    if value is None:
        return []
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, (str, int)) and not isinstance(v, bool) for v in value
    ):
        raise ValueError("must be a list of words")
    return [str(v).strip() for v in value]


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _required_text(value: Optional[str]) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _key(value: str) -> str:
    value = _required_text(value)
    if not _KEY.match(value):
        raise ValueError(f"{value!r} must be lower case letters, digits, '-' or '_'")
    return value


def _nested(errors: List[Tuple[tuple, str]], model: type) -> ValidationError:
    """Problems below a field (``hours.fri[0]``): pydantic prefixes the field's own name."""
    return ValidationError([ErrorWrapper(ValueError(msg), loc=loc) for loc, msg in errors], model)


class _Entry(BaseModel):
    class Config:
        extra = Extra.forbid
        anystr_strip_whitespace = True


class PlaceEntry(_Entry):
    key: _Text
    name: _Text
    kind: Optional[_Text] = None
    county: Optional[_Text] = None
    postcodes: List[str] = []
    aliases: List[str] = []
    ambiguous: bool = False

    _keys = validator("key", allow_reuse=True)(_key)
    _name = validator("name", allow_reuse=True)(_required_text)
    _lists = validator("postcodes", "aliases", pre=True, allow_reuse=True)(_words)
    _ambiguous = validator("ambiguous", pre=True, allow_reuse=True)(_flag)

    @validator("kind")
    def _kind(cls, kind: Optional[str]) -> str:
        kind = kind or "town"
        if kind not in ("town", "county"):
            raise ValueError(f"{kind!r} must be town or county")
        return kind

    @validator("postcodes")
    def _postcodes(cls, postcodes: List[str]) -> List[str]:
        wrong = [((i,), f"{pc!r} is not a postcode district (like TA6 or BA16)")
                 for i, pc in enumerate(postcodes)
                 if not POSTCODE_DISTRICT.match(normalise_postcode(pc))]
        if wrong:
            raise _nested(wrong, cls)
        return [normalise_postcode(pc) for pc in postcodes]


def _spans(value: Any, loc: tuple, errors: List[Tuple[tuple, str]]) -> Optional[Tuple[tuple, ...]]:
    """A day's hours: "closed", one "HH:MM-HH:MM", or a list of them."""
    if value is None or value == "closed" or value == []:
        return ()
    items = value if isinstance(value, list) else [value]
    spans = []
    ok = True
    for i, item in enumerate(items):
        where = loc if not isinstance(value, list) else (*loc, i)
        if isinstance(item, int) and not isinstance(item, bool):
            # YAML 1.1 reads an unquoted 17:00 as the number 1020.
            errors.append((where, "times must be in quotes, e.g. \"17:00-02:00\""))
            ok = False
            continue
        try:
            spans.append(parse_span(item))
        except ValueError as exc:
            errors.append((where, str(exc)))
            ok = False
    return tuple(spans) if ok else None


def _one_spans(cls: type, value: Any) -> Tuple[tuple, ...]:
    errors: List[Tuple[tuple, str]] = []
    spans = _spans(value, (), errors)
    if errors:
        # A single span's problem belongs to the field itself, a list item's to its index.
        if all(loc == () for loc, _ in errors):
            raise ValueError(errors[0][1])
        raise _nested(errors, cls)
    return spans or ()


class ExceptionEntry(_Entry):
    """A dated change: ``date`` (or ``from`` and ``to``), and ``hours`` or ``closed: true``."""

    date: Optional[dt.date] = None
    first: Optional[dt.date] = Field(None, alias="from")
    to: Optional[dt.date] = None
    closed: Any = False  # before hours: its validator reads it
    hours: Any = None
    note: Any = ""

    @validator("date", "first", "to", pre=True)
    def _date(cls, value: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a date (write YYYY-MM-DD)") from None

    @validator("hours")
    def _hours(cls, value: Any, values: Dict[str, Any]) -> Any:
        if values.get("closed") is True:
            if value not in (None, "closed"):
                raise ValueError("cannot be given with closed: true")
            return ()
        return _one_spans(cls, value) if value is not None else None

    @root_validator(skip_on_failure=True)
    def _complete(cls, values: Dict[str, Any]) -> Dict[str, Any]:
        errors: List[Tuple[tuple, str]] = []
        if values.get("date") is None:
            if not (values.get("first") and values.get("to")):
                errors.append(((), "needs a date, or from and to"))
            elif values["to"] < values["first"]:
                errors.append((("to",), "is before from"))
        if values.get("closed") is not True and values.get("hours") is None:
            errors.append(((), "needs hours, or closed: true"))
        if errors:
            raise _nested(errors, cls)
        return values

    @classmethod
    def __get_validators__(cls):
        yield cls._mapping
        yield cls.validate

    @classmethod
    def _mapping(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError("must be a mapping with date and hours (or closed: true)")
        return value

    def rule(self) -> DatedRule:
        first = self.date or self.first
        last = self.date or self.to
        return DatedRule(first, last, tuple(self.hours or ()), str(self.note))


class ScheduleEntry(_Entry):
    """Opening hours: ``hours``, ``bank_holidays`` and ``exceptions`` (docs/directory.md)."""

    # "24/7", or (the week, as seven days of spans)
    hours: Any = Field(...)
    bank_holidays: Any = "usual"
    exceptions: List[ExceptionEntry] = []

    class Config:
        extra = Extra.ignore  # the fields of the entry it is part of

    @validator("hours", pre=True)
    def _hours(cls, hours: Any) -> Any:
        if hours is None:
            raise ValueError("is required (\"24/7\", or days like mon: \"09:00-17:00\")")
        if hours == "24/7":
            return Schedule.open_always().week, True
        if not isinstance(hours, Mapping):
            raise ValueError(f"must be \"24/7\" or a mapping of days to hours, got {hours!r}")
        pairs, errors = [], []
        for day, value in hours.items():
            if day not in DAYS and day not in DAY_GROUPS:
                errors.append(((day,), "is not a day (mon..sun, weekdays, weekends, daily)"))
                continue
            spans = _spans(value, (day,), errors)
            if spans is not None:
                pairs.append((day, spans))
        if errors:
            raise _nested(errors, cls)
        return week_from_mapping(pairs), False

    @validator("bank_holidays", pre=True)
    def _bank_holidays(cls, bank: Any) -> Any:
        if isinstance(bank, str) and bank in BANK_HOLIDAY_WORDS:
            return bank
        if isinstance(bank, str) and bank.startswith("as_") and bank[3:] in ("saturday", "sunday"):
            return bank[3:]
        if isinstance(bank, bool):
            raise ValueError("must be usual, closed, saturday, sunday or hours")
        return _one_spans(cls, bank)

    @validator("exceptions", pre=True)
    def _exceptions(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError("must be a list")
        return value

    def schedule(self) -> Schedule:
        week, always = self.hours
        return Schedule(
            week=week,
            always=always,
            bank_holidays=self.bank_holidays,
            exceptions=tuple(sorted((e.rule() for e in self.exceptions), key=lambda r: r.first)),
        )


class ContactEntry(_Entry):
    phone: Optional[_Text] = None
    phone_option: Optional[_Text] = None  # "option 2" for NHS 111's mental-health line
    text: Optional[_Text] = None  # a number to text
    text_keyword: Optional[_Text] = None  # "SHOUT"
    web: Optional[_Text] = None
    address: Optional[_Text] = None

    @root_validator(skip_on_failure=False)
    def _reachable(cls, values: Dict[str, Any]) -> Dict[str, Any]:
        errors: List[Tuple[tuple, str]] = []
        if not (values.get("phone") or values.get("text") or values.get("web")):
            errors.append(((), "needs at least one of phone, text, web"))
        for name in ("phone", "text"):
            # Kept by hand, not phonenumbers: these are what the answer shows, as the service
            # writes it, and many are short codes ("999", "116 123", "85258") that are not
            # E.164 numbers at all.
            value = values.get(name)
            if value and not re.fullmatch(r"[0-9 ]{3,16}", value):
                errors.append(((name,), f"{value!r} must be digits and spaces only"))
        if errors:
            raise _nested(errors, cls)
        return values


class ServiceEntry(ScheduleEntry):
    key: _Text
    name: _Text
    kind: _Text
    example: bool = False
    areas: List[str]
    needs: List[str]
    audiences: List[str] = Field([], alias="for")
    contact: ContactEntry
    self_referral: bool = True
    capacity: Any = None
    notes: Optional[_Text] = None

    class Config:
        extra = Extra.forbid

    _keys = validator("key", allow_reuse=True)(_key)
    _name = validator("name", "kind", allow_reuse=True)(_required_text)
    _flags = validator("example", "self_referral", pre=True, allow_reuse=True)(_flag)

    @validator("kind")
    def _kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"{kind!r} is not a kind of service ({', '.join(KINDS)})")
        return kind

    @validator("areas", "needs", pre=True)
    def _required_words(cls, value: Any) -> List[str]:
        words = _words(value)
        if value is None:
            raise ValueError("is required")
        if not words:
            raise ValueError("must list at least one")
        return words

    @validator("audiences", pre=True, always=True)
    def _audience_words(cls, value: Any) -> List[str]:
        return _words(value) or ["anyone"]

    @validator("needs")
    def _needs(cls, needs: List[str]) -> List[str]:
        wrong = [((i,), f"{n!r} is not a need ({', '.join(NEEDS)})")
                 for i, n in enumerate(needs) if n not in NEEDS]
        if wrong:
            raise _nested(wrong, cls)
        return needs

    @validator("audiences")
    def _audiences(cls, audiences: List[str]) -> List[str]:
        wrong = [((i,), f"{who!r} is not an audience ({', '.join(AUDIENCES)})")
                 for i, who in enumerate(audiences) if who not in AUDIENCES]
        if wrong:
            raise _nested(wrong, cls)
        return audiences

    @validator("contact", pre=True)
    def _contact(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError("is required: at least one of phone, text, web")
        return value

    @validator("capacity")
    def _capacity(cls, capacity: Any) -> Optional[int]:
        if capacity is None:
            return None
        beds = capacity.get("beds") if isinstance(capacity, Mapping) else None
        if not isinstance(beds, int) or isinstance(beds, bool) or beds < 0:
            raise _nested([(("beds",), "must be a whole number of places, e.g. capacity: {beds: 4}")], cls)
        return beds


# What a missing field is told, where "is required" alone would not help.
_MISSING = {
    "hours": "is required (\"24/7\", or days like mon: \"09:00-17:00\")",
    "contact": "is required: at least one of phone, text, web",
}
_KNOWN = {
    PlaceEntry: PLACE_FIELDS,
    ServiceEntry: SERVICE_FIELDS,
    ScheduleEntry: {"hours", "bank_holidays", "exceptions"},
}


def _path(loc: tuple) -> str:
    """("needs", 1) -> "needs[1]"; ("exceptions", 0, "date") -> "exceptions[0].date"."""
    out = ""
    for part in loc:
        if part == "__root__":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _known(model: type, loc: tuple) -> set:
    """The fields known where an unknown field ``loc`` was found."""
    parents = [p for p in loc[:-1] if isinstance(p, str)]
    if parents and parents[-1] == "contact":
        return CONTACT_FIELDS
    if parents and parents[-1] == "exceptions":
        return EXCEPTION_FIELDS
    return _KNOWN[model]


def _issues(exc: ValidationError, model: type, c: _Collector) -> None:
    for error in exc.errors():
        loc, kind = tuple(error["loc"]), error["type"]
        where = _path(loc)
        if kind == "type_error.none.not_allowed" and len(loc) > 1 and loc[-2] == "exceptions":
            message = "must be a mapping with date and hours (or closed: true)"
        elif kind in ("value_error.missing", "type_error.none.not_allowed"):
            message = _MISSING.get(where, "is required")
        elif kind == "value_error.extra":
            message = f"is not a known field (known: {', '.join(sorted(_known(model, loc)))})"
        else:
            message = error["msg"]
        c.add(where, message)


def _validate(model: type, raw: Any, c: _Collector) -> Optional[BaseModel]:
    try:
        return model.parse_obj(raw)
    except ValidationError as exc:
        _issues(exc, model, c)
        return None


def _valid_fields(model: type, raw: Mapping, c: _Collector) -> Dict[str, Any]:
    """The fields of ``raw`` that are valid, every problem recorded in ``c``."""
    values, _, error = validate_model(model, raw)
    if error is not None:
        _issues(error, model, c)
    return values


def parse_place(raw: Any, c: _Collector) -> Optional[Place]:
    if not isinstance(raw, Mapping):
        c.add("", "must be a mapping with key, name ...")
        return None
    # A place with a problem is still returned when it has a key and a name, so that the
    # services naming it are not also reported (one mistake, one message).
    entry = _valid_fields(PlaceEntry, raw, c)
    if not (entry.get("key") and entry.get("name")):
        return None
    return Place(
        key=entry["key"],
        name=entry["name"],
        kind=entry.get("kind") or "town",
        county=entry.get("county") or None,
        postcodes=tuple(entry.get("postcodes", ())),
        aliases=tuple(a.lower() for a in entry.get("aliases", ())),
        ambiguous=entry.get("ambiguous", False),
    )


def parse_schedule(raw: Mapping, c: _Collector) -> Optional[Schedule]:
    entry = _validate(ScheduleEntry, raw, c)
    return entry.schedule() if entry is not None else None


def parse_service(raw: Any, c: _Collector, source: str = "") -> Optional[Service]:
    if not isinstance(raw, Mapping):
        c.add("", "must be a mapping with key, name, kind ...")
        return None
    entry = _validate(ServiceEntry, raw, c)
    if entry is None:
        return None
    return Service(
        key=entry.key,
        name=entry.name,
        kind=entry.kind,
        areas=tuple(a.lower() if a.lower() == NATIONAL else a for a in entry.areas),
        needs=tuple(entry.needs),
        audiences=tuple(entry.audiences),
        contact=Contact(**entry.contact.dict(exclude_none=True)),
        schedule=entry.schedule(),
        example=entry.example,
        self_referral=entry.self_referral,
        capacity_total=entry.capacity,
        notes=entry.notes or "",
        source=source,
    )


def place_to_dict(place: Place) -> Dict[str, Any]:
    out: Dict[str, Any] = {"key": place.key, "name": place.name}
    if place.kind != "town":
        out["kind"] = place.kind
    if place.county:
        out["county"] = place.county
    if place.postcodes:
        out["postcodes"] = list(place.postcodes)
    if place.aliases:
        out["aliases"] = list(place.aliases)
    if place.ambiguous:
        out["ambiguous"] = True
    return out


def _spans_out(spans: Tuple[tuple, ...]) -> Any:
    if not spans:
        return "closed"
    items = [format_span(s) for s in spans]
    return items[0] if len(items) == 1 else items


def schedule_to_dict(schedule: Schedule) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if schedule.always:
        out["hours"] = "24/7"
    else:
        out["hours"] = {day: _spans_out(spans) for day, spans in zip(DAYS, schedule.week, strict=True)}
    if schedule.bank_holidays != "usual":
        bank = schedule.bank_holidays
        out["bank_holidays"] = bank if isinstance(bank, str) else _spans_out(bank)
    if schedule.exceptions:
        rules = []
        for rule in schedule.exceptions:
            item: Dict[str, Any] = (
                {"date": rule.first.isoformat()}
                if rule.first == rule.last
                else {"from": rule.first.isoformat(), "to": rule.last.isoformat()}
            )
            if rule.spans:
                item["hours"] = _spans_out(rule.spans)
            else:
                item["closed"] = True
            if rule.note:
                item["note"] = rule.note
            rules.append(item)
        out["exceptions"] = rules
    return out


def service_to_dict(service: Service) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "key": service.key,
        "name": service.name,
        "kind": service.kind,
    }
    if service.example:
        out["example"] = True
    out["areas"] = list(service.areas)
    out["needs"] = list(service.needs)
    out["for"] = list(service.audiences)
    out["contact"] = {
        k: v for k, v in vars(service.contact).items() if v is not None
    }
    out["self_referral"] = service.self_referral
    out.update(schedule_to_dict(service.schedule))
    if service.capacity_total is not None:
        out["capacity"] = {"beds": service.capacity_total}
    if service.notes:
        out["notes"] = service.notes
    return out
