"""The one count of free beds per sanctuary house and night (``sanctuary_beds``).

A house is one id in both files: the service directory's ``key`` (``data/services/``) and the
rota's ``sanctuaries`` id (``data/rota/rota.yml``). The same number is shown when the line
signposts ("2 beds free tonight"), checked before a referral, taken when the house accepts one
and given back when it declines after all or the person leaves.

Taking a bed is one conditional ``UPDATE ... SET free_beds = free_beds - 1 WHERE free_beds > 0``:
the database decides, so two acceptances of the last bed at the same moment cannot both
succeed (PostgreSQL locks the row; SQLite lets one writer in at a time), whichever process
they come from.

A night is the local date it started on: before noon we are still in last night.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.store.models.directory import SanctuaryBeds
from bot.store.models import utcnow

MAX_FREE_BEDS = 50  # a typo guard: no house has more


def tonight(tz_name: str, now: Optional[dt.datetime] = None) -> dt.date:
    """The date a night started on: before noon local time we are still in last night."""
    local = (now or utcnow()).astimezone(ZoneInfo(tz_name))
    return (local - dt.timedelta(hours=12)).date()


def free(session: Session, houses: Iterable[str], night: dt.date) -> dict[str, int]:
    """Free beds recorded for ``night``, by house; a house with no count is left out."""
    houses = list(houses)
    if not houses:
        return {}
    rows = session.execute(
        select(SanctuaryBeds.house, SanctuaryBeds.free_beds)
        .where(SanctuaryBeds.house.in_(houses), SanctuaryBeds.night == night)
    ).all()
    return {house: n for house, n in rows}


def set_free(session: Session, house: str, night: dt.date, free_beds: int, actor: str) -> None:
    """Record the house's own count for the night (replacing what was there)."""
    if not 0 <= free_beds <= MAX_FREE_BEDS:
        raise ValueError(f"free beds must be a number from 0 to {MAX_FREE_BEDS}")
    values = dict(house=house, night=night, free_beds=free_beds, updated_by=actor,
                  updated_at=utcnow())
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(SanctuaryBeds).values(**values)
    # One statement, so two people saving at once cannot collide on the (house, night) key.
    session.execute(stmt.on_conflict_do_update(
        index_elements=["house", "night"],
        set_={"free_beds": stmt.excluded.free_beds, "updated_by": stmt.excluded.updated_by,
              "updated_at": stmt.excluded.updated_at},
    ))


def take(session: Session, house: str, night: dt.date, actor: str) -> bool:
    """Take one bed for the night, atomically; False when none is free (or none recorded)."""
    done = session.execute(
        update(SanctuaryBeds)
        .where(SanctuaryBeds.house == house, SanctuaryBeds.night == night,
               SanctuaryBeds.free_beds > 0)
        .values(free_beds=SanctuaryBeds.free_beds - 1, updated_by=actor, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return done.rowcount == 1


def give_back(session: Session, house: str, night: dt.date, actor: str) -> bool:
    """Return one bed taken for the night; False when the night has no count any more."""
    done = session.execute(
        update(SanctuaryBeds)
        .where(SanctuaryBeds.house == house, SanctuaryBeds.night == night)
        .values(free_beds=SanctuaryBeds.free_beds + 1, updated_by=actor, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return done.rowcount == 1
