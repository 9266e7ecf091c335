"""Signed checkpoints of the audit trail: what catches entries cut off its end.

A chain of hashes shows that no entry was changed or removed from the middle of a trail, but
not how long the trail was: removing the last entries leaves a shorter chain that verifies.
A checkpoint records the whole trail's head (its highest entry id and that entry's hash) and
how many entries there were up to it, signed with ``AUDIT_KEY`` (HMAC-SHA256), together with
the previous checkpoint's signature, so the checkpoints are a chain of their own. ``check``
then finds an anchored entry removed (fewer entries up to a head than signed), a head that
is gone or changed, an entry slipped in below a head, and a checkpoint changed, removed from
the middle or forged without the key.

The first checkpoint after migration 0015 also seals the entries written before keyed
hashes (chain version 1, plain SHA-256, which anyone can recompute): their highest id, their
number and a SHA-256 over their ids and hashes. Every later checkpoint carries the same three
values, copied from the one before (checked first), so rewriting an old entry, or adding an
unkeyed one, is caught as well.

Written by the duty service when it starts and then hourly (``CheckpointWriter``), and by
every export (``audit_export.py``), in one transaction that first stops new entries from
being written until it commits (PostgreSQL: ``LOCK TABLE ... IN SHARE MODE``, which waits for
the appends under way, so no entry below the head commits after it; SQLite: the one write
lock). What a checkpoint cannot do: entries written after the latest checkpoint and then
removed, together with every checkpoint since, leave no trace in the database itself; hence
hourly, and the checkpoint in every export, which the recipient keeps (docs/audit.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from bot.escalation import audit
from bot.store.db import transaction
from bot.store.loop import BackgroundLoop
from bot.store.models import CHAIN_SHA256, AuditCheckpoint, EscalationEvent, utcnow

logger = logging.getLogger(__name__)

FIRST = audit.GENESIS  # the previous signature of the first checkpoint
HOURLY_S = 3600.0
RETRY_S = 60.0  # after a failed checkpoint (database down, lock time-out)
# An append waits for a checkpoint's lock; a checkpoint waits at most this long for the
# appends under way (it is retried at the next pass), so an alert is never held up long.
LOCK_TIMEOUT_MS = 5000

SIGNED = ("at", "reason", "actor", "head_id", "head_hash", "entries", "legacy_upto",
          "legacy_entries", "legacy_digest", "key_id", "prev_signature")


def signed_fields(cp: Any) -> Dict[str, Any]:
    """What a checkpoint's signature covers: every field but ``id`` and ``signature``.
    ``cp``: an ``AuditCheckpoint`` or the dict an export carries."""
    get = cp.get if isinstance(cp, dict) else lambda name: getattr(cp, name)
    fields = {name: get(name) for name in SIGNED}
    at = fields["at"]
    fields["at"] = audit.canonical_time(at) if isinstance(at, dt.datetime) else at
    return fields


def signature_of(cp: Any, key: audit.Key = None) -> str:
    return audit.sign(key, signed_fields(cp))


def signature_ok(cp: Any, key: audit.Key = None) -> bool:
    get = cp.get if isinstance(cp, dict) else lambda name: getattr(cp, name)
    claimed = get("signature")
    return isinstance(claimed, str) and hmac.compare_digest(signature_of(cp, key), claimed)


def as_json(cp: AuditCheckpoint) -> Dict[str, Any]:
    """The checkpoint as an export carries it (``signed_fields`` reads it back)."""
    return {"id": cp.id, **signed_fields(cp), "signature": cp.signature}


def _lock(session: Session) -> None:
    """No entry may be written below the head this checkpoint names once it has read it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
        # EXCLUSIVE: one checkpoint writer at a time (the unique prev_signature would refuse
        # the second anyway); SHARE: waits for the appends under way, holds new ones back.
        session.execute(text("LOCK TABLE audit_checkpoints IN EXCLUSIVE MODE"))
        session.execute(text("LOCK TABLE escalation_events IN SHARE MODE"))
    else:
        # SQLite begins a transaction at its first write: take the write lock before reading
        # (a write that changes nothing), as audit._lock_trail does.
        session.execute(
            update(AuditCheckpoint).where(AuditCheckpoint.id == -1)
            .values(reason=AuditCheckpoint.reason)
            .execution_options(synchronize_session=False)
        )


def legacy_seal(session: Session) -> tuple[int, int, str]:
    """(highest id, how many, digest) of the entries with unkeyed hashes."""
    digest = hashlib.sha256()
    upto = count = 0
    rows = session.execute(
        select(EscalationEvent.id, EscalationEvent.hash)
        .where(EscalationEvent.chain_version == CHAIN_SHA256)
        .order_by(EscalationEvent.id)
        .execution_options(yield_per=5000)
    )
    for entry_id, entry_hash in rows:
        digest.update(f"{entry_id}:{entry_hash}\n".encode("ascii"))
        upto, count = entry_id, count + 1
    return upto, count, digest.hexdigest()


def latest(session: Session) -> Optional[AuditCheckpoint]:
    return session.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
    ).scalar_one_or_none()


def write(session: Session, reason: str, actor: str, key: audit.Key = None,
          now: Optional[dt.datetime] = None) -> AuditCheckpoint:
    """Sign and add a checkpoint of the trail as it is, in the caller's transaction."""
    key = audit.key_bytes(key)
    _lock(session)
    before = latest(session)
    head = session.execute(
        select(EscalationEvent.id, EscalationEvent.hash)
        .order_by(EscalationEvent.id.desc()).limit(1)
    ).first()
    entries = session.execute(select(func.count(EscalationEvent.id))).scalar_one()
    if before is not None and signature_ok(before, key):
        legacy = (before.legacy_upto, before.legacy_entries, before.legacy_digest)
    else:
        if before is not None:
            # A changed checkpoint, or one signed with another key: never copy its seal of
            # the old entries forward. ``verify`` reports it; the line keeps anchoring.
            logger.error("audit checkpoint %s does not verify with AUDIT_KEY; sealing the "
                         "unkeyed entries afresh", before.id)
        legacy = legacy_seal(session)
    cp = AuditCheckpoint(
        at=now or utcnow(), reason=reason, actor=actor,
        head_id=head.id if head else 0, head_hash=head.hash if head else audit.GENESIS,
        entries=entries, legacy_upto=legacy[0], legacy_entries=legacy[1],
        legacy_digest=legacy[2], key_id=audit.key_id(key),
        prev_signature=before.signature if before is not None else FIRST,
    )
    cp.signature = signature_of(cp, key)
    session.add(cp)
    session.flush()
    return cp


def write_now(reason: str, actor: str, url: Optional[str] = None) -> Dict[str, Any]:
    """``write`` in a transaction of its own; the checkpoint as JSON."""
    with transaction(url) as session:
        return as_json(write(session, reason, actor))


# --- checking --------------------------------------------------------------------------------


@dataclass
class Anchoring:
    """What ``check`` found. ``problem`` is None when every checkpoint holds."""

    checkpoints: int = 0
    problem: Optional[str] = None
    latest_id: Optional[int] = None
    latest_at: Optional[str] = None
    anchored: int = 0  # entries up to the latest checkpoint's head
    after: int = 0  # entries written since (keyed, but not yet anchored)
    legacy: int = 0  # entries with unkeyed hashes
    legacy_sealed: bool = True
    notes: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


class WrongKey(Exception):
    """The checkpoints were signed with a key other than the one given."""


def _describe(cp: AuditCheckpoint) -> str:
    return f"checkpoint #{cp.id} ({audit.canonical_time(cp.at)[:19]}Z, {cp.reason})"


def key_check(session: Session, key: audit.Key = None) -> None:
    """``WrongKey`` when the first checkpoint was signed with a key other than ``key``: then
    every keyed entry would look changed, and that is not what happened. (A later checkpoint
    with another key id is a forgery, which ``check`` reports.)"""
    cp = session.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.id).limit(1)
    ).scalar_one_or_none()
    mine = audit.key_id(key)
    if cp is not None and cp.key_id != mine:
        raise WrongKey(f"the checkpoints were signed with the key whose id is {cp.key_id}; "
                       f"the AUDIT_KEY given has id {mine}")


def check(session: Session, key: audit.Key = None) -> Anchoring:
    """Check every checkpoint against the trail as it is now (one pass over the entries in
    id order, in the caller's transaction). Raises ``WrongKey`` when the first checkpoint
    was signed with another key (nothing else could be said)."""
    key = audit.key_bytes(key)
    key_check(session, key)
    mine = audit.key_id(key)
    found = Anchoring()
    cps = session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).scalars().all()
    found.checkpoints = len(cps)
    prev = FIRST
    for cp in cps:
        if cp.prev_signature != prev:
            found.problem = (f"{_describe(cp)} does not follow the checkpoint before it: "
                             "a checkpoint was removed or reordered")
            return found
        if cp.key_id != mine or not signature_ok(cp, key):
            found.problem = f"{_describe(cp)} was changed after it was signed, or forged"
            return found
        prev = cp.signature
    first = cps[0] if cps else None
    for cp in cps[1:]:
        if (cp.legacy_upto, cp.legacy_entries, cp.legacy_digest) != (
                first.legacy_upto, first.legacy_entries, first.legacy_digest):
            found.problem = f"{_describe(cp)} disagrees with the first on the unkeyed entries"
            return found
    # One pass over the entries in id order, meeting each checkpoint's head on the way.
    waiting = sorted(cps, key=lambda cp: (cp.head_id, cp.id))
    at = 0
    count = 0
    legacy = hashlib.sha256()
    legacy_count = legacy_top = 0
    rows = session.execute(
        select(EscalationEvent.id, EscalationEvent.hash, EscalationEvent.chain_version)
        .order_by(EscalationEvent.id).execution_options(yield_per=5000)
    )

    def settle(upto_id: int, head_hash: Optional[str]) -> Optional[str]:
        """Every checkpoint whose head is at or below ``upto_id``, seen ``count`` entries."""
        nonlocal at
        while at < len(waiting) and waiting[at].head_id <= upto_id:
            cp = waiting[at]
            if cp.head_id and (cp.head_id != upto_id or head_hash is None):
                return (f"the last entry {_describe(cp)} anchors (id {cp.head_id}) is gone: "
                        "entries were removed from the end of the trail")
            if cp.head_id and head_hash != cp.head_hash:
                return f"the last entry {_describe(cp)} anchors (id {cp.head_id}) was changed"
            if count < cp.entries:
                return (f"{cp.entries - count} of the {cp.entries} entries {_describe(cp)} "
                        "anchors are missing: entries were removed")
            if count > cp.entries:
                return (f"{count - cp.entries} entries appeared below the head of "
                        f"{_describe(cp)} after it was signed: entries were added")
            at += 1
        return None

    first_keyed = None
    for entry_id, entry_hash, version in rows:
        # Checkpoints whose head lies before this entry: their count is complete.
        problem = settle(entry_id - 1, None) if at < len(waiting) else None
        if problem:
            found.problem = problem
            return found
        count += 1
        if version != CHAIN_SHA256 and first_keyed is None:
            first_keyed = entry_id
        if version == CHAIN_SHA256 and first_keyed is not None:
            # Every unkeyed entry was written before the upgrade, so before every keyed one.
            found.problem = (f"entry id {entry_id} has an unkeyed hash but was written after "
                             f"keyed entries (id {first_keyed}): rewritten without the key")
            return found
        if version == CHAIN_SHA256:
            legacy.update(f"{entry_id}:{entry_hash}\n".encode("ascii"))
            legacy_count += 1
            legacy_top = entry_id
        problem = settle(entry_id, entry_hash) if at < len(waiting) else None
        if problem:
            found.problem = problem
            return found
    problem = settle(float("inf"), None) if at < len(waiting) else None  # heads past the end
    if problem:
        found.problem = problem
        return found
    found.legacy = legacy_count
    if cps:
        last = cps[-1]
        found.latest_id = last.id
        found.latest_at = audit.canonical_time(last.at)
        found.anchored = last.entries
        found.after = count - last.entries
        if (legacy_top, legacy_count, legacy.hexdigest()) != (
                first.legacy_upto, first.legacy_entries, first.legacy_digest):
            found.problem = ("the entries written before keyed hashes (chain version 1) are "
                             "not those the checkpoints sealed: one was changed, removed or "
                             "added")
            return found
    elif legacy_count:
        found.legacy_sealed = False
        found.notes.append(f"{legacy_count} entries written before keyed hashes are not yet "
                           "sealed by a checkpoint")
    return found


# --- the duty service's writer ---------------------------------------------------------------

RunDb = Callable[..., Awaitable[Any]]


class CheckpointWriter:
    """A checkpoint when the duty service starts, then every ``poll_s`` (an hour)."""

    task_name = "audit-checkpoints"

    def __init__(self, *, poll_s: float = HOURLY_S, run_db: RunDb = asyncio.to_thread,
                 actor: str = "system:duty", url: Optional[str] = None,
                 retry_s: float = RETRY_S) -> None:
        self._db = run_db
        self.actor = actor
        self.url = url  # None: DATABASE_URL
        self.retry_s = min(retry_s, poll_s)
        self.written: List[Dict[str, Any]] = []  # the latest few, for tests and /metrics
        self._reason = "start"
        self.loop = BackgroundLoop(self.task_name, self._pass, poll_s=poll_s, log=logger,
                                   label="audit checkpoints")

    @property
    def running(self) -> bool:
        return self.loop.running

    async def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    async def _pass(self) -> Optional[float]:
        try:
            cp = await self._db(write_now, self._reason, self.actor, self.url)
        except sa_exc.OperationalError as exc:
            # The database is down, or the appends under way held the lock past its time-out:
            # try again in a minute rather than an hour. The type only: never its message.
            cause = getattr(exc, "orig", None) or exc
            logger.warning("audit checkpoint not written (%s); retrying in %.0f s",
                           type(cause).__name__, self.retry_s)
            return self.retry_s
        self._reason = "hourly"
        self.written = (self.written + [cp])[-10:]
        logger.info("audit checkpoint #%s: %s entries", cp["id"], cp["entries"])
        return None
