"""The plan as the duty console shows it beside the summary: only with the person's consent,
and only after the viewing is on the escalation's audit trail.

The console (``bot/duty/console_db.open_conversation``) asks ``standing`` in the transaction
that records the opening of the transcript; when the person said yes to sharing, it writes a
``plan_viewed`` entry in that same transaction, commits, and only then calls ``words``, which
decrypts. So no plan is ever read by staff without the reading recorded (who, when; never
the plan's words on the trail). Without a yes nothing is decrypted: staff see only whether a
plan exists and that it is kept private, or not yet asked about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

from sqlalchemy.orm import Session

from bot.plan import crypto, sections
from bot.store.models.plan import CrisisPlan

KIND = "plan_viewed"
REASON = "their own plan, shared with their consent, shown in the duty console"

NONE, SHARED, PRIVATE, NOT_ASKED, UNREADABLE = "none", "shared", "private", "not_asked", "unreadable"


@dataclass
class StaffView:
    state: str = NONE  # one of the words above
    # (title, the person's words) per step they filled in, then the numbers always added
    steps: List[Tuple[str, str]] = field(default_factory=list)


def standing(session: Session, conversation_id: str) -> str:
    """NONE, SHARED, PRIVATE or NOT_ASKED, without decrypting anything."""
    row = session.get(CrisisPlan, conversation_id)
    if row is None:
        return NONE
    if row.share is True:
        return SHARED
    return PRIVATE if row.share is False else NOT_ASKED


def words(session: Session, conversation_id: str) -> StaffView:
    """The shared plan's words; call only after the viewing has been recorded and committed.
    Consent is read again here: taken back a moment ago, nothing is shown."""
    row = session.get(CrisisPlan, conversation_id)
    if row is None:
        return StaffView(NONE)
    if row.share is not True:
        return StaffView(PRIVATE if row.share is False else NOT_ASKED)
    try:
        found = crypto.open_sealed(row.ciphertext)
    except crypto.PlanUnreadable:
        return StaffView(UNREADABLE)
    steps = [(s.title, found[s.id]) for s in sections.SECTIONS if found.get(s.id)]
    steps.append(("Numbers always added", sections.NUMBERS))
    return StaffView(SHARED, steps)

