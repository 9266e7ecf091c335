"""Escalations: the one place the assistant asks for a human.

``record_escalation`` is the function the dialogue calls (through the action server) whenever
it sees risk or a person asks for a human. Alerts, timers and takeover build on the rows it
writes. A level is only ever raised, never lowered.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.escalation import audit
from bot.store.db import transaction
from bot.store.models import Escalation, utcnow

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
