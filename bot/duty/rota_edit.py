"""Editing the rota's shifts from the console (``/duty/rota``), and what the page shows.

The rota stays a YAML file (``ROTA_FILE``), because that is what the dispatcher reads and
what a service edits by hand when the console is down. So an edit from the console is an
edit of that file, made so that it can never leave a broken or half-written rota behind:

- **Same validation.** The new text is written to a temporary file beside the rota and
  loaded with ``bot.escalation.rota.load``, the loader the dispatcher uses; any problem and
  the temporary file is removed, the rota untouched, and staff see every problem.
- **Atomic.** Only a valid file replaces the rota, with ``os.replace`` after ``fsync``, so
  the dispatcher (which re-reads the file when its modification time changes) sees the old
  rota or the new one, never a mixture.
- **No lost edits.** Every form carries the version (SHA-256) of the file it was made from;
  an edit to a file that changed since is refused. Edits in this process queue on a lock,
  and edits from other processes on an ``flock`` of the rota's folder.
- **Comments kept.** The file is edited with ruamel.yaml's round-trip loader, so the
  comments that explain the rota to the people who read it stay where they are.
- **Audited.** Every change appends to ``rota_changes``, hash-chained like the escalation
  trail: who, when, which team, the shift before and after (days, times, staff ids), and the
  file's hash before and after. Never a phone number: shifts name staff by id.

Phone numbers are in the file; the page shows them masked (``mask_phone``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.store.models.duty import RotaChange
from bot.escalation import rota as rota_module
from bot.escalation.engine import LEVELS
from bot.store.models import utcnow

DAY_NAMES = rota_module.DAY_NAMES
GENESIS = "0" * 64
MAX_SHIFTS_PER_TEAM = 50
RECENT_CHANGES = 20
_UTC = dt.timezone.utc

# One edit at a time in this process (flock below covers other processes).
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
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    path: str
    version: str = ""
    problems: list[str] = field(default_factory=list)  # the file as it is does not validate
    now_local: str = ""
    teams: list[TeamView] = field(default_factory=list)
    ladders: list[tuple[str, list[str], list[str]]] = field(default_factory=list)  # level, tiers, on call now
    gaps: list[tuple[str, list[str]]] = field(default_factory=list)  # level, ranges nobody covers
    staff: list[dict[str, str]] = field(default_factory=list)


def read_view(path: str, now: Optional[dt.datetime] = None) -> RotaView:
    """Everything the rota page shows, phone numbers masked."""
    now = now or utcnow()
    view = RotaView(path=path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        view.problems = [f"cannot read the rota file ({exc.strerror})"]
        return view
    view.version = version_of(text)
    try:
        r = rota_module.load(path)
    except rota_module.RotaError as exc:
        view.problems = exc.problems
        return view
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


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    # The lock is on the folder, not the file: os.replace puts a new file (a new inode) in
    # place, and a lock held on the old one would not stop the next editor.
    with _lock:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _write_atomically(path: Path, text: str, validate: bool) -> None:
    """Put ``text`` in place of ``path`` in one step; with ``validate``, only a valid rota."""
    mode = os.stat(path).st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        try:
            if validate:
                rota_module.load(tmp)  # the dispatcher's own loader and validation
        except rota_module.RotaError as exc:
            raise EditRefused("The rota was not changed: the edit would make it invalid.",
                              exc.problems) from None
        os.replace(tmp, path)
        tmp = ""
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
    finally:
        if tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def apply_edit(engine: Engine, path: str, edit: Edit, version: str, actor: str) -> Done:
    """Make ``edit`` to the rota at ``path`` if it still is at ``version``; audited.

    The audit entry is written in the same database transaction that is committed only after
    the file is in place; if that commit fails, the old file is put back. So the trail and the
    file agree: no change without an entry, no entry without a change.
    """
    rota_path = Path(path)
    with _exclusive(rota_path):
        old_text = rota_path.read_text(encoding="utf-8")
        old_version = version_of(old_text)
        if version != old_version:
            raise EditRefused(
                "The rota was not changed: it was changed by someone else since you opened this "
                "page. Here it is as it is now; make your change again.", status=409)
        y = _yaml()
        doc = y.load(old_text)
        before, after = _apply(doc, edit)
        out = io.StringIO()
        y.dump(doc, out)
        new_text = out.getvalue()
        new_version = version_of(new_text)
        verb = {"add": "added a shift to", "change": "changed a shift of", "remove": "removed a shift from"}
        summary = f"{verb[edit.action]} {edit.team}"
        if before is not None:
            summary += f"; was {describe(before)}"
        if after is not None:
            summary += f"; now {describe(after)}"
        data = {"team": edit.team, "index": edit.index if edit.action != "add" else None,
                "before": before, "after": after}
        with Session(engine, future=True) as session:
            tx = session.begin()
            try:
                change_id = _append(session, actor, edit.action, edit.team, summary, data,
                                    old_version, new_version).id
                _write_atomically(rota_path, new_text, validate=True)
            except BaseException:
                tx.rollback()
                raise
            try:
                tx.commit()
            except BaseException:
                # No entry, so no change: put the old rota back (as it was, valid or not).
                _write_atomically(rota_path, old_text, validate=False)
                raise
        return Done(summary, change_id, new_version)


# --- the rota's own audit trail -------------------------------------------------------------


def entry_hash(prev: str, seq: int, at: dt.datetime, actor: str, action: str, team: str,
               summary: str, data: dict, before: str, after: str) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=_UTC)
    payload = json.dumps(
        {"prev": prev, "seq": seq, "at": at.astimezone(_UTC).isoformat(timespec="microseconds"),
         "actor": actor, "action": action, "team": team, "summary": summary, "data": data,
         "before": before, "after": after},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _append(session: Session, actor: str, action: str, team: str, summary: str, data: dict,
            before: str, after: str) -> RotaChange:
    last = session.execute(
        select(RotaChange).order_by(RotaChange.seq.desc()).limit(1).with_for_update()
    ).scalar_one_or_none()
    seq = 1 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.hash
    at = utcnow()
    change = RotaChange(
        seq=seq, at=at, actor=actor, action=action, team=team, summary=summary, data=data,
        file_before=before, file_after=after, prev_hash=prev,
        hash=entry_hash(prev, seq, at, actor, action, team, summary, data, before, after),
    )
    session.add(change)
    session.flush()
    return change


def recent_changes(engine: Engine, limit: int = RECENT_CHANGES) -> list[dict[str, Any]]:
    with Session(engine, future=True) as session:
        rows = session.execute(
            select(RotaChange).order_by(RotaChange.seq.desc()).limit(limit)
        ).scalars().all()
        return [{"at": r.at.replace(tzinfo=r.at.tzinfo or _UTC).isoformat(timespec="seconds"),
                 "actor": r.actor, "summary": r.summary} for r in rows]


def verify_changes(engine: Engine) -> Optional[int]:
    """The seq of the first broken entry of the rota's trail, or None when it is intact."""
    prev, expected = GENESIS, 1
    with Session(engine, future=True) as session:
        for r in session.execute(select(RotaChange).order_by(RotaChange.seq)).scalars():
            computed = entry_hash(prev, r.seq, r.at, r.actor, r.action, r.team, r.summary,
                                  r.data, r.file_before, r.file_after)
            if r.seq != expected or r.prev_hash != prev or r.hash != computed:
                return r.seq
            prev, expected = r.hash, expected + 1
    return None
