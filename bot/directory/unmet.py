"""Unmet need: a request the directory could not meet, kept for the report (docs/report.md).

A need is unmet when ``find_services`` finds no service for it that serves the person's place
(local or national), suits them (carers' services for carers) and is available now (open,
with a bed free if it counts beds). The answer still names services open now (the national
lines); this is the record that what was asked for was not there.

What is kept is what the report counts and nothing else: the need (a word of
``needs.NEEDS``), the place as the directory's key for it (a town or a county: never the
words the person typed, never their postcode), or ``not given`` / ``not in the directory``,
and when. The pseudonymous conversation id is kept so that the same request asked again in
the same conversation (within ``SAME_REQUEST_S``) is counted once; the report never reads it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.db import transaction
from bot.store.models.directory import UnmetNeed

if TYPE_CHECKING:
    from bot.directory.query import Results

PLACE_NOT_GIVEN = "not given"  # the person would rather not say, or the need did not ask
PLACE_UNKNOWN = "not in the directory"  # a place the directory does not know
# One conversation (Rasa's session expiry, domain.yml session_expiration_time: 60 minutes):
# the same need and place asked again within it is one request.
SAME_REQUEST_S = 60 * 60


@dataclass(frozen=True)
class Unmet:
    need: str
    place: str  # a directory place key, PLACE_NOT_GIVEN or PLACE_UNKNOWN
    at: dt.datetime  # aware

    @property
    def at_utc(self) -> dt.datetime:
        return self.at.astimezone(dt.timezone.utc)


def of(results: "Results") -> Optional[Unmet]:
    """The unmet need in ``results``, or None when something suitable is available now (or
    the person named no need, so nothing in particular was asked for)."""
    if results.need is None or results.open_now:
        return None
    if results.place is not None:
        place = results.place.key
    elif results.place_status == "unknown":
        place = PLACE_UNKNOWN
    else:
        place = PLACE_NOT_GIVEN
    return Unmet(results.need, place, results.at)


def _record(session: Session, conversation_id: str, unmet: Unmet) -> bool:
    at = unmet.at_utc
    # SQLite keeps naive UTC: compare in UTC on both databases.
    since = at - dt.timedelta(seconds=SAME_REQUEST_S)
    already = session.execute(
        select(UnmetNeed.id).where(
            UnmetNeed.conversation_id == conversation_id, UnmetNeed.need == unmet.need,
            UnmetNeed.place == unmet.place, UnmetNeed.asked_at >= since,
            UnmetNeed.asked_at <= at)
        .limit(1)
    ).first()
    if already is not None:
        return False
    session.add(UnmetNeed(conversation_id=conversation_id, need=unmet.need, place=unmet.place,
                          asked_at=at))
    return True


def record(conversation_id: str, unmet: Unmet, session: Optional[Session] = None) -> bool:
    """Keep ``unmet`` for the report; False when this conversation asked the same within the
    last hour (already counted)."""
    if session is not None:
        return _record(session, conversation_id, unmet)
    with transaction() as own:
        return _record(own, conversation_id, unmet)
