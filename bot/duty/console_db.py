"""Blocking reads and writes behind the console's handlers (run in the DB thread pool).

Every change to an escalation writes its audit entry in the same transaction, and takes a
row lock first (``FOR UPDATE`` on PostgreSQL) so two staff pressing "Acknowledge" at once
produce one acknowledgement, not two.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from bot.directory import beds as beds_module
from bot.duty import queries, transcripts
from bot.store.models.duty import SanctuaryBeds
from bot.escalation import audit
from bot.escalation import engine as escalation_engine
from bot.escalation.engine import LIVE_STATUSES
from bot.plan import reading as plan_reading
from bot.store.models import Escalation, EscalationEvent

Message = transcripts.Message

# Fixed outcome codes, one list for the console and the engine.
OUTCOMES = escalation_engine.OUTCOMES
MAX_FREE_BEDS = beds_module.MAX_FREE_BEDS
# "Read what they said anyway" after a refusal to share: the audit entry, and how long the
# typed reason may be (it goes on the trail, which the API shows).
OVERRIDE_KIND = "transcript_read_despite_refusal"  # kind is at most 32 characters
MAX_OVERRIDE_REASON = 300
# The risk guard's levels on a person's message, lowest first (for "held back, including
# a message read as urgent").
_MESSAGE_RISK = ("concern", "urgent", "imminent")


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
    # The person said NO to sharing: ``held_back`` messages from before it are not shown
    # (unless this member of staff gave a reason to read them: ``overridden``).
    sharing_refused: bool = False
    held_back: int = 0
    held_back_risk: Optional[str] = None  # the highest risk the guard read in them
    overridden: bool = False
    read_upto: int = 0  # the last tracker row read, shown or held back
    # The conversation's memory of risk (its highest level, and whether the emergency is still
    # on): shown whatever the person said about sharing, as the risk level is.
    conversation_risk: Optional[dict[str, Any]] = None
    # The person's own plan (docs/plan.md): its words only when they agreed to share it, and
    # only after this viewing went on the trail (``plan_reading``).
    plan: plan_reading.StaffView = field(default_factory=plan_reading.StaffView)

    @property
    def cursor(self) -> int:
        """Where the page's live updates start: the last tracker row read (held back or not)."""
        return max(self.read_upto, max((m.seq for m in self.messages), default=0))


@dataclass(frozen=True)
class HoldBack:
    """What a refusal to share holds back of one escalation's transcript, for one viewer."""

    refused: bool = False
    before: float = -math.inf  # messages stored before this moment (epoch seconds)
    overridden: bool = False

    def split(self, messages: list[Message]) -> tuple[list[Message], list[Message]]:
        """(shown, held back)."""
        if not self.refused or self.overridden:
            return messages, []
        return ([m for m in messages if m.ts >= self.before],
                [m for m in messages if m.ts < self.before])


def _epoch(value: dt.datetime) -> float:
    return _aware(value).timestamp()


def hold_back(esc: Escalation, actor: str, signed_in_at: Optional[dt.datetime]) -> HoldBack:
    """Which messages a recorded NO to sharing holds back from ``actor`` (events loaded).

    Held back: what the person said before the refusal was recorded, which is what they
    asked not to be passed on. Always shown: what came after it, and everything once a human
    took over (that is the live conversation staff must be able to follow). A refusal with no
    ``consent_recorded`` entry (written straight into the summary) holds back everything
    before a take-over. Reading them anyway needs an ``OVERRIDE_KIND`` entry by ``actor``
    since they signed in and since the latest refusal.
    """
    if not queries.sharing_refused(esc.summary):
        return HoldBack()
    refusals = [
        ev.at for ev in esc.events
        if ev.kind == "consent_recorded" and (ev.data or {}).get("topic") == "share_summary"
        and (ev.data or {}).get("given") is False
    ]
    taken = [ev.at for ev in esc.events if ev.kind == "taken_over"]
    cutoffs = [_epoch(max(refusals, key=_aware))] if refusals else []
    if taken:
        cutoffs.append(_epoch(min(taken, key=_aware)))
    before = min(cutoffs) if cutoffs else math.inf
    since = [_epoch(signed_in_at)] if signed_in_at is not None else []
    if refusals:
        since.append(_epoch(max(refusals, key=_aware)))
    overridden = signed_in_at is not None and any(
        ev.kind == OVERRIDE_KIND and ev.actor == actor and _epoch(ev.at) >= max(since)
        for ev in esc.events
    )
    return HoldBack(True, before, overridden)


def _highest_risk(messages: list[Message]) -> Optional[str]:
    found = [m.risk for m in messages if m.risk in _MESSAGE_RISK]
    return max(found, key=_MESSAGE_RISK.index) if found else None


@dataclass
class LiveUpdate:
    """New messages for the conversation page's live transcript (``messages.json``)."""

    status: str
    messages: list[transcripts.Message]
    cursor: int
    opening_recorded: bool  # this poll wrote the viewer's transcript_viewed entry


def _by_ref(session: Session, ref: str, lock: bool = False) -> Optional[Escalation]:
    stmt = select(Escalation).where(Escalation.ref == ref.upper())
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def open_conversation(
    engine: Engine, ref: str, actor: str, with_transcript: bool, now: dt.datetime,
    signed_in_at: Optional[dt.datetime] = None,
) -> Optional[ConversationView]:
    """The escalation (and its transcript when allowed); the opening is audited first.

    The audit entry is committed before the transcript is read, so there is no way to see a
    transcript whose viewing was not recorded; the same holds for the person's own plan,
    shown beside the summary only when they agreed to share it (a ``plan_viewed`` entry). A
    refusal to share holds part of the transcript back (``hold_back``); ``signed_in_at``
    dates this viewer's session, for the override.
    """
    with Session(engine, future=True) as session, session.begin():
        esc = _by_ref(session, ref, lock=True)
        if esc is None:
            return None
        plan_shared = False
        if with_transcript:
            audit.append(session, esc, "transcript_viewed", actor, reason="opened in the duty console")
            plan_shared = plan_reading.standing(session, esc.conversation_id) == plan_reading.SHARED
            if plan_shared:
                audit.append(session, esc, plan_reading.KIND, actor, reason=plan_reading.REASON)
        conversation_id = esc.conversation_id
        escalation_id = esc.id
    with Session(engine, future=True) as session:
        esc = session.execute(
            select(Escalation)
            .options(selectinload(Escalation.events))
            .where(Escalation.id == escalation_id)
        ).scalar_one()
        view = ConversationView(queries.escalation_json(esc, now))
        held = hold_back(esc, actor, signed_in_at)
        if with_transcript:
            view.plan = (plan_reading.words(session, conversation_id) if plan_shared
                         else plan_reading.StaffView(plan_reading.standing(session, conversation_id)))
    view.sharing_refused, view.overridden = held.refused, held.overridden
    with engine.connect() as conn:
        view.conversation_risk = transcripts.conversation_risk(conn, conversation_id)
    if with_transcript:
        with engine.connect() as conn:
            view.transcript_available = transcripts.events_table_exists(conn)
            messages, view.cut = transcripts.read(conn, conversation_id)
        view.read_upto = max((m.seq for m in messages), default=0)
        view.messages, hidden = held.split(messages)
        view.held_back, view.held_back_risk = len(hidden), _highest_risk(hidden)
    return view


def read_despite_refusal(engine: Engine, ref: str, actor: str, reason: str) -> bool:
    """Record that ``actor`` reads what the person asked not to be passed on, and why.

    Written (and committed) before anything is shown, like every opening of a transcript;
    the reason and the staff id go on the trail, never any message text. False when there
    is no such escalation.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise ActionRefused("Say why you need to read it (for example: risk to life).")
    if len(reason) > MAX_OVERRIDE_REASON:
        raise ActionRefused(f"Keep the reason to {MAX_OVERRIDE_REASON} characters.")
    with Session(engine, future=True) as session, session.begin():
        esc = _by_ref(session, ref, lock=True)
        if esc is None:
            return False
        if not queries.sharing_refused(esc.summary):
            raise ActionRefused("They have not refused sharing: the whole transcript is shown.")
        audit.append(session, esc, OVERRIDE_KIND, actor, reason=reason,
                     data={"topic": "share_summary"})
    return True


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes; everything stored here is UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def new_messages(
    engine: Engine, ref: str, actor: str, after: int, signed_in_at: dt.datetime
) -> Optional[LiveUpdate]:
    """Messages after tracker row ``after``, for a conversation page that is already open.

    The opening of a transcript is what the audit trail records, not each poll (a page open
    for an hour polls a thousand times). So the poll first looks for this member of staff's
    ``transcript_viewed`` entry since they signed in; without one (a script, or a page kept
    open across a new sign-in) it writes one, committed before anything is read, so no
    transcript is ever read unrecorded.
    """
    with Session(engine, future=True) as session, session.begin():
        esc = _by_ref(session, ref)
        if esc is None:
            return None
        opened_at = session.execute(
            select(EscalationEvent.at).where(
                EscalationEvent.escalation_id == esc.id,
                EscalationEvent.kind == "transcript_viewed",
                EscalationEvent.actor == actor,
            )
        ).scalars().all()
        recorded = not any(_aware(at) >= signed_in_at for at in opened_at)
        if recorded:
            esc = _by_ref(session, ref, lock=True)
            audit.append(session, esc, "transcript_viewed", actor,
                         reason="live transcript opened in the duty console")
        conversation_id, status = esc.conversation_id, esc.status
        # The same hold-back as the page: a poll from the start must not leak what a
        # refusal to share holds back (``esc.events`` loads here, in this session).
        held = hold_back(esc, actor, signed_in_at)
    with engine.connect() as conn:
        messages, cursor = transcripts.read_after(conn, conversation_id, after)
    return LiveUpdate(status, held.split(messages)[0], cursor, recorded)


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


tonight = beds_module.tonight  # the night's date, shared with the directory's count


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
    """The house's count for the night: the one count signposting and referrals use."""
    if not 0 <= free_beds <= MAX_FREE_BEDS:
        raise ActionRefused(f"Free beds must be a number from 0 to {MAX_FREE_BEDS}.")
    with Session(engine, future=True) as session, session.begin():
        beds_module.set_free(session, house, night, free_beds, actor)


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
