"""The block list: a duty manager's decision that the line stops talking with one sender for a
while (docs/console.md, "Blocking a sender").

A block is made from an escalation's conversation page, so staff choose a sender they can
see and never type or see an identifier: the block is keyed by that escalation's
pseudonymous conversation id (for SMS a keyed hash of the number, for web chat the browser's
session id). It needs a reason and one of ``DURATIONS``; it ends at its time, or earlier when
a duty manager lifts it. Every block and every unblock is an entry on the trail of the
escalation it was made from (``sender_blocked``, ``sender_unblocked``: hash-chained with the
rest of that trail, and shown on its page and by the API), in the same transaction as the
row, so there is no block without its audit entry.

What a block does to a turn is the channels' business (``bot/channels/contact_turn.py``): a
message that shows risk still goes to the dialogue and staff; anything else is answered with
the emergency numbers and nothing more. The channels know which conversations are blocked
from ``BlockView``, read at most once a second, not a query per turn.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.escalation import audit
from bot.escalation import engine as escalation_engine
from bot.store.models import Escalation, utcnow
from bot.store.models.blocks import SenderBlock

logger = logging.getLogger(__name__)

# The lengths a duty manager chooses from (hours: label); a block never lasts for ever.
DURATIONS: Dict[int, str] = {4: "4 hours", 24: "24 hours", 72: "3 days", 168: "7 days",
                             672: "28 days"}
MAX_REASON = 500
BLOCKED_KIND = "sender_blocked"
UNBLOCKED_KIND = "sender_unblocked"
RECENTLY_ENDED = 20
_SPACES = re.compile(r"\s+")
# Control characters (a pasted NUL cannot be stored on PostgreSQL): a reason is one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BlockRefused(ValueError):
    """A block or unblock that cannot be done; ``code`` is the console's notice code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.timezone.utc)  # SQLite: naive UTC


def clean_reason(raw: Any) -> str:
    """The reason as it is stored: one line, spaces collapsed; refused when empty or long."""
    text = _SPACES.sub(" ", _CONTROL.sub(" ", raw if isinstance(raw, str) else "")).strip()
    if not text:
        raise BlockRefused("block_reason_needed")
    if len(text) > MAX_REASON:
        raise BlockRefused("block_reason_too_long")
    return text


def _current(session: Session, conversation_id: str, now: dt.datetime) -> Optional[SenderBlock]:
    return session.execute(
        select(SenderBlock)
        .where(SenderBlock.conversation_id == conversation_id, SenderBlock.lifted_at.is_(None),
               SenderBlock.expires_at > now)
        .order_by(SenderBlock.expires_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def block(engine: Engine, ref: str, actor: str, reason: Any, hours: Any,
          now: Optional[dt.datetime] = None) -> int:
    """Block the sender of escalation ``ref`` for ``hours`` (one of ``DURATIONS``); the id.

    Raises ``BlockRefused`` (a reason is needed, a duration from the list, the sender is
    blocked already) or ``escalation_engine.NotFound``."""
    text = clean_reason(reason)
    try:
        hours = int(hours)
    except (TypeError, ValueError):
        hours = 0
    if hours not in DURATIONS:
        raise BlockRefused("block_duration")
    now = now or utcnow()
    with Session(engine, future=True) as session, session.begin():
        esc = escalation_engine.load(session, ref)
        if _current(session, esc.conversation_id, now) is not None:
            raise BlockRefused("already_blocked")
        until = now + dt.timedelta(hours=hours)
        row = SenderBlock(conversation_id=esc.conversation_id, channel=esc.channel,
                          escalation_id=esc.id, reason=text, created_by=actor, created_at=now,
                          expires_at=until)
        session.add(row)
        session.flush()
        audit.append(session, esc, BLOCKED_KIND, actor, reason=text, at=now, data={
            "block_id": row.id, "hours": hours,
            "until": until.isoformat(timespec="seconds"),
        })
        block_id, ref = row.id, esc.ref
    # Ids only: never a number, never the reason (staff's words about a person).
    logger.info("sender of %s blocked by %s for %d hours (block %d)", ref, actor, hours,
                block_id)
    return block_id


def unblock(engine: Engine, block_id: int, actor: str,
            now: Optional[dt.datetime] = None) -> str:
    """Lift block ``block_id`` before its time; the ref of the escalation it was made from.

    Raises ``BlockRefused("not_blocked")`` for an unknown, lifted or expired block."""
    now = now or utcnow()
    with Session(engine, future=True) as session, session.begin():
        # One conditional write: of two managers lifting it at once, one does (and writes
        # the one trail entry); the other is told it has ended.
        lifted = session.execute(
            update(SenderBlock)
            .where(SenderBlock.id == block_id, SenderBlock.lifted_at.is_(None),
                   SenderBlock.expires_at > now)
            .values(lifted_at=now, lifted_by=actor)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not lifted:
            raise BlockRefused("not_blocked")
        escalation_id = session.execute(
            select(SenderBlock.escalation_id).where(SenderBlock.id == block_id)
        ).scalar_one()
        esc = escalation_engine.load(session, escalation_id)
        audit.append(session, esc, UNBLOCKED_KIND, actor, at=now,
                     reason="block lifted before its time", data={"block_id": block_id})
        ref = esc.ref
    logger.info("block %d (sender of %s) lifted by %s", block_id, ref, actor)
    return ref


def _row_json(row: SenderBlock, ref: str) -> dict[str, Any]:
    # No conversation id: staff know a blocked sender by the escalation it was made from.
    return {"id": row.id, "ref": ref, "channel": row.channel, "reason": row.reason,
            "created_by": row.created_by, "created_at": _aware(row.created_at),
            "expires_at": _aware(row.expires_at),
            "lifted_at": _aware(row.lifted_at) if row.lifted_at else None,
            "lifted_by": row.lifted_by}


def for_ref(engine: Engine, ref: str, now: Optional[dt.datetime] = None) -> Optional[dict[str, Any]]:
    """The current block of escalation ``ref``'s sender (made from any of their escalations)."""
    now = now or utcnow()
    with Session(engine, future=True) as session:
        conversation = session.execute(
            select(Escalation.conversation_id).where(Escalation.ref == ref.upper())
        ).scalar_one_or_none()
        if conversation is None:
            return None
        row = _current(session, conversation, now)
        if row is None:
            return None
        made_from = session.get(Escalation, row.escalation_id)
        return _row_json(row, made_from.ref if made_from else "")


@dataclass
class Listing:
    current: list[dict[str, Any]]
    ended: list[dict[str, Any]]  # lifted or expired, latest first


def listing(engine: Engine, now: Optional[dt.datetime] = None,
            ended: int = RECENTLY_ENDED) -> Listing:
    """Every current block (soonest to end first) and the latest ended ones."""
    now = now or utcnow()
    with Session(engine, future=True) as session:
        live = session.execute(
            select(SenderBlock, Escalation.ref)
            .join(Escalation, Escalation.id == SenderBlock.escalation_id)
            .where(SenderBlock.lifted_at.is_(None), SenderBlock.expires_at > now)
            .order_by(SenderBlock.expires_at)
        ).all()
        done = session.execute(
            select(SenderBlock, Escalation.ref)
            .join(Escalation, Escalation.id == SenderBlock.escalation_id)
            .where((SenderBlock.lifted_at.is_not(None)) | (SenderBlock.expires_at <= now))
            .order_by(SenderBlock.id.desc())
            .limit(ended)
        ).all()
        return Listing([_row_json(r, ref) for r, ref in live], [_row_json(r, ref) for r, ref in done])


def current_blocks(engine: Engine, now: Optional[dt.datetime] = None) -> Dict[str, dt.datetime]:
    """conversation id -> when its block ends, for every sender blocked now."""
    now = now or utcnow()
    found: Dict[str, dt.datetime] = {}
    with engine.connect() as conn:
        for conversation, until in conn.execute(
            select(SenderBlock.conversation_id, SenderBlock.expires_at)
            .where(SenderBlock.lifted_at.is_(None), SenderBlock.expires_at > now)
        ):
            until = _aware(until)
            found[conversation] = max(until, found.get(conversation, until))
    return found


class BlockView:
    """Which senders are blocked, as the channels need it on every turn without a query.

    ``read`` returns ``current_blocks``; it is called at most once per ``refresh_s`` (a block
    made or lifted in the console reaches the channels within that) and never by two threads
    at once, and the lock the event loop takes is never held over it. Each block's end time
    is kept, so a block stops at its time to the second, whenever the last read was.
    """

    def __init__(self, read: Callable[[], Dict[str, dt.datetime]], refresh_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._reading = threading.Lock()
        self._blocks: Dict[str, dt.datetime] = {}
        self._read_at: Optional[float] = None

    def _due(self) -> bool:
        return self._read_at is None or self._clock() - self._read_at >= self.refresh_s

    def known(self, conversation_id: str, now: Optional[dt.datetime] = None) -> Optional[bool]:
        """Whether the sender is blocked, from what was read; None when a read is due."""
        with self._lock:
            if self._due():
                return None
            until = self._blocks.get(conversation_id)
        return until is not None and until > (now or utcnow())

    def lookup(self, conversation_id: str, now: Optional[dt.datetime] = None) -> bool:
        """``known``, reading the database first when it is due (a blocking call)."""
        with self._reading:
            with self._lock:
                due = self._due()
            if due:
                started = self._clock()
                blocks = self._read()  # outside ``_lock``: the event loop never waits on it
                with self._lock:
                    self._blocks, self._read_at = blocks, started
        with self._lock:
            until = self._blocks.get(conversation_id)
        return until is not None and until > (now or utcnow())


_views: Dict[str, BlockView] = {}
_views_lock = threading.Lock()


def view() -> BlockView:
    """The process's view for the configured database (tests switch databases)."""
    from bot.settings import settings
    from bot.store import db

    url = settings().database_url
    with _views_lock:
        found = _views.get(url)
        if found is None:
            found = _views[url] = BlockView(lambda: current_blocks(db.get_engine(url)))
        return found


def reset() -> None:
    """Forget every view (tests)."""
    with _views_lock:
        _views.clear()
