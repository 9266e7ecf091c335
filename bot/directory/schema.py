"""The directory's data: places and services, validated from plain dicts (YAML or the DB).

``parse_place`` and ``parse_service`` turn one entry into a frozen dataclass or record a
problem naming the field; ``place_to_dict`` / ``service_to_dict`` are their inverses, used by
``export`` and to keep each service's full specification in the database. docs/directory.md
describes every field.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

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


def _str(raw: Mapping, name: str, c: _Collector, *, required: bool = False) -> Optional[str]:
    value = raw.get(name)
    if value is None:
        if required:
            c.add(name, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        c.add(name, f"must be text, got {value!r}")
        return None
    text = str(value).strip()
    if required and not text:
        c.add(name, "must not be empty")
        return None
    return text or None


def _list(raw: Mapping, name: str, c: _Collector, *, required: bool = False) -> List[str]:
    value = raw.get(name)
    if value is None:
        if required:
            c.add(name, "is required")
        return []
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, (str, int)) and not isinstance(v, bool) for v in value
    ):
        c.add(name, "must be a list of words")
        return []
    if required and not value:
        c.add(name, "must list at least one")
    return [str(v).strip() for v in value]


def _bool(raw: Mapping, name: str, c: _Collector, default: bool) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        c.add(name, f"must be true or false, got {value!r}")
        return default
    return value


def _unknown_fields(raw: Mapping, allowed: set, c: _Collector, prefix: str = "") -> None:
    for name in raw:
        if name not in allowed:
            c.add(f"{prefix}{name}", f"is not a known field (known: {', '.join(sorted(allowed))})")


def entry_label(raw: Any, index: int) -> str:
    key = raw.get("key") if isinstance(raw, Mapping) else None
    return f"entry {index + 1} ({key})" if key else f"entry {index + 1}"


def normalise_postcode(text: str) -> str:
    return re.sub(r"\s+", "", str(text)).upper()


def parse_place(raw: Any, c: _Collector) -> Optional[Place]:
    if not isinstance(raw, Mapping):
        c.add("", "must be a mapping with key, name ...")
        return None
    _unknown_fields(raw, PLACE_FIELDS, c)
    key = _str(raw, "key", c, required=True)
    if key and not _KEY.match(key):
        c.add("key", f"{key!r} must be lower case letters, digits, '-' or '_'")
    name = _str(raw, "name", c, required=True)
    kind = _str(raw, "kind", c) or "town"
    if kind not in ("town", "county"):
        c.add("kind", f"{kind!r} must be town or county")
    postcodes = []
    for i, pc in enumerate(_list(raw, "postcodes", c)):
        norm = normalise_postcode(pc)
        if not POSTCODE_DISTRICT.match(norm):
            c.add(f"postcodes[{i}]", f"{pc!r} is not a postcode district (like TA6 or BA16)")
        postcodes.append(norm)
    aliases = [a.lower() for a in _list(raw, "aliases", c)]
    ambiguous = _bool(raw, "ambiguous", c, False)
    if not (key and name):
        return None
    return Place(
        key=key,
        name=name,
        kind=kind,
        county=_str(raw, "county", c),
        postcodes=tuple(postcodes),
        aliases=tuple(aliases),
        ambiguous=ambiguous,
    )


def _spans(value: Any, field_name: str, c: _Collector) -> Optional[Tuple[tuple, ...]]:
    """A day's hours: "closed", one "HH:MM-HH:MM", or a list of them."""
    if value is None or value == "closed" or value == []:
        return ()
    items = value if isinstance(value, list) else [value]
    spans = []
    ok = True
    for i, item in enumerate(items):
        label = field_name if not isinstance(value, list) else f"{field_name}[{i}]"
        if isinstance(item, int) and not isinstance(item, bool):
            # YAML 1.1 reads an unquoted 17:00 as the number 1020.
            c.add(label, "times must be in quotes, e.g. \"17:00-02:00\"")
            ok = False
            continue
        try:
            spans.append(parse_span(item))
        except ValueError as exc:
            c.add(label, str(exc))
            ok = False
    return tuple(spans) if ok else None


def _date(value: Any, field_name: str, c: _Collector) -> Optional[dt.date]:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        c.add(field_name, f"{value!r} is not a date (write YYYY-MM-DD)")
        return None


def parse_schedule(raw: Mapping, c: _Collector, hours_field: str = "hours") -> Optional[Schedule]:
    hours = raw.get(hours_field)
    ok = True
    if hours is None:
        c.add(hours_field, "is required (\"24/7\", or days like mon: \"09:00-17:00\")")
        return None
    if hours == "24/7":
        schedule = Schedule.open_always()
    elif isinstance(hours, Mapping):
        pairs = []
        for day, value in hours.items():
            if day not in DAYS and day not in DAY_GROUPS:
                c.add(f"{hours_field}.{day}", "is not a day (mon..sun, weekdays, weekends, daily)")
                ok = False
                continue
            spans = _spans(value, f"{hours_field}.{day}", c)
            if spans is None:
                ok = False
            else:
                pairs.append((day, spans))
        schedule = Schedule(week=week_from_mapping(pairs))
    else:
        c.add(hours_field, f"must be \"24/7\" or a mapping of days to hours, got {hours!r}")
        return None

    bank = raw.get("bank_holidays", "usual")
    if isinstance(bank, str) and bank in BANK_HOLIDAY_WORDS:
        bank_rule: object = bank
    elif isinstance(bank, str) and bank.startswith("as_") and bank[3:] in ("saturday", "sunday"):
        bank_rule = bank[3:]
    else:
        spans = _spans(bank, "bank_holidays", c) if not isinstance(bank, bool) else None
        if isinstance(bank, bool):
            c.add("bank_holidays", "must be usual, closed, saturday, sunday or hours")
        if spans is None:
            ok = False
            bank_rule = "usual"
        else:
            bank_rule = spans

    rules = []
    exceptions = raw.get("exceptions") or []
    if not isinstance(exceptions, list):
        c.add("exceptions", "must be a list")
        exceptions = []
        ok = False
    for i, exc in enumerate(exceptions):
        label = f"exceptions[{i}]"
        if not isinstance(exc, Mapping):
            c.add(label, "must be a mapping with date and hours (or closed: true)")
            ok = False
            continue
        before = len(c.issues)
        _unknown_fields(exc, EXCEPTION_FIELDS, c, prefix=f"{label}.")
        if "date" in exc:
            first = last = _date(exc["date"], f"{label}.date", c)
        elif "from" in exc and "to" in exc:
            first = _date(exc["from"], f"{label}.from", c)
            last = _date(exc["to"], f"{label}.to", c)
            if first and last and last < first:
                c.add(f"{label}.to", "is before from")
        else:
            c.add(label, "needs a date, or from and to")
            first = last = None
        closed = exc.get("closed", False)
        if closed is True:
            spans: Optional[tuple] = ()
            if exc.get("hours") not in (None, "closed"):
                c.add(f"{label}.hours", "cannot be given with closed: true")
        elif "hours" in exc:
            spans = _spans(exc["hours"], f"{label}.hours", c)
        else:
            c.add(label, "needs hours, or closed: true")
            spans = None
        note = exc.get("note", "")
        if len(c.issues) > before or first is None or last is None or spans is None:
            ok = False
            continue
        rules.append(DatedRule(first, last, spans, str(note)))
    if not ok:
        return None
    return Schedule(
        week=schedule.week,
        always=schedule.always,
        bank_holidays=bank_rule,
        exceptions=tuple(sorted(rules, key=lambda r: r.first)),
    )


def parse_service(raw: Any, c: _Collector, source: str = "") -> Optional[Service]:
    if not isinstance(raw, Mapping):
        c.add("", "must be a mapping with key, name, kind ...")
        return None
    before = len(c.issues)
    _unknown_fields(raw, SERVICE_FIELDS, c)
    key = _str(raw, "key", c, required=True)
    if key and not _KEY.match(key):
        c.add("key", f"{key!r} must be lower case letters, digits, '-' or '_'")
    name = _str(raw, "name", c, required=True)
    kind = _str(raw, "kind", c, required=True)
    if kind and kind not in KINDS:
        c.add("kind", f"{kind!r} is not a kind of service ({', '.join(KINDS)})")
    areas = _list(raw, "areas", c, required=True)
    needs = _list(raw, "needs", c, required=True)
    for i, need in enumerate(needs):
        if need not in NEEDS:
            c.add(f"needs[{i}]", f"{need!r} is not a need ({', '.join(NEEDS)})")
    audiences = _list(raw, "for", c) or ["anyone"]
    for i, who in enumerate(audiences):
        if who not in AUDIENCES:
            c.add(f"for[{i}]", f"{who!r} is not an audience ({', '.join(AUDIENCES)})")
    contact_raw = raw.get("contact")
    contact = None
    if not isinstance(contact_raw, Mapping):
        c.add("contact", "is required: at least one of phone, text, web")
    else:
        _unknown_fields(contact_raw, CONTACT_FIELDS, c, prefix="contact.")
        cc = _Collector(c.issues, c.file, c.entry)
        values = {}
        for f in CONTACT_FIELDS:
            v = contact_raw.get(f)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (str, int))):
                cc.add(f"contact.{f}", f"must be text, got {v!r}")
            elif v is not None:
                values[f] = str(v).strip()
        if not (values.get("phone") or values.get("text") or values.get("web")):
            c.add("contact", "needs at least one of phone, text, web")
        for f in ("phone", "text"):
            if values.get(f) and not re.fullmatch(r"[0-9 ]{3,16}", values[f]):
                c.add(f"contact.{f}", f"{values[f]!r} must be digits and spaces only")
        contact = Contact(**values)
    example = _bool(raw, "example", c, False)
    self_referral = _bool(raw, "self_referral", c, True)
    schedule = parse_schedule(raw, c)
    capacity_total = None
    capacity = raw.get("capacity")
    if capacity is not None:
        beds = capacity.get("beds") if isinstance(capacity, Mapping) else None
        if not isinstance(beds, int) or isinstance(beds, bool) or beds < 0:
            c.add("capacity.beds", "must be a whole number of places, e.g. capacity: {beds: 4}")
        else:
            capacity_total = beds
    notes = _str(raw, "notes", c) or ""
    if len(c.issues) > before or not (key and name and kind and contact and schedule):
        return None
    return Service(
        key=key,
        name=name,
        kind=kind,
        areas=tuple(a.lower() if a.lower() == NATIONAL else a for a in areas),
        needs=tuple(needs),
        audiences=tuple(audiences),
        contact=contact,
        schedule=schedule,
        example=example,
        self_referral=self_referral,
        capacity_total=capacity_total,
        notes=notes,
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
