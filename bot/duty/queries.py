"""Read-only escalation queries for the duty service, as plain blocking functions.

The aiohttp handlers run these in the app's database thread pool; they take the engine and
return JSON-ready dicts, so no ORM object ever crosses into the event loop.

What leaves here is deliberately narrow: no conversation id, no event ``data``, and (because
the escalation tables hold none) no message text or phone numbers; and when the person
refused sharing, only the part of the summary their safety needs (``shared_summary``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import DateTime, case, extract, func, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from bot.escalation.engine import LEVELS
from bot.store.models import Escalation, EscalationEvent

STATUSES = ("open", "alerted", "acknowledged", "active", "resolved", "referred")
# datetime.UTC only exists from Python 3.11; Rasa 3.6 pins us to 3.10.
UTC = dt.timezone.utc
# Highest risk first: the order staff must see the queue in.
RISK_ORDER = tuple(reversed(LEVELS))  # imminent, urgent, support


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    # SQLite hands datetimes back without a zone; everything the project stores is UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the millisecond (events can share a second)."""
    value = _utc(value)
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def waiting_seconds(esc: Escalation, now: dt.datetime) -> int:
    """How long the person waited for a human: until acknowledged (or closed), else until now."""
    end = _utc(esc.acknowledged_at) or _utc(esc.resolved_at) or now
    return max(0, int((end - _utc(esc.created_at)).total_seconds()))


def event_json(ev: EscalationEvent) -> dict[str, Any]:
    return {"seq": ev.seq, "at": iso(ev.at), "kind": ev.kind, "actor": ev.actor, "reason": ev.reason}


# What a summary keeps when the person said NO to sharing (``consent.share_summary`` False):
# what their safety needs (risk level, signals) and the consent answers themselves. The
# detail beyond the alert (what was suggested, places, needs, who it is about) is withheld.
KEPT_WHEN_REFUSED = ("risk_level", "signals", "consent", "sharing")
# Keys a client may rely on being present (as empty values) even when withheld.
WITHHELD_EMPTY: dict[str, Any] = {"suggested": [], "places": [], "needs": [], "audience": None}


def sharing_refused(summary: dict[str, Any] | None) -> bool:
    """The person answered NO to "may I pass on what you've told me?" (None: not asked yet)."""
    return ((summary or {}).get("consent") or {}).get("share_summary") is False


def shared_summary(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The summary as staff and API clients may see it: all of it unless sharing was refused.

    No answer yet is shown in full: the alert flow needs it, and the person was told
    "I've asked for someone". A refusal keeps the keys (empty) and says ``withheld: true``,
    so a client tells "withheld" from "nothing known".
    """
    summary = dict(summary or {})
    if not sharing_refused(summary):
        return summary
    kept = {key: summary[key] for key in KEPT_WHEN_REFUSED if key in summary}
    return {**WITHHELD_EMPTY, **kept, "withheld": True}


def escalation_json(esc: Escalation, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": esc.id,
        "ref": esc.ref,
        "level": esc.level,
        "status": esc.status,
        "channel": esc.channel,
        "created_at": iso(esc.created_at),
        "acknowledged_at": iso(esc.acknowledged_at),
        "resolved_at": iso(esc.resolved_at),
        "waiting_seconds": waiting_seconds(esc, now),
        "signals": list(esc.signals or []),
        "summary": shared_summary(esc.summary),
        # The relationship is ordered by seq, i.e. oldest first.
        "events": [event_json(ev) for ev in esc.events],
    }


def _waiting_expr(dialect: str, now: dt.datetime):
    """SQL for ``waiting_seconds``, so that ordering and LIMIT happen in the database."""
    end = func.coalesce(
        Escalation.acknowledged_at, Escalation.resolved_at, literal(now, DateTime(timezone=True))
    )
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(Escalation.created_at)) * 86400.0
    if dialect == "postgresql":
        return extract("epoch", end - Escalation.created_at)
    # The project supports SQLite and PostgreSQL only; elsewhere fall back to oldest first,
    # which is the same order for everyone still waiting.
    return -Escalation.id


def list_escalations(
    engine: Engine,
    statuses: Sequence[str],
    levels: Sequence[str],
    limit: int,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Escalations matching the filters, highest risk first, then longest wait first."""
    rank = case(
        {level: i for i, level in enumerate(RISK_ORDER)},
        value=Escalation.level,
        else_=len(RISK_ORDER),
    )
    stmt = select(Escalation).options(selectinload(Escalation.events))
    if statuses:
        stmt = stmt.where(Escalation.status.in_(list(statuses)))
    if levels:
        stmt = stmt.where(Escalation.level.in_(list(levels)))
    stmt = stmt.order_by(
        rank, _waiting_expr(engine.dialect.name, now).desc(), Escalation.id
    ).limit(limit)
    with Session(engine, future=True) as session:
        rows = session.execute(stmt).scalars().all()
        return [escalation_json(esc, now) for esc in rows]


def get_escalation(
    engine: Engine,
    escalation_id: int | None,
    ref: str | None,
    now: dt.datetime,
) -> dict[str, Any] | None:
    """One escalation by numeric id or by reference, or None."""
    stmt = select(Escalation).options(selectinload(Escalation.events))
    if escalation_id is not None:
        stmt = stmt.where(Escalation.id == escalation_id)
    elif ref is not None:
        stmt = stmt.where(Escalation.ref == ref)
    else:
        return None
    with Session(engine, future=True) as session:
        esc = session.execute(stmt).scalar_one_or_none()
        return None if esc is None else escalation_json(esc, now)
