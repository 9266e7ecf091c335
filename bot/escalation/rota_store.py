"""The rota in the database: every version kept, the current one the highest.

The rota used to be a YAML file that the console rewrote in place. A read-only install (the
shipped systemd unit allows writes only under ``var/``) could not be edited, and two duty
services each kept their own copy. Now:

- **Versions.** ``rota_versions`` holds each version of the whole rota: its YAML text as
  staff wrote it (comments kept), the same rota validated as JSON, a number, who, when and a
  summary. Nothing updates a row; a change writes version n+1, and the unique version number
  means that of two writers who read version n only one writes n+1.
- **The trail.** A change to a rota in use (a console edit, an import over it) also appends
  to ``rota_changes``, the hash-chained trail (``append_change``, ``verify_changes``). The
  first version, imported into an empty database, is the trail's starting point: its row
  says who imported it and when.
- **Import and export.** ``python -m bot.escalation rota import FILE`` validates a YAML
  file and makes it the current rota; ``rota export`` prints the current text. ``make
  setup`` imports the example (``ROTA_FILE``) only when the database has no rota.
- **Readers.** ``RotaSource`` is what the dispatcher, the watcher, staff SMS and the console
  read. It keeps the parsed rota of one version and asks the database for the latest version
  number on every ``get`` (one indexed row), so an edit made by any duty service is seen by
  every other at its next read. A database with no rota yet is given ``ROTA_FILE`` (the
  development and test path: a fresh database works as the file did).

Staff phone numbers are in the text and the document, as they were in the file: a row is
never logged, and errors never quote a number.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.escalation import rota as rota_module
from bot.store.models.handoff import RotaChange, RotaVersion
from bot.store import db
from bot.store.models import utcnow

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
SEED_ACTOR = "system:import"  # the first version, imported into an empty database
_UTC = dt.timezone.utc


class RotaConflict(Exception):
    """The rota changed since the version the writer started from; nothing was written."""


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Current:
    """The rota in use: its version row's facts and the parsed rota."""

    version: int
    text: str
    sha256: str
    at: dt.datetime
    actor: str
    summary: str
    rota: rota_module.Rota


def source_name(version: int) -> str:
    """How errors name a stored version (where a file's errors name the file)."""
    return f"rota version {version} (database)"


# --- reading ------------------------------------------------------------------------------


def latest_number(session: Session) -> Optional[int]:
    return session.execute(select(func.max(RotaVersion.version))).scalar_one_or_none()


def latest_row(session: Session, lock: bool = False) -> Optional[RotaVersion]:
    query = select(RotaVersion).order_by(RotaVersion.version.desc()).limit(1)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def versions(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The latest versions, newest first: number, when, who, summary (no text, no numbers)."""
    with Session(engine, future=True) as session:
        rows = session.execute(
            select(RotaVersion.version, RotaVersion.at, RotaVersion.actor, RotaVersion.summary)
            .order_by(RotaVersion.version.desc()).limit(limit)
        ).all()
    return [{"version": v, "at": _aware(at).isoformat(timespec="seconds"), "actor": actor,
             "summary": summary} for v, at, actor, summary in rows]


def current(engine: Engine, seed_path: Optional[str | Path] = None) -> Current:
    """The rota in use; an empty database is first given ``seed_path`` (if any).

    ``RotaError`` when there is no rota (no version and no readable, valid seed file).
    """
    with Session(engine, future=True) as session:
        row = latest_row(session)
        if row is not None:
            return _current(row)
    if seed_path is None:
        raise rota_module.RotaError("database", ["no rota yet: import one with "
                                                 "`python -m bot.escalation rota import FILE`"])
    seed(engine, seed_path)
    return current(engine)


def _current(row: RotaVersion) -> Current:
    r = rota_module.parse(row.document, source_name(row.version))
    return Current(row.version, row.text, row.sha256, _aware(row.at), row.actor, row.summary, r)


def export_text(engine: Engine, version: Optional[int] = None) -> str:
    """The YAML text of ``version`` (default: the current one), as staff wrote it."""
    with Session(engine, future=True) as session:
        query = select(RotaVersion.text)
        if version is None:
            query = query.order_by(RotaVersion.version.desc()).limit(1)
        else:
            query = query.where(RotaVersion.version == version)
        text = session.execute(query).scalar_one_or_none()
    if text is None:
        raise LookupError("no such rota version" if version is not None else "no rota yet")
    return text


# --- writing ------------------------------------------------------------------------------


def write_version(session: Session, text: str, actor: str, summary: str, *,
                  source: str, previous: Optional[RotaVersion]) -> RotaVersion:
    """Validate ``text`` and add it as the version after ``previous`` (None: the first).

    ``RotaError`` (naming ``source``) when the text is not a valid rota. The unique version
    number refuses a second writer from the same ``previous`` when the session flushes
    (``IntegrityError``; callers turn it into ``RotaConflict``).
    """
    _rota, document = rota_module.loads(text, source)
    row = RotaVersion(
        version=1 if previous is None else previous.version + 1, document=document, text=text,
        sha256=sha256_of(text), at=utcnow(), actor=actor[:64], summary=summary,
    )
    session.add(row)
    session.flush()
    return row


def import_text(engine: Engine, text: str, source: str, actor: str,
                summary: Optional[str] = None, *, only_if_empty: bool = False) -> Optional[int]:
    """Make ``text`` the current rota; the new version number, or None when nothing changed
    (the text is the current one, or ``only_if_empty`` and the database has a rota).

    An import over a rota in use goes on the trail (action ``import``). ``RotaError`` when
    the text is not a valid rota, ``RotaConflict`` when another writer got there first.
    """
    name = Path(source).name if source else "text"
    try:
        with Session(engine, future=True) as session, session.begin():
            previous = latest_row(session, lock=True)
            if previous is not None and (only_if_empty or previous.sha256 == sha256_of(text)):
                return None
            what = summary or f"imported {name}"
            row = write_version(session, text, actor, what, source=source, previous=previous)
            if previous is not None:
                append_change(session, actor, "import", "", what,
                              {"version": row.version, "source": name},
                              previous.sha256, row.sha256)
            return row.version
    except sa_exc.IntegrityError:
        if only_if_empty:
            return None  # another process imported first: theirs is the rota
        raise RotaConflict("the rota changed while it was being imported") from None


def import_file(engine: Engine, path: str | Path, actor: str, summary: Optional[str] = None,
                *, only_if_empty: bool = False) -> Optional[int]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise rota_module.RotaError(str(path), [f"cannot read the file ({exc.strerror})"]) from None
    return import_text(engine, text, str(path), actor, summary, only_if_empty=only_if_empty)


def seed(engine: Engine, path: str | Path) -> Optional[int]:
    """Import ``path`` as the first version if the database has no rota; never overwrites."""
    with Session(engine, future=True) as session:
        if latest_number(session) is not None:
            return None
    number = import_file(engine, path, SEED_ACTOR, f"first version, imported from {Path(path).name}",
                         only_if_empty=True)
    if number is not None:
        logger.info("rota: no rota in the database; imported %s as version 1", Path(path).name)
    return number


# --- the trail ----------------------------------------------------------------------------


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=_UTC)


def entry_hash(prev: str, seq: int, at: dt.datetime, actor: str, action: str, team: str,
               summary: str, data: dict, before: str, after: str) -> str:
    payload = json.dumps(
        {"prev": prev, "seq": seq, "at": _aware(at).astimezone(_UTC).isoformat(timespec="microseconds"),
         "actor": actor, "action": action, "team": team, "summary": summary, "data": data,
         "before": before, "after": after},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append_change(session: Session, actor: str, action: str, team: str, summary: str,
                  data: dict, before: str, after: str) -> RotaChange:
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


def recent_changes(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    with Session(engine, future=True) as session:
        rows = session.execute(
            select(RotaChange).order_by(RotaChange.seq.desc()).limit(limit)
        ).scalars().all()
        return [{"at": _aware(r.at).isoformat(timespec="seconds"), "actor": r.actor,
                 "summary": r.summary} for r in rows]


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


# --- the readers' source ------------------------------------------------------------------


class RotaSource:
    """The current rota for the dispatcher, the watcher, staff SMS and the console.

    ``get`` asks the database for the latest version number each time and parses a version
    only when the number moved, so every process sees an edit at its next read and no copy
    goes stale. ``path`` (``ROTA_FILE``) is imported when the database has no rota yet.
    ``url``: the database (default ``DATABASE_URL``, looked up at each read, as tests change it).
    """

    def __init__(self, path: Optional[str | Path] = None, url: Optional[str] = None) -> None:
        self.path = str(path) if path is not None else None
        self.url = url
        self.version: Optional[int] = None
        self._rota: Optional[rota_module.Rota] = None
        self._lock = threading.Lock()

    def get(self) -> rota_module.Rota:
        with self._lock:
            engine = db.get_engine(self.url)
            try:
                with Session(engine, future=True) as session:
                    number = latest_number(session)
                    row = None
                    if number is not None and number != self.version:
                        row = session.execute(
                            select(RotaVersion).where(RotaVersion.version == number)
                        ).scalar_one()
                if number is None:
                    found = current(engine, self.path)
                    self._rota, self.version = found.rota, found.version
                elif row is not None:
                    self._take(row)
            except sa_exc.SQLAlchemyError as exc:
                if self._rota is None:
                    raise
                # Nothing else works without the database either; alerts already claimed
                # still need the last rota read, so keep it rather than fail them.
                logger.error("rota: database unavailable (%s); using version %s as last read",
                             type(exc).__name__, self.version)
            return self._rota

    def _take(self, row: RotaVersion) -> None:
        try:
            self._rota = rota_module.parse(row.document, source_name(row.version))
        except rota_module.RotaError as exc:
            if self._rota is None:
                raise
            # Every stored version was valid when written; one that is not now (the rules
            # changed) must not stop alerts: keep the last good rota, and say so loudly.
            logger.error("rota version %d is invalid (%d problems); keeping version %s",
                         row.version, len(exc.problems), self.version)
        self.version = row.version


_sources: dict[tuple[Optional[str], str], RotaSource] = {}
_sources_lock = threading.Lock()


def source_for(path: Optional[str | Path], url: Optional[str] = None) -> RotaSource:
    """One ``RotaSource`` per (seed file, database) in this process, for callers with no
    long-lived object of their own (staff SMS, console pages)."""
    from bot import settings as settings_module

    key = (str(path) if path is not None else None, url or settings_module.settings().database_url)
    with _sources_lock:
        found = _sources.get(key)
        if found is None:
            found = _sources[key] = RotaSource(path, key[1])
        return found
