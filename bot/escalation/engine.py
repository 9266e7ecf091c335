"""Escalations: the one place the assistant asks for a human.

``record_escalation`` is the function the dialogue calls (through the action server) whenever
it sees risk or a person asks for a human. Alerts, timers and takeover build on the rows it
writes. A level is only ever raised, never lowered.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.escalation import audit, flood
from bot.store.models.handoff import (
    JOB_CANCELLED,
    JOB_PENDING,
    KIND_TELL_ACCEPTED,
    KIND_TELL_DECLINED,
    KIND_TIER,
    AlertJob,
)
from bot.store.db import transaction
from bot.store.models import Escalation, utcnow
from bot.store.queue import notify

LEVELS = ("support", "urgent", "imminent")
RANK = {level: i for i, level in enumerate(LEVELS)}
# Statuses in which an escalation still needs (or has) a human.
LIVE_STATUSES = ("open", "alerted", "acknowledged", "active", "referred")
_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed on phones


def new_ref() -> str:
    return "E" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(5))


@dataclass(frozen=True)
class EscalationRecord:
    id: int
    ref: str
    level: str
    status: str
    created: bool  # False when an escalation for this conversation was already live


def _merge_summary(current: Dict[str, Any], update: Dict[str, Any]) -> Dict[str, Any]:
    merged = dict(current)
    for key, value in update.items():
        if isinstance(value, list):
            seen = list(merged.get(key) or [])
            merged[key] = seen + [v for v in value if v not in seen]
        elif isinstance(value, dict):
            # Consent answers already recorded survive a later turn's summary (which the
            # actions build with an empty ``consent``): keys are added or updated, never lost.
            merged[key] = {**(merged.get(key) or {}), **value}
        elif value is not None:
            merged[key] = value
    return merged


def record_escalation(
    conversation_id: str,
    level: str,
    signals: Iterable[str] = (),
    channel: str = "unknown",
    summary: Optional[Dict[str, Any]] = None,
    actor: str = "assistant",
    session: Optional[Session] = None,
) -> EscalationRecord:
    """Open an escalation for ``conversation_id``, or raise the live one's level.

    Idempotent per conversation: while an escalation is live, further calls add signals and
    summary to it (and raise its level when higher) rather than opening a second one.
    """
    if level not in RANK:
        raise ValueError(f"unknown escalation level {level!r}; expected one of {LEVELS}")
    if session is None:
        with transaction() as own:
            return record_escalation(
                conversation_id, level, signals, channel, summary, actor, session=own
            )

    signals = list(dict.fromkeys(signals))
    summary = summary or {}
    live = session.execute(
        select(Escalation)
        .where(Escalation.conversation_id == conversation_id)
        .where(Escalation.status.in_(LIVE_STATUSES))
        .order_by(Escalation.id.desc())
        .limit(1)
    ).scalar_one_or_none()

    if live is None:
        now = utcnow()
        escalation = Escalation(
            ref=new_ref(),
            conversation_id=conversation_id,
            channel=channel,
            level=level,
            status="open",
            signals=signals,
            summary=_merge_summary({}, summary),
            created_at=now,
            updated_at=now,
        )
        session.add(escalation)
        session.flush()
        audit.append(
            session, escalation, "created", actor, reason=f"{level} escalation opened",
            data={"level": level, "signals": signals, "channel": channel},
        )
        # The first tier's alert is owed from this commit on: the dispatcher finds it even if
        # every process dies right after the assistant's turn. Unless it is one of a burst
        # from web chat staff were already alerted to: then it waits in the queue.
        if not flood.hold_new_escalation(session, escalation, now):
            schedule_alert(session, escalation, level, step=0, due_at=now)
        return EscalationRecord(escalation.id, escalation.ref, level, "open", True)

    changed: List[str] = []
    new_signals = [s for s in signals if s not in (live.signals or [])]
    if new_signals:
        live.signals = list(live.signals or []) + new_signals
        changed.append("signals")
    if summary:
        live.summary = _merge_summary(live.summary or {}, summary)
    if RANK[level] > RANK[live.level]:
        previous = live.level
        live.level = level
        audit.append(
            session, live, "level_raised", actor, reason=f"{previous} -> {level}",
            data={"from": previous, "to": level, "signals": new_signals},
        )
        if live.status in ALERTABLE:
            # Nobody has it yet: restart the ladder at the higher level's first tier now
            # (an imminent ladder skips peer workers), instead of waiting out a support timer.
            cancel_alerts(session, live.id)
            schedule_alert(session, live, level, step=0, due_at=utcnow())
    elif changed:
        audit.append(
            session, live, "signals_added", actor, reason="further risk signals",
            data={"signals": new_signals},
        )
    live.updated_at = utcnow()
    session.flush()
    return EscalationRecord(live.id, live.ref, live.level, live.status, False)


def flag_for_staff(
    conversation_id: str,
    kind: str,
    reason: str,
    data: Optional[Dict[str, Any]] = None,
    level: Optional[str] = None,
    channel: str = "unknown",
    actor: str = "system",
    session: Optional[Session] = None,
) -> Optional[EscalationRecord]:
    """Tell staff about something on a conversation (a failed delivery, an opt-out, a failed turn).

    The entry goes on the conversation's live escalation. With no live escalation, ``level``
    decides: given, one is opened at that level; None, nothing is recorded and None returned.
    ``data`` must never hold message text or phone numbers.
    """
    if session is None:
        with transaction() as own:
            return flag_for_staff(
                conversation_id, kind, reason, data, level, channel, actor, session=own
            )
    live = session.execute(
        select(Escalation)
        .where(Escalation.conversation_id == conversation_id)
        .where(Escalation.status.in_(LIVE_STATUSES))
        .order_by(Escalation.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if live is None:
        if level is None:
            return None
        record = record_escalation(
            conversation_id, level, [], channel=channel, actor=actor, session=session
        )
        live = session.get(Escalation, record.id)
    audit.append(session, live, kind, actor, reason=reason, data=data or {})
    live.updated_at = utcnow()
    session.flush()
    return EscalationRecord(live.id, live.ref, live.level, live.status, False)


# --- the state machine -----------------------------------------------------------------------

# Statuses in which nobody has picked the escalation up: the ladder keeps climbing.
ALERTABLE = ("open", "alerted")
# Default time each tier has to acknowledge before the next is alerted;
# ESCALATION_ACK_TIMEOUT_S overrides every level (tests, drills).
DEFAULT_ACK_TIMEOUT_S = {"imminent": 60, "urgent": 120, "support": 15 * 60}
# Outcome codes for resolve: a fixed list, never free text, because the trail is kept forever
# and a note would invite names and numbers into it. The console shows these labels.
OUTCOMES = {
    "supported": "Supported by staff; no further action tonight",
    "signposted": "Signposted to a service open now",
    "crisis_team": "Passed to the crisis team",
    "emergency_services": "Emergency services involved (999)",
    "sanctuary_stay": "Stayed at a sanctuary house",
    "no_reply": "Person stopped replying",
    "duplicate": "Duplicate of another escalation",
    "other": "Other (details recorded in the clinical record)",
}


class TransitionError(ValueError):
    """A step that does not fit the escalation's state; the message is fit to show staff."""


class NotFound(TransitionError):
    """No escalation with that reference or id."""


def ack_timeout_s(level: str, override: Optional[int] = None) -> float:
    if override is None:
        from bot.settings import settings

        override = settings().escalation_ack_timeout_s
    return float(override) if override else float(DEFAULT_ACK_TIMEOUT_S[level])


# After the whole ladder went unacknowledged, the duty managers on call (or, with none, whoever
# is on call then: ``dispatch.reminder_recipients``) are alerted again at this interval until
# someone acknowledges. ESCALATION_ACK_TIMEOUT_S scales it with the same
# ratio to the level's tier timeout (imminent 5x, urgent 2.5x, support 1x), so tests and drills
# see the repeats in seconds.
DEFAULT_REALERT_S = {"imminent": 5 * 60, "urgent": 5 * 60, "support": 15 * 60}


def realert_interval_s(level: str, override: Optional[int] = None) -> float:
    if override is None:
        from bot.settings import settings

        override = settings().escalation_ack_timeout_s
    if override:
        return float(override) * DEFAULT_REALERT_S[level] / DEFAULT_ACK_TIMEOUT_S[level]
    return float(DEFAULT_REALERT_S[level])


# PostgreSQL channel on which a job that is due now is announced (``announce_due``); the duty
# service LISTENs on it (``bot/escalation/wakeup.py``) and wakes its dispatcher.
ALERT_CHANNEL = "escalation_alerts"


def announce_due(session: Session, job_id: int) -> None:
    """Tell listening dispatchers that alert job ``job_id`` is due, when this transaction commits.

    PostgreSQL holds a NOTIFY until the commit and drops it on a rollback, so a dispatcher is
    never woken for a job that does not exist. The payload is the job's id only: anyone
    connected to the database may LISTEN, so never text, numbers or references. Elsewhere
    (SQLite) this does nothing and the dispatcher's poll finds the job.
    """
    notify(session, ALERT_CHANNEL, str(int(job_id)))


def schedule_alert(
    session: Session, escalation: Escalation, level: str, step: int, due_at, kind: str = KIND_TIER
) -> AlertJob:
    job = AlertJob(
        escalation_id=escalation.id, level=level, kind=kind, step=step, status=JOB_PENDING,
        due_at=due_at, attempts=0, created_at=utcnow(),
    )
    session.add(job)
    session.flush()
    due = due_at if due_at.tzinfo is not None else due_at.replace(tzinfo=dt.timezone.utc)
    if due <= utcnow():
        # Due now (a new escalation, a raised level, a skipped tier, a house's answer): wake a
        # dispatcher on commit instead of leaving the job to its next poll. Later jobs (the
        # ladder's timeouts) are found by the poll when they fall due.
        announce_due(session, job.id)
    return job


def cancel_alerts(session: Session, escalation_id: int) -> int:
    """Stop the ladder: every alert still owed for the escalation is cancelled.

    Only pending jobs are touched; a job a dispatcher holds right now is checked against the
    escalation's status under the escalation's row lock before anything is sent.
    """
    result = session.execute(
        update(AlertJob)
        .where(AlertJob.escalation_id == escalation_id, AlertJob.status == JOB_PENDING)
        .values(status=JOB_CANCELLED, done_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def load(session: Session, ref_or_id: "str | int", lock: bool = True) -> Escalation:
    """The escalation by reference (``E7K2Q``, any case) or numeric id, row-locked."""
    stmt = select(Escalation)
    if isinstance(ref_or_id, int) or str(ref_or_id).isdigit():
        stmt = stmt.where(Escalation.id == int(ref_or_id))
    else:
        stmt = stmt.where(Escalation.ref == str(ref_or_id).strip().upper())
    if lock:
        # FOR UPDATE on PostgreSQL (SQLite has one writer anyway): two staff pressing the same
        # button at once give one transition, the second sees the new state and is refused.
        stmt = stmt.with_for_update()
    esc = session.execute(stmt).scalar_one_or_none()
    if esc is None:
        raise NotFound(f"No escalation {ref_or_id}.")
    return esc


def _record(esc: Escalation) -> EscalationRecord:
    return EscalationRecord(esc.id, esc.ref, esc.level, esc.status, False)


def _require(esc: Escalation, allowed: Iterable[str], doing: str) -> None:
    if esc.status not in allowed:
        raise TransitionError(f"Cannot {doing} {esc.ref}: it is {esc.status}.")


def _in_txn(fn, session: Optional[Session], *args, **kwargs):
    if session is not None:
        return fn(session, *args, **kwargs)
    with transaction() as own:
        return fn(own, *args, **kwargs)


def taken_by(session: Session, escalation_id: int) -> Optional[Dict[str, Any]]:
    """Who has the conversation now: the data of the last take-over, unless handed back since."""
    from bot.store.models import EscalationEvent

    last = session.execute(
        select(EscalationEvent)
        .where(EscalationEvent.escalation_id == escalation_id,
               EscalationEvent.kind.in_(("taken_over", "handed_back")))
        .order_by(EscalationEvent.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    if last is None or last.kind != "taken_over":
        return None
    return dict(last.data or {})


def _acknowledge(session: Session, ref_or_id, actor: str, reason: str) -> EscalationRecord:
    esc = load(session, ref_or_id)
    _require(esc, ALERTABLE, "acknowledge")
    now = utcnow()
    previous = esc.status
    esc.status = "acknowledged"
    esc.acknowledged_at = now
    esc.updated_at = now
    stopped = cancel_alerts(session, esc.id)
    audit.append(session, esc, "acknowledged", actor, reason=reason,
                 data={"from": previous, "alerts_cancelled": stopped}, at=now)
    return _record(esc)


def acknowledge(
    ref_or_id: "str | int", actor: str, reason: str = "acknowledged",
    session: Optional[Session] = None,
) -> EscalationRecord:
    """open/alerted -> acknowledged; stops the ladder."""
    return _in_txn(_acknowledge, session, ref_or_id, actor, reason)


def _take_over(session: Session, ref_or_id, actor: str, display_name: str, reason: str):
    esc = load(session, ref_or_id)
    _require(esc, ALERTABLE + ("acknowledged",), "take over")
    now = utcnow()
    if esc.status in ALERTABLE:
        # Taking a conversation over is the strongest acknowledgement there is: record it as
        # one, so the time to a human and the ladder both see it.
        _acknowledge(session, esc.id, actor, "acknowledged by taking over")
    esc.status = "active"
    esc.updated_at = now
    audit.append(session, esc, "taken_over", actor, reason=reason,
                 data={"staff": actor, "display_name": display_name})
    return _record(esc)


def take_over(
    ref_or_id: "str | int", actor: str, display_name: str, reason: str = "taken over",
    session: Optional[Session] = None,
) -> EscalationRecord:
    """open/alerted/acknowledged -> active: a human has the conversation, the assistant stops."""
    if not display_name or not display_name.strip():
        raise TransitionError("A display name (first name or role) is needed to take over.")
    return _in_txn(_take_over, session, ref_or_id, actor, display_name.strip(), reason)


def _hand_back(session: Session, ref_or_id, actor: str, reason: str) -> EscalationRecord:
    esc = load(session, ref_or_id)
    holder = taken_by(session, esc.id)
    if not (esc.status == "active" or (esc.status == "referred" and holder)):
        raise TransitionError(f"Cannot hand back {esc.ref}: it is {esc.status}.")
    holder = holder or {}
    # A referral in progress stays a referral; otherwise a human has seen it: acknowledged.
    esc.status = "referred" if esc.status == "referred" else "acknowledged"
    esc.updated_at = utcnow()
    # Anyone on duty may hand back (a taker who has gone off shift must not leave the person
    # with a silent assistant); the trail says who did and who held it.
    audit.append(session, esc, "handed_back", actor, reason=reason,
                 data={"held_by": holder.get("staff")})
    return _record(esc)


def hand_back(
    ref_or_id: "str | int", actor: str, reason: str = "handed back to the assistant",
    session: Optional[Session] = None,
) -> EscalationRecord:
    """active -> acknowledged (referred stays referred): the assistant answers again."""
    return _in_txn(_hand_back, session, ref_or_id, actor, reason)


def _resolve(session: Session, ref_or_id, actor: str, outcome: str) -> EscalationRecord:
    if outcome not in OUTCOMES:
        raise TransitionError("Choose an outcome from the list.")
    esc = load(session, ref_or_id)
    if esc.status == "active":
        # Resolving here would leave the assistant paused on a conversation nobody holds.
        raise TransitionError(f"Hand {esc.ref} back to the assistant before resolving it.")
    _require(esc, LIVE_STATUSES, "resolve")
    now = utcnow()
    previous = esc.status
    esc.status = "resolved"
    esc.resolved_at = now
    esc.updated_at = now
    cancel_alerts(session, esc.id)
    audit.append(session, esc, "resolved", actor, reason=OUTCOMES[outcome],
                 data={"outcome": outcome, "from": previous}, at=now)
    return _record(esc)


def resolve(
    ref_or_id: "str | int", actor: str, outcome: str, session: Optional[Session] = None
) -> EscalationRecord:
    """Any live status except active -> resolved, with an outcome code from ``OUTCOMES``."""
    return _in_txn(_resolve, session, ref_or_id, actor, outcome)


# What the "tell it once" summary says to staff about sharing, by the person's answer to
# "may I pass on what you've told me?" (topic ``share_summary``).
SHARING_NOTE = {
    True: "consent given: the person agreed to this summary being passed on",
    False: "consent NOT given: the person would rather tell you themselves; ask them, and "
           "use what is here only as far as their safety needs",
}


def _record_consent(session: Session, ref_or_id, topic: str, given: bool, actor: str):
    esc = load(session, ref_or_id)
    consent = dict((esc.summary or {}).get("consent") or {})
    consent[topic] = bool(given)
    # A new dict: JSON columns only notice reassignment, not in-place changes.
    summary = {**(esc.summary or {}), "consent": consent}
    if topic == "share_summary":
        summary["sharing"] = SHARING_NOTE[bool(given)]
    esc.summary = summary
    esc.updated_at = utcnow()
    audit.append(session, esc, "consent_recorded", actor,
                 reason=f"consent to {topic}: {'given' if given else 'refused'}",
                 data={"topic": topic, "given": bool(given)})
    return _record(esc)


def record_consent(
    ref_or_id: "str | int", topic: str, given: bool, actor: str,
    session: Optional[Session] = None,
) -> EscalationRecord:
    """Record the person's answer to "may we share this with ...?" (e.g. topic ``sanctuary``)."""
    return _in_txn(_record_consent, session, ref_or_id, topic, given, actor)


def _refer(session: Session, ref_or_id, actor: str, house: str) -> EscalationRecord:
    esc = load(session, ref_or_id)
    _require(esc, ("acknowledged", "active"), "refer")
    if ((esc.summary or {}).get("consent") or {}).get("sanctuary") is not True:
        raise TransitionError(
            f"The person has not consented to a sanctuary referral for {esc.ref}; ask them first."
        )
    previous = esc.status
    esc.status = "referred"
    esc.updated_at = utcnow()
    audit.append(session, esc, "referred", actor, reason="referred to a sanctuary house",
                 data={"house": house, "from": previous})
    return _record(esc)


def refer(
    ref_or_id: "str | int", actor: str, house: str, session: Optional[Session] = None
) -> EscalationRecord:
    """acknowledged/active -> referred, only with the person's consent to a referral."""
    return _in_txn(_refer, session, ref_or_id, actor, house)


def _mark_alerted(session: Session, esc: Escalation, actor: str, reason: str, data) -> None:
    """Used by the dispatcher inside its own transaction (the escalation already locked)."""
    if esc.status == "open":
        esc.status = "alerted"
    esc.updated_at = utcnow()
    audit.append(session, esc, "alerted", actor, reason=reason, data=data)


def referred_house(session: Session, escalation_id: int) -> Optional[Dict[str, Any]]:
    """The data of the latest ``referred`` entry (``{"house", "from"}``), or None."""
    from bot.store.models import EscalationEvent

    last = session.execute(
        select(EscalationEvent)
        .where(EscalationEvent.escalation_id == escalation_id, EscalationEvent.kind == "referred")
        .order_by(EscalationEvent.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    return dict(last.data or {}) if last is not None else None


class NoBed(TransitionError):
    """The house has no free bed recorded for tonight: the referral was not accepted."""


def held_bed(session: Session, escalation_id: int) -> Optional[Dict[str, Any]]:
    """The bed the latest referral holds (``{"house", "night"}``), or None.

    Taken by ``referral_accepted``; given back by ``referral_declined`` or ``discharged``
    after it. Read from the trail, so the bed and the trail cannot disagree.
    """
    from bot.store.models import EscalationEvent

    rows = session.execute(
        select(EscalationEvent.kind, EscalationEvent.data)
        .where(EscalationEvent.escalation_id == escalation_id,
               EscalationEvent.kind.in_(("referred", "referral_accepted", "referral_declined",
                                         "discharged")))
        .order_by(EscalationEvent.seq)
    ).all()
    held: Optional[Dict[str, Any]] = None
    for kind, data in rows:
        data = data or {}
        if kind == "referral_accepted" and data.get("night"):
            held = {"house": data.get("house"), "night": data["night"]}
        elif kind in ("referred", "referral_declined", "discharged"):
            held = None
    return held


def _tonight() -> dt.date:
    from bot.directory import beds
    from bot.settings import settings

    return beds.tonight(settings().tz_line)


def _give_back(session: Session, esc: Escalation, actor: str) -> Optional[Dict[str, Any]]:
    from bot.directory import beds

    held = held_bed(session, esc.id)
    if held is None:
        return None
    beds.give_back(session, held["house"], dt.date.fromisoformat(held["night"]), actor)
    return held


def _referral_response(session: Session, ref_or_id, actor: str, house: str, accepted: bool):
    from bot.directory import beds

    esc = load(session, ref_or_id)
    _require(esc, ("referred",), "answer the referral of")
    referral = referred_house(session, esc.id) or {}
    if referral.get("house") != house:
        raise TransitionError(f"{esc.ref} is not referred to your house.")
    now = utcnow()
    if accepted:
        night = _tonight()
        # One conditional UPDATE: of two acceptances of the last bed, the database lets one
        # through; the other is refused here and its transaction writes nothing.
        taken = beds.take(session, house, night, actor)
        # Read after the UPDATE, which waited for any other writer of the count (PostgreSQL's
        # row lock, SQLite's one writer): an ACCEPT sent twice at once sees the first one.
        # Raising rolls the bed back with the rest of the transaction.
        if held_bed(session, esc.id) is not None:
            raise TransitionError(f"{esc.ref} is already accepted.")
        if not taken:
            raise NoBed(f"No bed is free at your house tonight, so {esc.ref} was not accepted. "
                        f"Reply DECLINE {esc.ref}, or correct the free beds on the sanctuary page.")
        audit.append(session, esc, "referral_accepted", actor, reason="the house can take them",
                     data={"house": house, "night": night.isoformat()})
        kind = KIND_TELL_ACCEPTED
    else:
        # Declined after accepting: the bed it took is free again.
        returned = _give_back(session, esc, actor)
        # Back to a human's hands: the person is still with whoever held or acknowledged it.
        esc.status = "active" if taken_by(session, esc.id) else "acknowledged"
        audit.append(session, esc, "referral_declined", actor, reason="the house cannot take them",
                     data={"house": house, "bed_returned": returned["night"] if returned else None})
        kind = KIND_TELL_DECLINED
    esc.updated_at = now
    # The person is told by the dispatcher (SMS outbox or the web chat relay), durably.
    steps = session.execute(
        select(AlertJob.step).where(AlertJob.escalation_id == esc.id, AlertJob.kind == kind)
    ).scalars().all()
    schedule_alert(session, esc, esc.level, max(steps, default=-1) + 1, now, kind=kind)
    return _record(esc)


def _discharge(session: Session, ref_or_id, actor: str, house: Optional[str]):
    esc = load(session, ref_or_id)
    held = held_bed(session, esc.id)
    if held is None or (house is not None and held["house"] != house):
        raise TransitionError(f"{esc.ref} holds no bed at your house.")
    _give_back(session, esc, actor)
    if esc.status == "referred":
        # The stay is over: back to a human's hands, as after a decline.
        esc.status = "active" if taken_by(session, esc.id) else "acknowledged"
    esc.updated_at = utcnow()
    audit.append(session, esc, "discharged", actor, reason="the person has left the house; "
                 "the bed is free again", data={"house": held["house"], "night": held["night"]})
    return _record(esc)


def discharge(
    ref_or_id: "str | int", actor: str, house: Optional[str] = None,
    session: Optional[Session] = None,
) -> EscalationRecord:
    """The person has left the house (or never arrived): the bed their referral took is
    given back. ``house``: the answering house, which must be the one holding the bed."""
    return _in_txn(_discharge, session, ref_or_id, actor, house)


def referral_response(
    ref_or_id: "str | int", actor: str, house: str, accepted: bool,
    session: Optional[Session] = None,
) -> EscalationRecord:
    """A sanctuary house accepts or declines a referral made to it; the person is told."""
    return _in_txn(_referral_response, session, ref_or_id, actor, house, accepted)
