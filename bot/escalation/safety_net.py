"""Risk that the assistant did not record: the duty service opens the escalation itself.

The normal path: the person's urgent or imminent message runs ``action_record_escalation`` on
the action server, which calls ``engine.record_escalation`` in the same turn. But when the
action server is down (or its database call fails), Rasa logs "Failed to run custom action
... Bot will continue", saves the turn, and nobody on duty hears about the risk. "Risk first"
allows no such gap, so the duty service watches for it:

- It reads the person's messages from Rasa's tracker store (the ``events`` table; see
  ``bot/escalation/watch.py``, whose table declaration, risk parsing and polling loop this
  module shares), with ONE cursor over the whole table (``risk_net_cursor``), by primary
  key: each pass reads only rows after the cursor, so the cost does not grow with the table.
- A message whose risk (``parse_data["risk"]``, from ``bot/nlu/risk_guard.py``) is urgent or
  imminent, in a conversation with no live escalation of at least that level, gets one
  through ``engine.record_escalation`` (the function the action uses: idempotent per
  conversation, raises and never lowers a level, schedules the ladder's first alert), with a
  ``safety_net`` entry on the trail saying why.
- The assistant goes first: a message is only looked at ``head_start_s`` (1.5 s) after Rasa
  stamped it. Rasa saves a turn's events after its actions ran, so by then the action has
  either recorded the escalation (nothing to do) or failed.
- Not the net's: a conversation a human holds (the held-conversation watcher alerts the
  holder), and a message older than the resolution of an escalation of at least its level
  (staff had the transcript when they closed it).

Exactly once, across restarts and several duty services: the cursor row is locked
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the first statement is a write, and
SQLite has one writer) for the pass, and reading past it, recording escalations and moving
it are one transaction. A second duty service skips the pass; a killed one's work is rolled
back and redone.

Ids are not committed in order across conversations (two Rasa servers, or two turns saving
at once: id 100 may commit after 101), so a global cursor must not jump over an id it has
not seen. The net stops at a missing id and waits for it for ``gap_wait_s`` (5 s; a turn's
save commits in milliseconds), then moves past it: ids rolled back, or skipped by a
PostgreSQL sequence after a crash, never appear.

The first pass on a database (no cursor row yet) starts ``INITIAL_LOOKBACK_S`` back, looking
at most ``INITIAL_SCAN`` rows down the primary key, rather than at the start of history.

Never message text or numbers in the trail or the logs: level, signals, event id, reference.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import case, func, inspect, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from bot.escalation import audit, engine
from bot.store.models.handoff import RiskNetCursor
from bot.escalation.watch import ALERT_LEVELS, RASA_EVENTS, PollingTask, is_held, risk_of
from bot.store.db import transaction
from bot.store.models import Escalation, utcnow

logger = logging.getLogger(__name__)

CURSOR = "events"
ACTOR = "system:safety_net"
REASON = "risk seen by the duty service's safety net (the assistant did not record it)"
HEAD_START_S = 1.5
GAP_WAIT_S = 5.0
# At most this many events are read per pass; the next pass reads on.
BATCH = 500
# A first start covers messages this recent (a duty service deployed while the action server
# is down still catches them), but never reads more than INITIAL_SCAN rows to find them.
INITIAL_LOOKBACK_S = 15 * 60
INITIAL_SCAN = 2000


@dataclass(frozen=True)
class NetOutcome:
    ref: str
    level: str
    event_id: int
    created: bool  # False: an existing escalation's level was raised
    delay_s: float  # from Rasa's stamp on the message to the escalation


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)  # SQLite: naive UTC


def _has_events(session: Session) -> bool:
    return inspect(session.connection()).has_table("events")


def initial_cursor(session: Session, now: float, lookback_s: float = INITIAL_LOOKBACK_S) -> int:
    """Where a new cursor starts: before the first of the last ``INITIAL_SCAN`` events
    stamped within ``lookback_s``; after the newest event when none is (both by the key)."""
    if not _has_events(session):
        return 0
    recent = (
        select(RASA_EVENTS.c.id, RASA_EVENTS.c.timestamp)
        .order_by(RASA_EVENTS.c.id.desc())
        .limit(INITIAL_SCAN)
        .subquery()
    )
    first_recent = session.execute(
        select(func.min(recent.c.id)).where(recent.c.timestamp >= now - lookback_s)
    ).scalar_one_or_none()
    if first_recent is not None:
        return int(first_recent) - 1
    newest = session.execute(select(func.max(RASA_EVENTS.c.id))).scalar_one_or_none()
    return int(newest or 0)


def ensure_cursor(lookback_s: float = INITIAL_LOOKBACK_S) -> None:
    """Create the cursor row once (its own transaction; a race with another service is a
    no-op insert)."""
    with transaction() as s:
        if s.get(RiskNetCursor, CURSOR) is not None:
            return
        start = initial_cursor(s, time.time(), lookback_s)
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        s.execute(
            insert(RiskNetCursor)
            .values(name=CURSOR, last_event_id=start, updated_at=utcnow())
            .on_conflict_do_nothing()
        )


def _lock_cursor(session: Session) -> Optional[RiskNetCursor]:
    """The cursor, locked for this transaction; None while another duty service has it."""
    if session.get_bind().dialect.name == "sqlite":
        # A write first: this transaction takes SQLite's one write lock before it reads, so
        # two services cannot both read the same cursor.
        session.execute(
            update(RiskNetCursor).where(RiskNetCursor.name == CURSOR)
            .values(updated_at=utcnow()).execution_options(synchronize_session=False)
        )
        return session.get(RiskNetCursor, CURSOR, populate_existing=True)
    return session.execute(
        select(RiskNetCursor).where(RiskNetCursor.name == CURSOR)
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()


def _covered(session: Session, conversation_id: str, level: str, stamped: Optional[float]) -> bool:
    """Whether staff already have this risk: a live escalation of at least ``level``, a
    conversation a human holds (the held watcher's), or an escalation of at least ``level``
    resolved after the message was sent."""
    escalations = session.execute(
        select(Escalation)
        .where(Escalation.conversation_id == conversation_id)
        .order_by(Escalation.id.desc())
        .limit(20)
    ).scalars().all()
    for esc in escalations:
        at_least = engine.RANK[esc.level] >= engine.RANK[level]
        if esc.status in engine.LIVE_STATUSES:
            if at_least or is_held(session, esc):
                return True
        elif (at_least and esc.resolved_at is not None and stamped is not None
              and _aware(esc.resolved_at).timestamp() >= stamped):
            return True
    return False


def _channel(data: Optional[str]) -> str:
    try:
        parsed = json.loads(data or "{}")
    except ValueError:
        return "unknown"
    channel = parsed.get("input_channel") if isinstance(parsed, dict) else None
    return str(channel) if channel else "unknown"


def events_after(event_id: int, batch: int = BATCH) -> Select:
    """The next ``batch`` events after ``event_id``: a range scan of the primary key, so a
    pass costs the same on a table of a thousand rows or a hundred million."""
    return (
        select(
            RASA_EVENTS.c.id, RASA_EVENTS.c.sender_id, RASA_EVENTS.c.type_name,
            RASA_EVENTS.c.timestamp,
            # Only the person's messages carry risk; other events' JSON is not fetched.
            case((RASA_EVENTS.c.type_name == "user", RASA_EVENTS.c.data), else_=None),
        )
        .where(RASA_EVENTS.c.id > event_id)
        .order_by(RASA_EVENTS.c.id)
        .limit(batch)
    )


def scan(
    head_start_s: float = HEAD_START_S,
    gap_wait_s: float = GAP_WAIT_S,
    batch: int = BATCH,
    now: Optional[float] = None,
) -> list[NetOutcome]:
    """One pass: read events after the cursor, record missed risk, move the cursor. One
    transaction; an empty list when there was nothing to do or another service holds it."""
    with transaction() as s:
        if not _has_events(s):
            return []  # no Rasa server has written to this database yet
        cursor = _lock_cursor(s)
        if cursor is None:
            return []
        now = time.time() if now is None else now
        rows = s.execute(events_after(cursor.last_event_id, batch)).all()
        found: list[NetOutcome] = []
        expected = cursor.last_event_id + 1
        gap: Optional[int] = None
        for event_id, sender_id, type_name, stamped, data in rows:
            if event_id != expected:
                # Ids ``expected``..``event_id - 1`` are not visible: still being committed,
                # or never will be. Wait for them a while, then move on.
                waited = (cursor.gap_at == expected and cursor.gap_since is not None
                          and now - _aware(cursor.gap_since).timestamp() >= gap_wait_s)
                if not waited:
                    gap = expected
                    break
            if type_name == "user" and stamped is not None and stamped > now - head_start_s:
                break  # the assistant's head start: its action may still record it
            expected = event_id + 1
            if type_name != "user":
                continue
            level, signals = risk_of(data)
            if level not in ALERT_LEVELS or _covered(s, sender_id, level, stamped):
                continue
            record = engine.record_escalation(sender_id, level, signals, channel=_channel(data),
                                              actor=ACTOR, session=s)
            esc = s.get(Escalation, record.id)
            delay = max(0.0, now - stamped) if stamped is not None else 0.0
            audit.append(
                s, esc, "safety_net", ACTOR, reason=REASON,
                data={"level": level, "signals": signals, "event_id": event_id,
                      "created": record.created, "delay_s": round(delay, 1)},
            )
            found.append(NetOutcome(record.ref, level, event_id, record.created, delay))
        if gap is None:
            cursor.gap_at, cursor.gap_since = None, None
        elif cursor.gap_at != gap:
            cursor.gap_at, cursor.gap_since = gap, utcnow()
        cursor.last_event_id = expected - 1
        cursor.updated_at = utcnow()
        return found


class RiskSafetyNet(PollingTask):
    """The duty service's background task: ``scan`` every ``poll_s`` seconds."""

    task_name = "risk-safety-net"

    def __init__(
        self,
        *,
        poll_s: float = 0.5,
        head_start_s: float = HEAD_START_S,
        gap_wait_s: float = GAP_WAIT_S,
        run_db: Callable[..., Awaitable[Any]] = asyncio.to_thread,
        on_recorded: Optional[Callable[[], None]] = None,
    ) -> None:
        super().__init__(poll_s)
        self.head_start_s = head_start_s
        self.gap_wait_s = gap_wait_s
        self._db = run_db
        self.on_recorded = on_recorded
        self._ready = False
        self.outcomes: list[NetOutcome] = []  # recent escalations, for tests

    async def run_once(self) -> list[NetOutcome]:
        if not self._ready:
            await self._db(ensure_cursor)
            self._ready = True
        found = await self._db(scan, self.head_start_s, self.gap_wait_s)
        for out in found:
            logger.warning("risk safety net: %s message not recorded by the assistant; "
                           "escalation %s %s (%.1fs after the message)", out.level, out.ref,
                           "opened" if out.created else "raised", out.delay_s)
        if found:
            self.outcomes = (self.outcomes + found)[-200:]
            if self.on_recorded is not None:
                self.on_recorded()
        return found
