"""Blocking reads and writes behind the console's handlers (run in the DB thread pool).

Every change to an escalation writes its audit entry in the same transaction, and takes a
row lock first (``FOR UPDATE`` on PostgreSQL) so two staff pressing "Acknowledge" at once
produce one acknowledgement, not two.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from bot.duty import queries, transcripts
from bot.duty.models import SanctuaryBeds
from bot.escalation import audit
from bot.escalation import engine as escalation_engine
from bot.escalation.engine import LIVE_STATUSES
from bot.store.models import Escalation, EscalationEvent, utcnow

# Fixed outcome codes, one list for the console and the engine.
OUTCOMES = escalation_engine.OUTCOMES
MAX_FREE_BEDS = 50


class ActionRefused(Exception):
    """An acknowledge/resolve that does not fit the escalation's state (message for staff)."""


def queue(engine: Engine, now: dt.datetime) -> list[dict[str, Any]]:
    """The live queue: highest risk first, then longest wait. No summary, no conversation id."""
    rows = queries.list_escalations(engine, LIVE_STATUSES, [], 200, now)
    keep = ("ref", "level", "status", "channel", "created_at", "acknowledged_at", "waiting_seconds")
    return [{k: row[k] for k in keep} for row in rows]


@dataclass
class ConversationView:
    escalation: dict[str, Any]
    messages: list[transcripts.Message] = field(default_factory=list)
    cut: bool = False
    transcript_available: bool = True


def _by_ref(session: Session, ref: str, lock: bool = False) -> Optional[Escalation]:
    stmt = select(Escalation).where(Escalation.ref == ref.upper())
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def open_conversation(
    engine: Engine, ref: str, actor: str, with_transcript: bool, now: dt.datetime
) -> Optional[ConversationView]:
    """The escalation (and its transcript when allowed); the opening is audited first.

    The audit entry is committed before the transcript is read, so there is no way to see a
    transcript whose viewing was not recorded.
    """
    with Session(engine, future=True) as session, session.begin():
        esc = _by_ref(session, ref, lock=True)
        if esc is None:
            return None
        if with_transcript:
            audit.append(session, esc, "transcript_viewed", actor, reason="opened in the duty console")
        conversation_id = esc.conversation_id
        escalation_id = esc.id
    with Session(engine, future=True) as session:
        esc = session.execute(
            select(Escalation)
            .options(selectinload(Escalation.events))
            .where(Escalation.id == escalation_id)
        ).scalar_one()
        view = ConversationView(queries.escalation_json(esc, now))
    if with_transcript:
        with engine.connect() as conn:
            view.transcript_available = transcripts.events_table_exists(conn)
            view.messages, view.cut = transcripts.read(conn, conversation_id)
    return view


def acknowledge(engine: Engine, ref: str, actor: str) -> str:
    """The console's acknowledge: the engine's transition (stops the ladder), staff wording."""
    return _transition(engine, escalation_engine.acknowledge, ref, actor,
                       reason="acknowledged in the duty console")


def resolve(engine: Engine, ref: str, actor: str, outcome: str) -> str:
    """The console's resolve: refused while a person holds the conversation (hand back first)."""
    return _transition(engine, escalation_engine.resolve, ref, actor, outcome=outcome)


def _transition(engine: Engine, step, ref: str, actor: str, **kwargs: Any) -> str:
    with Session(engine, future=True) as session, session.begin():
        try:
            return step(ref, actor, session=session, **kwargs).ref
        except escalation_engine.NotFound:
            raise ActionRefused("No such escalation.") from None
        except escalation_engine.TransitionError as exc:
            raise ActionRefused(str(exc)) from None


def tonight(tz_name: str, now: Optional[dt.datetime] = None) -> dt.date:
    """The date a night started on: before noon local time we are still in last night."""
    local = (now or utcnow()).astimezone(ZoneInfo(tz_name))
    return (local - dt.timedelta(hours=12)).date()


def referrals(engine: Engine, house: Optional[str], now: dt.datetime) -> list[dict[str, Any]]:
    """Live referrals, to ``house`` only (a volunteer) or to every house (None: a manager).

    The house is in the ``data`` of the latest ``referred`` audit entry (see takeover.py); the
    filter runs in Python because JSON queries differ between SQLite and PostgreSQL, and a
    night's referrals are a handful.
    """
    with Session(engine, future=True) as session:
        rows = session.execute(
            select(Escalation)
            .options(selectinload(Escalation.events))
            .where(Escalation.status == "referred")
            .order_by(Escalation.created_at)
        ).scalars().all()
        out = []
        for esc in rows:
            referred = [ev for ev in esc.events if ev.kind == "referred"]
            to = (referred[-1].data or {}).get("house") if referred else None
            if to is None or (house is not None and to != house):
                continue
            item = queries.escalation_json(esc, now)
            # A house needs the "tell it once" summary and the risk, not the audit trail.
            item.pop("events", None)
            item["house"] = to
            out.append(item)
        return out


def beds(engine: Engine, night: dt.date) -> dict[str, dict[str, Any]]:
    with Session(engine, future=True) as session:
        rows = session.execute(select(SanctuaryBeds).where(SanctuaryBeds.night == night)).scalars()
        return {
            r.house: {"free_beds": r.free_beds, "updated_by": r.updated_by,
                      "updated_at": queries.iso(r.updated_at)}
            for r in rows
        }


def set_beds(engine: Engine, house: str, night: dt.date, free_beds: int, actor: str) -> None:
    if not 0 <= free_beds <= MAX_FREE_BEDS:
        raise ActionRefused(f"Free beds must be a number from 0 to {MAX_FREE_BEDS}.")
    with Session(engine, future=True) as session, session.begin():
        row = session.execute(
            select(SanctuaryBeds)
            .where(SanctuaryBeds.house == house, SanctuaryBeds.night == night)
            .with_for_update()
        ).scalar_one_or_none()
        if row is None:
            session.add(SanctuaryBeds(house=house, night=night, free_beds=free_beds,
                                      updated_by=actor, updated_at=utcnow()))
        else:
            row.free_beds = free_beds
            row.updated_by = actor
            row.updated_at = utcnow()


def audit_count(engine: Engine, ref: str, kind: str) -> int:
    """How many audit entries of ``kind`` an escalation has (tests and the metrics page)."""
    with Session(engine, future=True) as session:
        return len(
            session.execute(
                select(EscalationEvent.id)
                .join(Escalation, Escalation.id == EscalationEvent.escalation_id)
                .where(Escalation.ref == ref.upper(), EscalationEvent.kind == kind)
            ).all()
        )
