"""Risk in a conversation a human holds: alert the holder and the duty manager at once.

While a member of staff holds a conversation (status ``active``, or ``referred`` while still
held), the assistant is paused: Rasa still runs NLU on each of the person's messages and saves
it, with the risk guard's ``risk`` in its ``parse_data``, but answers nothing. If such a
message is urgent or imminent, the person is relying on one human who may be typing to someone
else, on a break, or gone; so the holder and every duty manager on call get an SMS at once,
the escalation's level and signals are raised (never lowered), and the trail records it.

Where the messages come from: Rasa's tracker store, the ``events`` table in the database the
duty service already reads (as ``bot/duty/transcripts.py`` does, for the same reasons: it
works while the Rasa server restarts, needs no token, and is the durable record of every
message). The duty service polls it for held conversations only, with the sender index, so
the query is small however busy the line is.

Nothing is missed and nothing alerted twice:

- a cursor per escalation (``escalation_watch.last_event_id``) says which of its
  conversation's events have been looked at. Reading past it, writing the alert (SMS outbox
  rows, audit entry) and moving it happen in ONE transaction, under the cursor's row lock
  (``FOR UPDATE``; SQLite has one writer), so two duty services, or one killed half-way,
  neither double nor drop an alert; a restart carries on from the row.
- The cursor can trust ``events.id`` order within one conversation: Rasa handles one
  conversation's turns one at a time under its lock store, and saves each turn's events in
  one transaction before the next turn starts, so a later message never has a lower id that
  commits later. (Across conversations ids can commit out of order; the cursor is per
  conversation for exactly that reason.)
- Only messages sent after the latest take-over count: before it, the assistant answered
  them itself with the safety rules.

Never message text or numbers in the trail, the SMS or the logs: level, signals, event ids.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Optional

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.escalation import audit, engine
from bot.escalation import rota as rota_module
from bot.escalation.dispatch import RotaSource, _duty_managers, alert_staff
from bot.store.models.handoff import PURPOSE_HELD_RISK, HeldWatch
from bot.settings import settings
from bot.store.db import transaction
from bot.store.loop import BackgroundLoop
from bot.store.models import Escalation, EscalationEvent, utcnow

logger = logging.getLogger(__name__)

# Rasa 3.6's SQLTrackerStore table, declared on its own MetaData (Rasa owns it, Alembic must
# not); the columns read here. See bot/duty/transcripts.py.
RASA_EVENTS = Table(
    "events",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255)),
    Column("type_name", String(255)),
    Column("timestamp", Float),
    # As Rasa's SQL tracker store (and ours, bot/rasa_runtime) fills them: a user event's
    # top intent; a slot event's slot name (an action event's action name).
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)
ALERT_LEVELS = ("urgent", "imminent")
HELD_STATUSES = ("active", "referred")
# Rasa stamps a message with its own clock, the trail with the duty service's: a message
# stamped this little before the take-over still counts (an extra alert beats a missed one).
CLOCK_SLACK_S = 2.0
# At most this many of one conversation's new messages are read per pass; the cursor moves
# past them and the next pass reads on.
BATCH = 200


def held_risk_text(esc: Escalation, level: str, holder_name: str, public_url: str) -> str:
    """What staff are told: the reference, who holds it, the level. Never the message."""
    return (
        f"RISK NOW in held conversation {esc.ref} ({holder_name}): the person's latest "
        f"message reads as {level.upper()}. Open {public_url}/duty/e/{esc.ref}"
    )


@dataclass
class WatchOutcome:
    ref: str
    level: str
    event_ids: list[int]
    staff: list[str] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)  # SQLite: naive UTC


def held_escalation_ids(session: Session) -> list[int]:
    """Escalations a human holds now (taken over and not handed back)."""
    candidates = session.execute(
        select(Escalation.id).where(Escalation.status.in_(HELD_STATUSES)).order_by(Escalation.id)
    ).scalars().all()
    return [i for i in candidates if engine.taken_by(session, i) is not None]


def is_held(session: Session, esc: Escalation) -> bool:
    """A human holds this escalation's conversation now: the assistant is paused."""
    return esc.status in HELD_STATUSES and engine.taken_by(session, esc.id) is not None


def conversation_held(conversation_id: str, session: Optional[Session] = None) -> bool:
    """True while a human holds the conversation (taken over and not handed back), so the
    assistant is paused and a turn that answers nothing is what should happen."""
    if session is None:
        with transaction() as own:
            return conversation_held(conversation_id, own)
    live = session.execute(
        select(Escalation)
        .where(Escalation.conversation_id == conversation_id,
               Escalation.status.in_(HELD_STATUSES))
        .order_by(Escalation.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return live is not None and is_held(session, live)


def _taken_over_at(session: Session, escalation_id: int) -> Optional[dt.datetime]:
    at = session.execute(
        select(EscalationEvent.at)
        .where(EscalationEvent.escalation_id == escalation_id,
               EscalationEvent.kind == "taken_over")
        .order_by(EscalationEvent.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    return _aware(at) if at is not None else None


def _lock_cursor(session: Session, escalation_id: int) -> HeldWatch:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(HeldWatch)
        .values(escalation_id=escalation_id, last_event_id=0, updated_at=utcnow())
        .on_conflict_do_nothing()
    )
    return session.execute(
        select(HeldWatch).where(HeldWatch.escalation_id == escalation_id).with_for_update()
    ).scalar_one()


def risk_of(data: Optional[str]) -> tuple[str, list[str]]:
    """The risk guard's level and signals in a saved ``user`` event's JSON (``none`` when
    the event has none or cannot be read: never an error that would stop a scan)."""
    try:
        parsed = json.loads(data or "{}")
    except ValueError:
        return "none", []
    if not isinstance(parsed, dict):
        return "none", []
    risk = (parsed.get("parse_data") or {}).get("risk") or {}
    return str(risk.get("level") or "none"), [str(s) for s in risk.get("signals") or []]


def scan_escalation(escalation_id: int, r: rota_module.Rota,
                    public_url: Optional[str] = None) -> Optional[WatchOutcome]:
    """Look at one held conversation's new messages; alert on risk. One transaction."""
    public_url = public_url or settings().duty_public_url
    with transaction() as s:
        if not inspect(s.connection()).has_table("events"):
            return None  # no Rasa server has written to this database yet
        esc = engine.load(s, escalation_id)  # row lock: the same order as every transition
        holder = engine.taken_by(s, esc.id)
        if esc.status not in HELD_STATUSES or holder is None:
            return None  # handed back since the list was read: the assistant answers again
        since = _taken_over_at(s, esc.id)
        cursor = _lock_cursor(s, esc.id)
        rows = s.execute(
            select(RASA_EVENTS.c.id, RASA_EVENTS.c.timestamp, RASA_EVENTS.c.data)
            .where(RASA_EVENTS.c.sender_id == esc.conversation_id,
                   RASA_EVENTS.c.type_name == "user",
                   RASA_EVENTS.c.id > cursor.last_event_id)
            .order_by(RASA_EVENTS.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return None
        cursor.last_event_id = rows[-1].id
        cursor.updated_at = utcnow()
        risky: list[tuple[int, str, list[str]]] = []
        for row in rows:
            if (since is not None and row.timestamp is not None
                    and row.timestamp < since.timestamp() - CLOCK_SLACK_S):
                continue  # before the take-over: the assistant answered it
            level, signals = risk_of(row.data)
            if level in ALERT_LEVELS:
                risky.append((row.id, level, signals))
        if not risky:
            return None
        level = "imminent" if any(lv == "imminent" for _, lv, _ in risky) else "urgent"
        signals = list(dict.fromkeys(sig for _, _, sigs in risky for sig in sigs))
        out = WatchOutcome(esc.ref, level, [i for i, _, _ in risky])
        # Raise the escalation (never lowers; no ladder restart: a human holds it).
        engine.record_escalation(esc.conversation_id, level, signals, channel=esc.channel,
                                 actor="system:watcher", session=s)
        now = dt.datetime.now(dt.timezone.utc)
        people: dict[str, rota_module.StaffMember] = {}
        holder_actor = str(holder.get("staff") or "")
        holder_member = r.staff.get(holder_actor.removeprefix("staff:"))
        if holder_member is not None:
            people[holder_member.id] = holder_member
        for member in _duty_managers(r, now):
            people.setdefault(member.id, member)
        holder_name = str(holder.get("display_name") or "held by staff")
        text = held_risk_text(esc, level, holder_name, public_url)
        for member in people.values():
            out.outbox_ids += alert_staff(s, esc, member, text, PURPOSE_HELD_RISK)
        out.staff = list(people)
        audit.append(
            s, esc, "risk_while_held", "system:watcher",
            reason=f"{level} message while held by {holder_actor or 'staff'}; "
                   f"{'holder and duty manager alerted' if people else 'nobody on the rota to alert'}",
            data={"level": level, "signals": signals, "event_ids": out.event_ids,
                  "holder": holder_actor, "holder_on_rota": holder_member is not None,
                  "staff": out.staff, "outbox_ids": out.outbox_ids},
        )
        esc.updated_at = utcnow()
        return out


def scan_all(r: rota_module.Rota, public_url: Optional[str] = None) -> list[WatchOutcome]:
    """Every held conversation, one transaction each (one failure does not stop the rest)."""
    with transaction() as s:
        ids = held_escalation_ids(s)
    found = []
    for escalation_id in ids:
        try:
            out = scan_escalation(escalation_id, r, public_url)
        except Exception as exc:  # noqa: BLE001  retried on the next pass; no data in the log
            logger.error("risk watcher: escalation %s failed (%s)", escalation_id,
                         type(exc).__name__)
            continue
        if out is not None:
            found.append(out)
    return found


class PollingTask:
    """A duty-service background loop: ``run_once`` every ``poll_s`` seconds until stopped.

    Shared by the held-conversation watcher and the risk safety net
    (``bot/escalation/safety_net.py``); the loop itself is ``bot/store/loop.py``'s. A failed
    pass (the database down) is logged by its type only and retried on the next; nothing else
    stops the loop.
    """

    task_name = "polling-task"

    def __init__(self, poll_s: float) -> None:
        self.loop = BackgroundLoop(self.task_name, self._pass, poll_s=poll_s, log=logger)

    @property
    def poll_s(self) -> float:
        return self.loop.poll_s

    async def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    async def run_once(self) -> Any:
        raise NotImplementedError

    async def _pass(self) -> None:
        await self.run_once()


class HeldRiskWatcher(PollingTask):
    """The duty service's background task: ``scan_all`` every ``poll_s`` seconds."""

    task_name = "held-risk-watcher"

    def __init__(
        self,
        rota_path: Optional[str] = None,
        *,
        poll_s: float = 0.5,
        run_db: Callable[..., Awaitable[Any]] = asyncio.to_thread,
        on_enqueued: Optional[Callable[[], None]] = None,
    ) -> None:
        super().__init__(poll_s)
        self.rota = RotaSource(rota_path or settings().rota_file)
        self._db = run_db
        self.on_enqueued = on_enqueued
        self.outcomes: list[WatchOutcome] = []  # recent alerts, for tests

    async def run_once(self) -> list[WatchOutcome]:
        r = await self._db(self.rota.get)
        found = await self._db(scan_all, r)
        for out in found:
            logger.warning("risk watcher: %s message in held escalation %s; staff %s alerted",
                           out.level, out.ref, ",".join(out.staff) or "-")
        if found:
            self.outcomes = (self.outcomes + found)[-200:]
            if self.on_enqueued is not None and any(o.outbox_ids for o in found):
                self.on_enqueued()
        return found
