"""Unmet need, for the report: what people asked for, by place and need, when nothing suitable
was open (``unmet_needs``, written by ``bot/directory/unmet.py``).

Reads the need, the place (the directory's key, or "not given" / "not in the directory") and
when; never the conversation id. The place names come from the loaded directory.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.directory.unmet import PLACE_NOT_GIVEN, PLACE_UNKNOWN
from bot.store.models.directory import DirectoryPlace, UnmetNeed

SPECIAL_PLACES = {PLACE_UNKNOWN: "a place not in the directory",
                  PLACE_NOT_GIVEN: "place not given"}


def counts(session: Session, start: dt.datetime, end: dt.datetime) -> Counter:
    """``(need, place) -> requests`` for requests in ``[start, end)``."""
    rows = session.execute(
        select(UnmetNeed.need, UnmetNeed.place)
        .where(UnmetNeed.asked_at >= start, UnmetNeed.asked_at < end)
    ).all()
    return Counter((need, place) for need, place in rows)


def places(session: Session) -> list[tuple[str, str]]:
    """``(key, name)`` of the directory's places, in the directory's order."""
    rows = session.execute(
        select(DirectoryPlace.key, DirectoryPlace.spec).order_by(DirectoryPlace.position)).all()
    return [(key, str((spec or {}).get("name") or key)) for key, spec in rows]
