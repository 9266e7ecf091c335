"""The append-only, hash-chained audit trail of an escalation.

Each entry's hash covers the previous entry's hash and the entry's own fields, so an entry
changed or removed after the fact breaks the chain from that point on.

Appends to one escalation are serialised: ``append`` locks the escalation's row before it
reads the last entry, so two transactions appending at once (a take-over in the console while
the dispatcher records a ladder step) write seq n+1 and n+2, one after the other, instead of
both reading n and the second failing on ``UNIQUE (escalation_id, seq)``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.store.models import Escalation, EscalationEvent, utcnow

GENESIS = "0" * 64


def _canonical_time(at: dt.datetime) -> str:
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
    payload = json.dumps(
        {
            "prev": prev_hash,
            "escalation": escalation_id,
            "seq": seq,
            "at": _canonical_time(at),
            "kind": kind,
            "actor": actor,
            "reason": reason,
            "data": data,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


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
    """Append one entry to ``escalation``'s trail inside the caller's transaction."""
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
        hash=entry_hash(prev, escalation.id, seq, at, kind, actor, reason, data),
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class Break:
    escalation_id: int
    seq: int
    problem: str


def verify_events(events: Iterable[EscalationEvent]) -> Optional[Break]:
    """The first broken entry of one escalation's trail (ordered by seq), or None."""
    prev = GENESIS
    expected_seq = 1
    for ev in events:
        if ev.seq != expected_seq:
            return Break(ev.escalation_id, expected_seq, "entry missing")
        if ev.prev_hash != prev:
            return Break(ev.escalation_id, ev.seq, "does not follow the previous entry")
        computed = entry_hash(
            prev, ev.escalation_id, ev.seq, ev.at, ev.kind, ev.actor, ev.reason, ev.data
        )
        if computed != ev.hash:
            return Break(ev.escalation_id, ev.seq, "entry was changed after it was written")
        prev = ev.hash
        expected_seq += 1
    return None


def verify_all(session: Session) -> Optional[Break]:
    """Check every escalation's chain; the first break found, or None when all verify."""
    ids = session.execute(select(Escalation.id).order_by(Escalation.id)).scalars().all()
    for escalation_id in ids:
        events = session.execute(
            select(EscalationEvent)
            .where(EscalationEvent.escalation_id == escalation_id)
            .order_by(EscalationEvent.seq)
        ).scalars()
        found = verify_events(events)
        if found:
            return found
    return None


def count(session: Session) -> int:
    return session.execute(select(func.count(EscalationEvent.id))).scalar_one()
