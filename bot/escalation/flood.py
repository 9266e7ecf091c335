"""A burst of web chat escalations alerts staff once, as a suspected flood.

Opening a web chat costs nothing, so one client can open conversation after conversation and
write a risk message in each: ten in five seconds paged on-call staff ten times. Each of
those must still reach the queue (any one of them may be real), but staff need one page
that says what is happening, not ten.

When an escalation opens on web chat and ``threshold`` web chat escalations (this one
included) opened within ``window``, this one *leads*: its ladder goes on as usual and its
alert starts "SUSPECTED FLOOD" with the count. Web chat escalations opened after a lead,
until ``hold`` after it, are *held*: they are in the queue like any other, with a
``flood_held`` entry in their trail naming the lead, but no ladder of their own. The ones
before the lead keep their ladders (they were alerted before anything looked like a flood).
A held escalation whose level is raised later is alerted as usual (``record_escalation``).
Other channels are never grouped.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.escalation import audit
from bot.store.models import Escalation, EscalationEvent

WEBCHAT_CHANNELS = ("socketio", "webchat")
FLOOD_THRESHOLD = 3
FLOOD_WINDOW = dt.timedelta(seconds=60)
FLOOD_HOLD = dt.timedelta(minutes=15)
LEAD = "flood_suspected"
HELD = "flood_held"
ACTOR = "system:flood"


def _lead_since(session: Session, since: dt.datetime, not_id: int) -> Optional[Escalation]:
    return session.execute(
        select(Escalation)
        .join(EscalationEvent, EscalationEvent.escalation_id == Escalation.id)
        .where(EscalationEvent.kind == LEAD, EscalationEvent.at >= since,
               Escalation.id != not_id)
        .order_by(EscalationEvent.at.desc())
        .limit(1)
    ).scalar_one_or_none()


def hold_new_escalation(
    session: Session,
    escalation: Escalation,
    now: dt.datetime,
    threshold: int = FLOOD_THRESHOLD,
    window: dt.timedelta = FLOOD_WINDOW,
    hold: dt.timedelta = FLOOD_HOLD,
) -> bool:
    """For an escalation just opened: True when it is part of a flood staff were already
    alerted to (no alert of its own); False when it alerts as usual (perhaps as a lead)."""
    if escalation.channel not in WEBCHAT_CHANNELS:
        return False
    lead = _lead_since(session, now - hold, escalation.id)
    if lead is not None:
        audit.append(session, escalation, HELD, ACTOR,
                     reason=f"part of a suspected web chat flood; staff were alerted once, "
                            f"with {lead.ref}", data={"lead": lead.ref})
        return True
    count = session.execute(
        select(func.count(Escalation.id))
        .where(Escalation.channel.in_(WEBCHAT_CHANNELS), Escalation.created_at >= now - window)
    ).scalar_one()
    if count >= threshold:
        audit.append(session, escalation, LEAD, ACTOR,
                     reason=f"{count} web chat escalations in {int(window.total_seconds())} s: "
                            f"staff alerted once; later ones wait in the queue",
                     data={"count": count, "window_s": int(window.total_seconds())})
    return False


def alert_lead_in(session: Session, escalation: Escalation, public_url: str) -> str:
    """The start of a lead's alert ("" for any other escalation)."""
    event = session.execute(
        select(EscalationEvent).where(EscalationEvent.escalation_id == escalation.id,
                                      EscalationEvent.kind == LEAD).limit(1)
    ).scalar_one_or_none()
    if event is None:
        return ""
    count = (event.data or {}).get("count", "several")
    return (f"SUSPECTED FLOOD: {count} web chat escalations in a minute; later ones wait in "
            f"the queue without alerts ({public_url}/duty). ")
