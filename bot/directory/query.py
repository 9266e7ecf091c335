"""Which services fit a need, a place and a person, and which are open now.

``find_services`` returns open-now first (local before national), then the ones opening
soonest; a service that will not open within two weeks is left out, and so is one with no
places free tonight unless nothing else is open. ``answer`` turns that into SMS replies and
never raises: with the database down or the directory broken it still names national
services that are open now. ``respond`` gives the same replies and says when nothing suitable
was open (``unmet.py``), for the report's unmet need.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Iterable, List, Optional, Sequence, Union
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.directory import bank_holidays
from bot.directory.hours import HORIZON_DAYS, Schedule, open_state
from bot.directory.messages import item, pack, when_open
from bot.directory import beds as beds_module
from bot.store.models.directory import (
    DirectoryService,
    DirectoryServiceArea,
    DirectoryServiceNeed,
)
from bot.directory.needs import NEEDS, need_from_text
from bot.directory.places import Gazetteer, gazetteer, is_declined
from bot.directory.schema import AUDIENCES, NATIONAL, Contact, Directory, Place, Service
from bot.directory.unmet import Unmet
from bot.directory.unmet import of as unmet_of
from bot.settings import settings

log = logging.getLogger(__name__)


# Used only when neither the database nor the data files can be read.
BUILT_IN_NATIONAL = (
    Service(
        key="samaritans", name="Samaritans", kind="helpline", areas=(NATIONAL,),
        needs=("crisis", "talk", "a_and_e_alternative"), audiences=("anyone",),
        contact=Contact(phone="116 123", web="https://www.samaritans.org"),
        schedule=Schedule.open_always(),
    ),
    Service(
        key="shout", name="Shout", kind="text_line", areas=(NATIONAL,),
        needs=("crisis", "talk"), audiences=("anyone",),
        contact=Contact(text="85258", text_keyword="SHOUT", web="https://giveusashout.org"),
        schedule=Schedule.open_always(),
    ),
    Service(
        key="nhs-111-mental-health", name="NHS 111 mental health", kind="helpline",
        areas=(NATIONAL,), needs=("crisis", "a_and_e_alternative"), audiences=("anyone",),
        contact=Contact(phone="111", phone_option="option 2", web="https://111.nhs.uk"),
        schedule=Schedule.open_always(),
    ),
    Service(
        key="emergency-999", name="Emergency services", kind="emergency", areas=(NATIONAL,),
        needs=("emergency",), audiences=("anyone",), contact=Contact(phone="999"),
        schedule=Schedule.open_always(),
    ),
)


@dataclasses.dataclass(frozen=True)
class Match:
    service: Service
    open_now: bool
    open_until: Optional[dt.datetime]  # aware, line time zone; None if open round the clock
    opens_at: Optional[dt.datetime]  # aware, line time zone; None when open now
    local: bool
    beds_free: Optional[int] = None  # live capacity, when known and fresh

    @property
    def full(self) -> bool:
        return self.beds_free == 0

    @property
    def available_now(self) -> bool:
        return self.open_now and not self.full

    def when(self, now: dt.datetime) -> str:
        return when_open(now, self.open_now, self.open_until, self.opens_at)


class Results(List[Match]):
    """The matches, plus what the caller needs to word the answer honestly.

    ``place_status``: ``local`` (the place is known and has local services for this need),
    ``no_local`` (known, but nothing local for it), ``unknown`` (a place we do not know),
    ``declined`` (the person would rather not say), ``not_given``.
    """

    def __init__(self, matches: Iterable[Match], *, need, place, place_status, at):
        super().__init__(matches)
        self.need: Optional[str] = need
        self.place: Optional[Place] = place
        self.place_status: str = place_status
        self.at: dt.datetime = at

    @property
    def national_only(self) -> bool:
        return self.place_status != "local"

    @property
    def open_now(self) -> List[Match]:
        return [m for m in self if m.available_now]


def line_tz() -> ZoneInfo:
    return ZoneInfo(settings().tz_line)


def as_line_time(at: Optional[dt.datetime]) -> dt.datetime:
    """``at`` as an aware time in the line's zone; a naive time is read as line local time."""
    tz = line_tz()
    if at is None:
        return dt.datetime.now(tz)
    if at.tzinfo is None:
        return at.replace(tzinfo=tz)
    return at.astimezone(tz)


def _audience_ok(service: Service, audience: Optional[str]) -> bool:
    if "anyone" in service.audiences:
        return True
    if audience is None:
        return "adults" in service.audiences
    return audience in service.audiences


def _area_keys(place: Optional[Place], gaz: Gazetteer) -> List[str]:
    if place is None:
        return [NATIONAL]
    keys = [NATIONAL, place.key]
    if place.county:
        keys.append(place.county)
    if place.kind == "county":
        keys += [p.key for p in gaz.in_county(place.key)]
    return keys


def _candidates_db(session: Session, need: Optional[str], areas: Sequence[str]) -> List[Service]:
    from bot.directory.loader import service_from_row

    stmt = select(DirectoryService).order_by(DirectoryService.position)
    if need:
        stmt = stmt.where(DirectoryService.needs.any(DirectoryServiceNeed.need == need))
    stmt = stmt.where(DirectoryService.areas.any(DirectoryServiceArea.area.in_(list(areas))))
    rows = session.execute(stmt).scalars().all()
    return [s for s in (service_from_row(r) for r in rows) if s is not None]


def _candidates_mem(directory: Directory, need: Optional[str], areas: Sequence[str]) -> List[Service]:
    wanted = set(areas)
    return [
        s for s in directory.services
        if (need is None or need in s.needs) and wanted.intersection(s.areas)
    ]


def _capacity(session: Optional[Session], keys: Sequence[str], at: dt.datetime) -> dict:
    """Free beds tonight, from the one count referrals take beds from (``beds.py``); a count
    for another night is not used ("2 beds free" from last night means nothing)."""
    if session is None or not keys:
        return {}
    return beds_module.free(session, keys, beds_module.tonight(line_tz().key, at))


def match_services(
    services: Sequence[Service],
    place: Optional[Place],
    audience: Optional[str],
    at: dt.datetime,
    beds: Optional[dict] = None,
) -> List[Match]:
    """Open-state for each service, ranked: open now (local first), then opening soonest."""
    tz = line_tz()
    nation = settings().holiday_nation

    def holiday(day: dt.date) -> bool:
        return bank_holidays.is_bank_holiday(day, nation)

    matches = []
    for position, service in enumerate(services):
        if not _audience_ok(service, audience):
            continue
        state = open_state(service.schedule, at, tz, holiday)
        if not state.open_now and state.opens_at is None:
            continue  # shut for the next fortnight: a closed door, not a signpost
        local = place is not None and not service.national
        matches.append(
            (position, Match(service, state.open_now, state.open_until, state.opens_at, local,
                             (beds or {}).get(service.key)))
        )

    far = at + dt.timedelta(days=HORIZON_DAYS + 1)

    def rank(pair):
        position, m = pair
        group = 0 if m.available_now else 1 if not m.open_now else 2
        soon = m.opens_at or (at if m.open_now else far)
        return (group, not m.local, soon, position)

    return [m for _, m in sorted(matches, key=rank)]


def _resolve(place, session, gaz: Gazetteer):
    """(Place or None, status) for a Place, a text, or nothing."""
    if place is None or (isinstance(place, str) and not place.strip()):
        return None, "not_given"
    if isinstance(place, Place):
        return place, "local"
    declined = is_declined(place)
    found = gaz.resolve(place, fuzzy=not declined)
    if found is not None:
        return found, "local"
    return None, "declined" if declined else "unknown"


def find_services(
    need: Optional[str],
    place: Union[Place, str, None],
    audience: Optional[str] = None,
    at: Optional[dt.datetime] = None,
    session: Optional[Session] = None,
    directory: Optional[Directory] = None,
) -> Results:
    """Services for ``need`` near ``place`` for ``audience``, open now first.

    Reads the loaded directory (``session``, or a new one on ``DATABASE_URL``); if nothing has
    been imported yet, the data files. Pass ``directory`` to query an in-memory directory.
    An unknown or declined place gives national services only and says so in ``place_status``.
    """
    if need is not None and need not in NEEDS:
        raise ValueError(f"unknown need {need!r} (known: {', '.join(NEEDS)})")
    if audience is not None and audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r} (known: {', '.join(AUDIENCES)})")
    if need == "carers" and audience is None:
        audience = "carers"
    at = as_line_time(at)
    if directory is not None:
        return _find_in(need, place, audience, at, None, directory)
    if session is not None:
        return _find_in(need, place, audience, at, session, None)
    from bot.store.db import transaction

    with transaction() as s:
        return _find_in(need, place, audience, at, s, None)


def _find_in(need, place, audience, at, session, directory) -> Results:
    from bot.directory.loader import has_directory, load_directory

    if session is not None and not has_directory(session):
        log.warning("no directory imported yet: reading data/services (run python -m bot.directory import)")
        directory, session = load_directory(), None
    gaz = Gazetteer(directory.places) if directory is not None else gazetteer(session)
    resolved, status = _resolve(place, session, gaz)
    areas = _area_keys(resolved, gaz)
    if directory is not None:
        services = _candidates_mem(directory, need, areas)
    else:
        services = _candidates_db(session, need, areas)
    beds = _capacity(session, [s.key for s in services if s.capacity_total is not None], at)
    matches = match_services(services, resolved, audience, at, beds)
    if resolved is not None and not any(m.local for m in matches):
        status = "no_local"
    return Results(matches, need=need, place=resolved, place_status=status, at=at)


def set_capacity(service_key: str, available: int, session: Session,
                 actor: str = "directory-cli") -> None:
    """Record beds free tonight at a sanctuary house (the CLI; the console's sanctuary page
    writes the same count)."""
    if available < 0:
        raise ValueError("available places cannot be negative")
    night = beds_module.tonight(line_tz().key)
    beds_module.set_free(session, service_key, night, available, actor)


# ---- the SMS answer -------------------------------------------------------------------------

NEED_WORDS = {
    "emergency": "emergencies",
    "crisis": "crisis support",
    "a_and_e_alternative": "somewhere instead of A&E",
    "sanctuary": "a sanctuary or crisis café",
    "talk": "someone to talk to",
    "carers": "carers' support",
    "peer_support": "peer support",
    "advocacy": "advocacy",
    "housing": "housing help",
    "money": "money and benefits advice",
    "pharmacy": "a pharmacy",
}
MAX_MESSAGES = 4


def _items(matches: Iterable[Match], now: dt.datetime) -> List[str]:
    return [item(m.service, m.when(now)) for m in matches]


def compose(results: Results, always_open: Sequence[Match] = ()) -> List[str]:
    """The reply messages for ``results``; ``always_open`` guarantees one open service."""
    now = results.at
    local_open = [m for m in results if m.local and m.available_now]
    national_open = [m for m in results if not m.local and m.available_now]
    local_later = [m for m in results if m.local and not m.open_now][:3]
    messages: List[str] = []
    if results.need == "emergency":
        messages.append("If anyone's life is in danger, call 999 now.")
        national_open = [m for m in national_open if m.service.contact.phone != "999"]
    place = results.place
    need_words = NEED_WORDS.get(results.need or "", "support")

    if results.place_status in ("local", "no_local") and place is not None:
        if local_open:
            messages += pack(f"Open now {place.phrase}: ", _items(local_open, now))
        elif local_later:
            messages += pack(
                f"Nothing {place.phrase} for {need_words} is open right now. Opening next: ",
                _items(local_later, now),
            )
        else:
            messages.append(f"I don't have {need_words} {place.phrase} in my list.")
        if local_open and local_later:
            messages += pack("Opening later: ", _items(local_later, now))

    if not national_open and not local_open:
        national_open = list(always_open)
        across = "If you need someone now, these are open across the UK: "
    else:
        across = "Also open now across the UK: " if local_open else "Open now across the UK: "
    if results.place_status == "unknown":
        across = "I don't have local services for that place, but these are open right now across the UK: "
    elif results.place_status == "unavailable":
        across = "I can't look up local services just now, but these are open right now across the UK: "
    elif results.place_status == "declined":
        across = "That's fine, you don't have to say where you are. These are open right now across the UK: "
    if national_open:
        messages += pack(across, _items(national_open, now))
    return messages[:MAX_MESSAGES]


def _always_open_national(at: dt.datetime, session=None, directory=None) -> List[Match]:
    """National services open now for someone who needs to talk: the answer's safety net."""
    try:
        found = find_services("talk", None, at=at, session=session, directory=directory)
        matches = [m for m in found if m.available_now]
    except Exception as exc:  # noqa: BLE001  fall through to the built-in list
        log.warning("national services unavailable (%s)", type(exc).__name__)
        matches = []
    if matches:
        return matches
    return [
        Match(s, True, None, None, False) for s in BUILT_IN_NATIONAL
        if "talk" in s.needs or "crisis" in s.needs
    ]


@dataclasses.dataclass(frozen=True)
class Reply:
    """What ``respond`` says, and the unmet need behind it when nothing suitable was open
    (``bot/directory/unmet.py``; None also when the directory could not be read)."""

    messages: List[str]
    unmet: Optional[Unmet] = None


def respond(
    need: Optional[str],
    place_text: Optional[str],
    audience: Optional[str] = None,
    at: Optional[dt.datetime] = None,
) -> Reply:
    """``answer``'s messages, and whether the need went unmet. Never raises."""
    try:
        when = as_line_time(at)
    except Exception:  # noqa: BLE001  a bad TZ_LINE must not silence the answer
        when = dt.datetime.now(dt.timezone.utc)
    key = need if need in NEEDS else need_from_text(need) if need else None
    who = audience if audience in AUDIENCES else None
    try:
        results = find_services(key, place_text, who, when)
        messages = compose(results, _always_open_national(when))
        if messages:
            return Reply(messages, unmet_of(results))
        return Reply(_fallback(key, place_text, when))
    except Exception as exc:  # noqa: BLE001  never leave a person without a number
        log.warning("directory query failed (%s); answering with national services", type(exc).__name__)
        return Reply(_fallback(key, place_text, when))


def answer(
    need: Optional[str],
    place_text: Optional[str],
    audience: Optional[str] = None,
    at: Optional[dt.datetime] = None,
) -> List[str]:
    """SMS replies (≤ 306 GSM-7 characters each) naming services open now. Never raises."""
    return respond(need, place_text, audience, at).messages


def _fallback(need: Optional[str], place_text: Optional[str], when: dt.datetime) -> List[str]:
    """National services from the data files, else the built-in list; honest about why."""
    from bot.directory.loader import load_directory

    status = "declined" if place_text and is_declined(place_text) else (
        "unavailable" if place_text else "not_given"
    )
    try:
        directory = load_directory()
        found = find_services(need, None, at=when, directory=directory)
        results = Results(found, need=need, place=None, place_status=status, at=when)
        messages = compose(results, _always_open_national(when, directory=directory))
        if messages:
            return messages
    except Exception as exc:  # noqa: BLE001
        log.warning("directory files unusable (%s); answering with built-in list", type(exc).__name__)
    if need == "emergency":
        built_in = [s for s in BUILT_IN_NATIONAL if "emergency" in s.needs]
    else:
        built_in = [s for s in BUILT_IN_NATIONAL if s.kind != "emergency"]
    matches = [Match(s, True, None, None, False) for s in built_in]
    results = Results(matches, need=need, place=None, place_status=status, at=when)
    return compose(results, matches)
