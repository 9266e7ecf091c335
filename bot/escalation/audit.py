"""The append-only, hash-chained audit trail of an escalation.

Each entry's hash covers the previous entry's hash and the entry's own fields, so an entry
changed or removed after the fact breaks the chain from that point on. The hash is keyed
(HMAC-SHA256 with ``AUDIT_KEY``, chain version 2): whoever can write the database but does not
hold the key cannot rebuild a chain that verifies. Entries written before the key existed
(migration 0015) keep their plain SHA-256 hash (chain version 1) and are anchored by the
signed checkpoints instead (``checkpoints.py``; docs/audit.md). Cutting entries off the end
of a trail is caught by those checkpoints too.

Appends to one escalation are serialised: ``append`` locks the escalation's row before it
reads the last entry, so two transactions appending at once (a take-over in the console while
the dispatcher records a ladder step) write seq n+1 and n+2, one after the other, instead of
both reading n and the second failing on ``UNIQUE (escalation_id, seq)``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional, Union

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.settings import settings
from bot.store.models import CHAIN_HMAC, CHAIN_SHA256, Escalation, EscalationEvent, utcnow

GENESIS = "0" * 64
CHAIN_VERSIONS = (CHAIN_SHA256, CHAIN_HMAC)

Key = Union[str, bytes, None]


def key_bytes(key: Key = None) -> bytes:
    """The audit key as bytes: ``key``, or ``AUDIT_KEY``."""
    if key is None:
        key = settings().audit_key
    return key.encode("utf-8") if isinstance(key, str) else key


def key_id(key: Key = None) -> str:
    """A name for the key that does not give it away: checkpoints and exports carry it, so a
    verifier with the wrong key is told so rather than told that everything was changed."""
    return hmac.new(key_bytes(key), b"crisis-line audit key id", hashlib.sha256).hexdigest()[:16]


def sign(key: Key, payload: Dict[str, Any]) -> str:
    """HMAC-SHA256 with the audit key over ``payload`` as canonical JSON."""
    return hmac.new(key_bytes(key), canonical_json(payload), hashlib.sha256).hexdigest()


def canonical_json(payload: Dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")


def canonical_time(at: dt.datetime) -> str:
    # SQLite hands datetimes back without a zone; every time stored here is UTC.
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    return at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def entry_hash(
    prev_hash: str,
    escalation_id: int,
    seq: int,
    at: dt.datetime,
    kind: str,
    actor: str,
    reason: str,
    data: Dict[str, Any],
) -> str:
    """The unkeyed SHA-256 hash of chain version 1 (entries written before migration 0015)."""
    return hashlib.sha256(
        _payload(prev_hash, escalation_id, seq, at, kind, actor, reason, data)
    ).hexdigest()


def keyed_hash(
    key: Key,
    prev_hash: str,
    escalation_id: int,
    seq: int,
    at: dt.datetime,
    kind: str,
    actor: str,
    reason: str,
    data: Dict[str, Any],
) -> str:
    """The HMAC-SHA256 hash of chain version 2, with the audit key."""
    payload = _payload(prev_hash, escalation_id, seq, at, kind, actor, reason, data,
                       version=CHAIN_HMAC)
    return hmac.new(key_bytes(key), payload, hashlib.sha256).hexdigest()


def _payload(prev_hash: str, escalation_id: int, seq: int, at: dt.datetime, kind: str,
             actor: str, reason: str, data: Dict[str, Any],
             version: Optional[int] = None) -> bytes:
    fields: Dict[str, Any] = {
        "prev": prev_hash,
        "escalation": escalation_id,
        "seq": seq,
        "at": canonical_time(at),
        "kind": kind,
        "actor": actor,
        "reason": reason,
        "data": data,
    }
    if version is not None:  # version 1's payload stays exactly as it was written
        fields["v"] = version
    return canonical_json(fields)


def hash_of(entry: Any, prev_hash: str, key: Key = None) -> Optional[str]:
    """What ``entry``'s hash should be after ``prev_hash``, by its chain version (None for
    a version this code does not know). ``entry``: an ``EscalationEvent`` or anything with
    the same attributes (an export's line)."""
    fields = (prev_hash, entry.escalation_id, entry.seq, entry.at, entry.kind, entry.actor,
              entry.reason, entry.data)
    if entry.chain_version == CHAIN_HMAC:
        return keyed_hash(key_bytes(key), *fields)
    if entry.chain_version == CHAIN_SHA256:
        return entry_hash(*fields)
    return None


def _lock_trail(session: Session, escalation_id: int) -> None:
    """Hold the escalation's row lock until the caller's transaction ends.

    PostgreSQL: ``SELECT ... FOR UPDATE`` (the lock ``engine.load`` takes; taking it again in
    the same transaction costs nothing). SQLite ignores ``FOR UPDATE``, and the driver begins
    a transaction only at its first write, so a read before that sees the last committed
    entry, not the one another writer is about to commit. A write that changes nothing takes
    the database's one write lock (waiting up to the busy timeout) before the read; WAL
    readers are not held up.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Escalation)
            .where(Escalation.id == escalation_id)
            .values(updated_at=Escalation.updated_at)
            .execution_options(synchronize_session=False)
        )
    else:
        session.execute(
            select(Escalation.id).where(Escalation.id == escalation_id).with_for_update()
        )


def lock_escalation(session: Session, escalation_id: int) -> None:
    """Take the escalation's lock before reading its state, for a check-then-write that must
    see every committed transition, on SQLite too (where ``FOR UPDATE`` does nothing): the
    wait watcher's claim (``bot/escalation/wait.py``)."""
    _lock_trail(session, escalation_id)


def append(
    session: Session,
    escalation: Escalation,
    kind: str,
    actor: str,
    reason: str = "",
    data: Optional[Dict[str, Any]] = None,
    at: Optional[dt.datetime] = None,
) -> EscalationEvent:
    """Append one entry to ``escalation``'s trail inside the caller's transaction.

    The entry's hash is keyed with ``AUDIT_KEY`` (chain version 2)."""
    data = data or {}
    at = at or utcnow()
    _lock_trail(session, escalation.id)
    last = session.execute(
        select(EscalationEvent)
        .where(EscalationEvent.escalation_id == escalation.id)
        .order_by(EscalationEvent.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    seq = 1 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.hash
    event = EscalationEvent(
        escalation_id=escalation.id,
        seq=seq,
        at=at,
        kind=kind,
        actor=actor,
        reason=reason,
        data=data,
        prev_hash=prev,
        hash=keyed_hash(None, prev, escalation.id, seq, at, kind, actor, reason, data),
        chain_version=CHAIN_HMAC,
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class Break:
    escalation_id: int
    seq: int
    problem: str


CHANGED = "entry was changed after it was written"
UNKEYED_AFTER_KEYED = "an unkeyed entry after keyed ones: rewritten without the key"


def verify_events(events: Iterable[Any], key: Key = None) -> Optional[Break]:
    """The first broken entry of one escalation's trail (ordered by seq), or None.

    ``events``: ``EscalationEvent`` rows, or anything with their attributes. Keyed entries
    are checked with ``key`` (default ``AUDIT_KEY``). Once a trail has a keyed entry, every
    later one must be keyed: an unkeyed (version 1) hash there is someone rebuilding the trail
    without the key.
    """
    key = key_bytes(key)
    prev = GENESIS
    expected_seq = 1
    keyed = False
    for ev in events:
        if ev.seq < expected_seq:
            return Break(ev.escalation_id, ev.seq, "entries out of order or repeated")
        if ev.seq != expected_seq:
            return Break(ev.escalation_id, expected_seq, "entry missing")
        if ev.prev_hash != prev:
            return Break(ev.escalation_id, ev.seq, "does not follow the previous entry")
        if ev.chain_version not in CHAIN_VERSIONS:
            return Break(ev.escalation_id, ev.seq, "unknown chain version")
        if keyed and ev.chain_version != CHAIN_HMAC:
            return Break(ev.escalation_id, ev.seq, UNKEYED_AFTER_KEYED)
        keyed = ev.chain_version == CHAIN_HMAC
        if hash_of(ev, prev, key) != ev.hash:
            return Break(ev.escalation_id, ev.seq, CHANGED)
        prev = ev.hash
        expected_seq += 1
    return None


def verify_all(session: Session, key: Key = None) -> Optional[Break]:
    """Check every escalation's chain; the first break found, or None when all verify."""
    ids = session.execute(select(Escalation.id).order_by(Escalation.id)).scalars().all()
    for escalation_id in ids:
        events = session.execute(
            select(EscalationEvent)
            .where(EscalationEvent.escalation_id == escalation_id)
            .order_by(EscalationEvent.seq)
        ).scalars()
        found = verify_events(events, key)
        if found:
            return found
    return None


def count(session: Session) -> int:
    return session.execute(select(func.count(EscalationEvent.id))).scalar_one()
