"""Editing the rota's shifts from the console (``/duty/rota``), and what the page shows.

The rota is in the database (``bot/escalation/rota_store.py``): each edit writes a new
version of the whole rota, so a read-only install can be edited and every duty service sees
the edit at its next read. An edit is made so that it can never leave a broken rota behind:

- **Same validation.** The edited text is validated by ``bot.escalation.rota`` (the rules
  the dispatcher reads by); any problem and nothing is written, and staff see every problem.
- **One step.** The new version and its trail entry are written in one database
  transaction: the dispatcher sees the old rota or the new one, never a mixture, and there
  is no change without an entry nor an entry without a change.
- **No lost edits.** Every form carries the version (SHA-256 of the rota's text) it was made
  from; an edit to a rota that changed since is refused. Two editors who both start from the
  same version cannot both write the next: the version number is unique.
- **Comments kept.** The stored text is edited with ruamel.yaml's round-trip loader, so the
  comments that explain the rota to the people who read it stay where they are (and come
  back out with ``python -m bot.escalation rota export``).
- **Audited.** Every change appends to ``rota_changes``, hash-chained like the escalation
  trail: who, when, which team, the shift before and after (days, times, staff ids), and the
  text's hash before and after. Never a phone number: shifts name staff by id. The version
  row itself also says who and when.

Phone numbers are in the rota; the page shows them masked (``mask_phone``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.escalation import rota as rota_module
from bot.escalation import rota_store
from bot.escalation.engine import LEVELS
from bot.escalation.rota_store import (  # noqa: F401  the trail, re-exported for its callers
    GENESIS,
    entry_hash,
    verify_changes,
)
from bot.store.models import utcnow

DAY_NAMES = rota_module.DAY_NAMES
MAX_SHIFTS_PER_TEAM = 50
RECENT_CHANGES = 20
_UTC = dt.timezone.utc

# One edit at a time in this process (the unique version number covers other processes).
_lock = threading.Lock()


class EditRefused(Exception):
    """An edit that was not made; ``problems`` are shown to the member of staff."""

    def __init__(self, message: str, problems: Sequence[str] = (), status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)
        self.status = status


@dataclass(frozen=True)
class ShiftInput:
    """A shift as a console form sends it (not yet validated)."""

    days: tuple[str, ...]
    start: str
    end: str
    staff: tuple[str, ...]


@dataclass(frozen=True)
class Edit:
    action: str  # "add", "change", "remove"
    team: str  # a tier id or a sanctuary house id
    index: Optional[int] = None  # the shift's position in the team's list (change, remove)
    shift: Optional[ShiftInput] = None  # add, change


@dataclass(frozen=True)
class Done:
    """A change made: what the page says, and the audit entry's id."""

    summary: str
    change_id: int
    version: str


def version_of(text: str) -> str:
    return rota_store.sha256_of(text)


def mask_phone(e164: str) -> str:
    """``+447700900101`` → ``+44 •••••••101``: enough to tell numbers apart, not to ring one."""
    prefix = "+44" if e164.startswith("+44") else "+"
    rest = e164[len(prefix):]
    return f"{prefix} {'•' * max(len(rest) - 3, 0)}{rest[-3:]}"


def days_label(days: frozenset[int]) -> str:
    for name, group in rota_module.DAY_GROUPS.items():
        if days == frozenset(group):
            return name
    return ", ".join(DAY_NAMES[d] for d in sorted(days))


def _time_label(t: Optional[dt.time]) -> str:
    return "24:00" if t is None else t.strftime("%H:%M")


def describe(shift: dict[str, Any]) -> str:
    """One line for the page and the audit trail: ``mon, tue 18:00-02:00: aisha, ben``."""
    days = shift.get("days") if "days" in shift else shift.get("dates")
    days_text = days if isinstance(days, str) else ", ".join(map(str, days or []))
    staff = ", ".join(map(str, shift.get("staff") or []))
    return f"{days_text} {shift.get('from')}-{shift.get('to')}: {staff}"


# --- what the page shows --------------------------------------------------------------------


@dataclass
class ShiftRow:
    index: int
    days: frozenset[int]
    days_label: str
    start: str
    end: str
    staff: list[tuple[str, str]]  # (id, name)


@dataclass
class TeamView:
    id: str
    name: str
    kind: str  # "tier" or "house"
    on_call: list[str]  # names
    shifts: list[ShiftRow]
    eligible: list[tuple[str, str]]  # staff who may be put on this team's shifts: (id, name)
    area: str = ""


@dataclass
class RotaView:
    path: str  # ROTA_FILE, imported when the database has no rota yet
    version: str = ""
    number: int = 0  # the rota's version number in the database
    problems: list[str] = field(default_factory=list)  # there is no valid rota to show
    now_local: str = ""
    teams: list[TeamView] = field(default_factory=list)
    ladders: list[tuple[str, list[str], list[str]]] = field(default_factory=list)  # level, tiers, on call now
    gaps: list[tuple[str, list[str]]] = field(default_factory=list)  # level, ranges nobody covers
    staff: list[dict[str, str]] = field(default_factory=list)


def read_view(engine: Engine, path: str, now: Optional[dt.datetime] = None) -> RotaView:
    """Everything the rota page shows, phone numbers masked. ``path`` is imported first if
    the database has no rota (its problems are shown when it is not valid)."""
    now = now or utcnow()
    view = RotaView(path=path)
    try:
        found = rota_store.current(engine, path)
    except rota_module.RotaError as exc:
        view.problems = exc.problems
        return view
    view.version, view.number, r = found.sha256, found.version, found.rota
    view.now_local = now.astimezone(r.timezone).strftime("%a %d %b %Y, %H:%M")

    def names(ids) -> list[tuple[str, str]]:
        return [(i, r.staff[i].name) for i in ids if i in r.staff]

    not_volunteers = [(s.id, s.name) for s in r.staff.values() if s.role != "sanctuary_volunteer"]
    for tier in r.tiers.values():
        view.teams.append(TeamView(
            tier.id, tier.name, "tier", [p.name for p in r.on_call(tier, now)],
            [_row(i, s, names(s.staff)) for i, s in enumerate(tier.shifts)], not_volunteers,
        ))
    for house in r.sanctuaries.values():
        view.teams.append(TeamView(
            house.id, house.name, "house", [p.name for p in r.on_call(house, now)],
            [_row(i, s, names(s.staff)) for i, s in enumerate(house.shifts)],
            names(house.volunteers), area=house.area,
        ))
    for level in reversed(LEVELS):
        if level in r.ladders:
            tiers = r.ladder(level)
            reached = [p.name for t in tiers for p in r.on_call(t, now)]
            view.ladders.append((level, [t.name for t in tiers], list(dict.fromkeys(reached))))
            view.gaps.append((level, coverage_gaps(r, level, now)))
    view.staff = [
        {"id": s.id, "name": s.name, "role": s.role, "phone": mask_phone(s.phone)}
        for s in r.staff.values()
    ]
    return view


def _row(index: int, shift: rota_module.Shift, staff: list[tuple[str, str]]) -> ShiftRow:
    return ShiftRow(index, shift.days, shift.days_label(), _time_label(shift.start),
                    _time_label(shift.end), staff)


def coverage_gaps(r: rota_module.Rota, level: str, now: dt.datetime, limit: int = 8) -> list[str]:
    """When, in the week from this Monday, nobody on ``level``'s ladder is on call.

    Checked every 30 minutes (every shift in the rota starts and ends on a quarter or half
    hour in practice); ranges as local "Tue 02:00-08:00". Shown on the rota page so that an
    edit which leaves a gap in the urgent or imminent ladder is seen at once.
    """
    tz = r.timezone
    monday = now.astimezone(tz).date() - dt.timedelta(days=now.astimezone(tz).weekday())
    start = dt.datetime.combine(monday, dt.time(0), tzinfo=tz).astimezone(_UTC)
    end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(0), tzinfo=tz).astimezone(_UTC)
    tiers = r.ladder(level)
    ranges: list[tuple[dt.datetime, dt.datetime]] = []
    at = start
    while at < end:
        if not any(r.on_call(t, at) for t in tiers):
            if ranges and ranges[-1][1] == at:
                ranges[-1] = (ranges[-1][0], at + dt.timedelta(minutes=30))
            else:
                ranges.append((at, at + dt.timedelta(minutes=30)))
        at += dt.timedelta(minutes=30)
    out = []
    for a, b in ranges[:limit]:
        a_local, b_local = a.astimezone(tz), b.astimezone(tz)
        same_day = b_local.date() == a_local.date()
        b_text = b_local.strftime("%H:%M" if same_day else "%a %H:%M")
        out.append(f"{a_local.strftime('%a %H:%M')}-{b_text}")
    if len(ranges) > limit:
        out.append(f"and {len(ranges) - limit} more")
    return out


# --- editing --------------------------------------------------------------------------------


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never fold a flow-style shift over two lines
    y.indent(mapping=2, sequence=4, offset=2)  # the rota file's own layout
    return y


def _scalar(value: str) -> Any:
    # The dispatcher reads the file with PyYAML (YAML 1.1), where an unquoted 18:00 is a
    # number and an unquoted "no" is False; ruamel writes YAML 1.2. Quote whatever PyYAML
    # would not read back as the same text.
    try:
        same = yaml.safe_load(value) == value
    except yaml.YAMLError:
        same = False
    return value if same else DoubleQuotedScalarString(value)


def _flow(items: Sequence[str]) -> CommentedSeq:
    seq = CommentedSeq([_scalar(i) for i in items])
    seq.fa.set_flow_style()
    return seq


def _days_value(days: Sequence[str]) -> Any:
    indexes = frozenset(DAY_NAMES.index(d) for d in days if d in DAY_NAMES)
    for name, group in rota_module.DAY_GROUPS.items():
        if indexes == frozenset(group):
            return name
    return _flow([DAY_NAMES[i] for i in sorted(indexes)])


def _shift_map(shift: ShiftInput) -> CommentedMap:
    problems = []
    unknown = [d for d in shift.days if d not in DAY_NAMES]
    if unknown or not shift.days:
        problems.append("days: choose at least one day from Monday to Sunday")
    if not shift.staff:
        problems.append("staff: choose at least one person for the shift")
    if problems:
        raise EditRefused("The shift was not saved.", problems)
    m = CommentedMap()
    m["days"] = _days_value(shift.days)
    m["from"] = DoubleQuotedScalarString(shift.start.strip())
    m["to"] = DoubleQuotedScalarString(shift.end.strip())
    m["staff"] = _flow(list(dict.fromkeys(shift.staff)))
    m.fa.set_flow_style()
    return m


def _plain(node: Any) -> Any:
    """A ruamel node as plain JSON-ready data (for the audit entry)."""
    return json.loads(json.dumps(node, default=str))


def _team(doc: Any, team: str) -> tuple[str, Any]:
    for section in ("tiers", "sanctuaries"):
        for entry in doc.get(section) or []:
            if isinstance(entry, dict) and entry.get("id") == team:
                return section, entry
    raise EditRefused("The shift was not saved.", [f"there is no tier or house {team!r} in the rota"])


def _apply(doc: Any, edit: Edit) -> tuple[Optional[dict], Optional[dict]]:
    """Change ``doc`` in place; the shift before and after, as plain data."""
    _section, entry = _team(doc, edit.team)
    shifts = entry.get("shifts")
    if shifts is None:
        shifts = entry["shifts"] = CommentedSeq()
    if edit.action == "add":
        if len(shifts) >= MAX_SHIFTS_PER_TEAM:
            raise EditRefused("The shift was not saved.",
                              [f"a team has at most {MAX_SHIFTS_PER_TEAM} shifts"])
        new = _shift_map(edit.shift)
        shifts.append(new)
        return None, _plain(new)
    if edit.index is None or not 0 <= edit.index < len(shifts):
        raise EditRefused("The rota was not changed.",
                          ["that shift is no longer in the rota; reload the page"], status=409)
    before = _plain(shifts[edit.index])
    if edit.action == "remove":
        if len(shifts) == 1:
            # ruamel would write the comments attached to the last item and then "[]" on a
            # line of its own, which is not YAML; a fresh empty list is written "shifts: []".
            empty = CommentedSeq()
            empty.fa.set_flow_style()
            entry["shifts"] = empty
        else:
            del shifts[edit.index]
        return before, None
    new = _shift_map(edit.shift)
    shifts[edit.index] = new
    return before, _plain(new)


def apply_edit(engine: Engine, path: str, edit: Edit, version: str, actor: str) -> Done:
    """Make ``edit`` to the current rota if it still is at ``version``; audited.

    The new version and the trail entry are written in one transaction. ``path`` (ROTA_FILE)
    is imported first only if the database has no rota yet.
    """
    with _lock:
        rota_store.current(engine, path)  # an empty database gets ROTA_FILE first
        try:
            with Session(engine, future=True) as session, session.begin():
                return _edit_in(session, edit, version, actor)
        except sa_exc.IntegrityError:
            # Another duty service wrote the same version number first.
            raise EditRefused(_STALE, status=409) from None


_STALE = ("The rota was not changed: it was changed by someone else since you opened this "
          "page. Here it is as it is now; make your change again.")


def _edit_in(session: Session, edit: Edit, version: str, actor: str) -> Done:
    old = rota_store.latest_row(session, lock=True)
    if old is None or version != old.sha256:
        raise EditRefused(_STALE, status=409)
    y = _yaml()
    doc = y.load(old.text)
    before, after = _apply(doc, edit)
    out = io.StringIO()
    y.dump(doc, out)
    new_text = out.getvalue()
    verb = {"add": "added a shift to", "change": "changed a shift of", "remove": "removed a shift from"}
    summary = f"{verb[edit.action]} {edit.team}"
    if before is not None:
        summary += f"; was {describe(before)}"
    if after is not None:
        summary += f"; now {describe(after)}"
    data = {"team": edit.team, "index": edit.index if edit.action != "add" else None,
            "before": before, "after": after}
    try:
        # The dispatcher's own validation, on the whole edited rota.
        new = rota_store.write_version(session, new_text, actor, summary,
                                       source="the edited rota", previous=old)
    except rota_module.RotaError as exc:
        raise EditRefused("The rota was not changed: the edit would make it invalid.",
                          exc.problems) from None
    change = rota_store.append_change(session, actor, edit.action, edit.team, summary, data,
                                      old.sha256, new.sha256)
    return Done(summary, change.id, new.sha256)


# --- the rota's own audit trail (bot/escalation/rota_store.py) ------------------------------


def recent_changes(engine: Engine, limit: int = RECENT_CHANGES) -> list[dict[str, Any]]:
    return rota_store.recent_changes(engine, limit)
