"""The plan's database side: the encrypted plan, consent, and where building has got to.

Every function takes an optional ``session`` (the caller's transaction) and otherwise opens its
own (``bot.store.db.transaction``), as the feedback survey does. Nothing here logs what a
person wrote: a log line names a fixed reason word only (never the conversation's words, and
the plan's only ever as ciphertext in ``crisis_plans``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Callable, Dict, FrozenSet, Optional, TypeVar

from sqlalchemy import delete, inspect, select
from sqlalchemy.orm import Session

from bot.plan import crypto, flow
from bot.store.db import transaction
from bot.store import rasa_events
from bot.store.models import Escalation, EscalationEvent, utcnow
from bot.store.models.plan import CrisisPlan, PlanSession

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A step nobody answered within this long is over: a "yes" next week is not an answer to it.
SESSION_TTL = dt.timedelta(hours=12)
RESOLVED = "resolved"
# The emergency's slot (domain.yml; named here so the plan does not load the escalation
# layer's memory of risk) and the entry its stand-down writes on the escalation.
SLOT_EMERGENCY = "risk_emergency"
SAID_SAFE = "said_safe"

UNREADABLE = ("Sorry, I can't open your saved plan right now, so our team can't see it either. "
              "You can still talk to me here, or ask for a person from our team. If you are "
              "in danger call 999. Samaritans: 116 123 (free, 24/7). NHS 111, option 2.")


def _in_txn(fn: Callable[..., T], session: Optional[Session], *args, **kwargs) -> T:
    if session is not None:
        return fn(session, *args, **kwargs)
    with transaction() as own:
        return fn(own, *args, **kwargs)


def _aware(at: Optional[dt.datetime]) -> Optional[dt.datetime]:
    if at is not None and at.tzinfo is None:  # SQLite gives naive UTC
        return at.replace(tzinfo=dt.timezone.utc)
    return at


def in_emergency(session: Session, conversation_id: str) -> bool:
    """Imminent risk now: the conversation's ``risk_emergency`` slot is on (Rasa's events
    table), or an imminent escalation is unresolved and the person has not confirmed they are
    safe (its ``said_safe`` entry, written as the emergency stands down)."""
    if inspect(session.connection()).has_table("events"):
        slots = rasa_events.latest_slots(session, conversation_id, (SLOT_EMERGENCY,))
        if slots.get(SLOT_EMERGENCY) is True:
            return True
    imminent = session.execute(
        select(Escalation.id).where(Escalation.conversation_id == conversation_id,
                                    Escalation.status != RESOLVED,
                                    Escalation.level == "imminent")
    ).scalars().all()
    if not imminent:
        return False
    safe = session.execute(
        select(EscalationEvent.escalation_id).where(EscalationEvent.escalation_id.in_(imminent),
                                                    EscalationEvent.kind == SAID_SAFE)
    ).scalars().all()
    return bool(set(imminent) - set(safe))


def _sections(row: Optional[CrisisPlan]) -> Optional[Dict[str, str]]:
    return None if row is None else crypto.open_sealed(row.ciphertext)


def _handle(session: Session, conversation_id: str, text: str, channel: str, risk: bool,
            now: dt.datetime) -> Optional[flow.Outcome]:
    live = session.get(PlanSession, conversation_id, with_for_update=True)
    if live is not None and now - _aware(live.updated_at) > SESSION_TTL:
        session.delete(live)
        live = None
    state = None if live is None else flow.State(live.stage, live.position, live.editing)
    if state is None and flow.command(text) is None:
        return None  # not the plan's (no risk check needed: nothing to pause)
    plan = session.get(CrisisPlan, conversation_id, with_for_update=True)
    try:
        sections = _sections(plan)
    except crypto.PlanUnreadable:
        logger.error("plan: a stored plan cannot be decrypted (PLAN_KEY changed?)")
        if live is not None:
            session.delete(live)
        if risk:
            return flow.Outcome(None, passthrough=True)
        return flow.Outcome(None, (flow.Reply(UNREADABLE),))
    known = flow.Known(sections, plan.share if plan is not None else None,
                       in_emergency(session, conversation_id))
    outcome = flow.reply(state, text, known, risk=risk, sms=channel == "sms")
    if outcome is None:
        return None
    if outcome.delete and plan is not None:
        session.delete(plan)
        plan = None
        logger.info("plan: deleted at the person's word")
    if outcome.save is not None:
        section, words = outcome.save
        merged = dict(sections or {})
        merged[section] = words
        if plan is None:
            plan = CrisisPlan(conversation_id=conversation_id, created_at=now)
            session.add(plan)
        plan.ciphertext = crypto.seal(merged)
        plan.updated_at = now
    if outcome.consent is not None and plan is not None:
        plan.share, plan.share_at = outcome.consent, now
        logger.info("plan: sharing with staff %s", "given" if outcome.consent else "refused")
    if outcome.state is None:
        if live is not None:
            session.delete(live)
    elif live is None:
        session.add(PlanSession(conversation_id=conversation_id, stage=outcome.state.stage,
                                position=outcome.state.position,
                                editing=outcome.state.editing, channel=channel, updated_at=now))
    else:
        live.stage, live.position = outcome.state.stage, outcome.state.position
        live.editing, live.channel, live.updated_at = outcome.state.editing, channel, now
    if risk and state is not None:
        logger.info("plan: building paused (risk shown)")
    return outcome


def handle(conversation_id: str, text: str, channel: str, *, risk: bool = False,
           now: Optional[dt.datetime] = None,
           session: Optional[Session] = None) -> Optional[flow.Outcome]:
    """The plan's step for the person's message, stored; None when the message is not the
    plan's (no live session, not a plan word). ``risk``: the message shows urgent or imminent
    risk (then it is the dialogue's, and building pauses)."""
    return _in_txn(_handle, session, conversation_id, text, channel, risk, now or utcnow())


def stop(conversation_id: str, session: Optional[Session] = None) -> bool:
    """End any building under way (an SMS opt-out word): what was saved stays."""
    return _in_txn(lambda s: bool(s.execute(
        delete(PlanSession).where(PlanSession.conversation_id == conversation_id)
        .execution_options(synchronize_session=False)).rowcount), session)


def live_conversations(session: Optional[Session] = None) -> FrozenSet[str]:
    """Every conversation building its plan now (a handful): ``bot/plan/live.py`` reads this
    at most once a second instead of a look-up a turn."""
    since = utcnow() - SESSION_TTL
    return _in_txn(lambda s: frozenset(s.execute(
        select(PlanSession.conversation_id).where(PlanSession.updated_at >= since)
    ).scalars()), session)


def has_plan(conversation_id: str, session: Optional[Session] = None) -> bool:
    """Whether the person has a plan saved (no decryption: for the wait's offer and others)."""
    return _in_txn(lambda s: s.get(CrisisPlan, conversation_id) is not None, session)


def _forget(session: Session, conversation_id: str) -> bool:
    gone = session.execute(delete(CrisisPlan).where(CrisisPlan.conversation_id == conversation_id)
                           .execution_options(synchronize_session=False)).rowcount
    session.execute(delete(PlanSession).where(PlanSession.conversation_id == conversation_id)
                    .execution_options(synchronize_session=False))
    return bool(gone)


def forget(conversation_id: str, session: Optional[Session] = None) -> bool:
    """Delete the person's plan, their consent to share it (kept on the plan's row) and any
    building under way: for "forget me". True when there was a plan."""
    return _in_txn(_forget, session, conversation_id)


def load(conversation_id: str, session: Optional[Session] = None) -> Optional[Dict[str, str]]:
    """The plan's sections, decrypted (tests, and the console through ``reading``)."""
    return _in_txn(lambda s: _sections(s.get(CrisisPlan, conversation_id)), session)


def consent(conversation_id: str, session: Optional[Session] = None) -> Optional[bool]:
    """The person's answer to sharing their plan (None: no plan, or not asked)."""
    def read(s: Session) -> Optional[bool]:
        row = s.get(CrisisPlan, conversation_id)
        return None if row is None else row.share
    return _in_txn(read, session)
