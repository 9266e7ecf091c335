"""Tables for the service directory (migration ``0002_directory``).

Each service's full specification is kept as JSON (``spec``) so the database holds exactly what
was validated; the columns and the two small link tables beside it exist for querying by need
and area in SQL. Live capacity has its own table keyed by service key, so reloading the
directory does not forget tonight's bed count.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List

from sqlalchemy import JSON, Boolean, Column, Date, DateTime, ForeignKey, Integer, String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped, relationship

from bot.store.models import Base, utcnow


class DirectoryLoad(Base):
    """One successful import: when, from where, and a checksum of what was loaded."""

    __tablename__ = "directory_loads"

    id: Mapped[int] = Column(Integer, primary_key=True)
    loaded_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    source: Mapped[str] = Column(String(500), nullable=False)
    checksum: Mapped[str] = Column(String(64), nullable=False)
    services: Mapped[int] = Column(Integer, nullable=False)
    places: Mapped[int] = Column(Integer, nullable=False)


class DirectoryPlace(Base):
    __tablename__ = "directory_places"

    id: Mapped[int] = Column(Integer, primary_key=True)
    key: Mapped[str] = Column(String(64), nullable=False, unique=True)
    position: Mapped[int] = Column(Integer, nullable=False)
    spec: Mapped[Dict[str, Any]] = Column(JSON, nullable=False)


class DirectoryService(Base):
    __tablename__ = "directory_services"

    id: Mapped[int] = Column(Integer, primary_key=True)
    key: Mapped[str] = Column(String(64), nullable=False, unique=True)
    # Order in the files: the directory's authors list the most useful entries first.
    position: Mapped[int] = Column(Integer, nullable=False)
    name: Mapped[str] = Column(String(200), nullable=False)
    kind: Mapped[str] = Column(String(32), nullable=False)
    national: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    example: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    source: Mapped[str] = Column(String(255), nullable=False, default="")
    spec: Mapped[Dict[str, Any]] = Column(JSON, nullable=False)

    needs: Mapped[List["DirectoryServiceNeed"]] = relationship(
        "DirectoryServiceNeed", cascade="all, delete-orphan", passive_deletes=True
    )
    areas: Mapped[List["DirectoryServiceArea"]] = relationship(
        "DirectoryServiceArea", cascade="all, delete-orphan", passive_deletes=True
    )


class DirectoryServiceNeed(Base):
    __tablename__ = "directory_service_needs"
    __table_args__ = (UniqueConstraint("service_id", "need"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    service_id: Mapped[int] = Column(
        ForeignKey("directory_services.id", ondelete="CASCADE"), nullable=False, index=True
    )
    need: Mapped[str] = Column(String(32), nullable=False, index=True)


class DirectoryServiceArea(Base):
    __tablename__ = "directory_service_areas"
    __table_args__ = (UniqueConstraint("service_id", "area"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    service_id: Mapped[int] = Column(
        ForeignKey("directory_services.id", ondelete="CASCADE"), nullable=False, index=True
    )
    area: Mapped[str] = Column(String(64), nullable=False, index=True)


class SanctuaryBeds(Base):
    """The one count of free beds at a sanctuary house for one night (the local date the night
    started on: ``bot/directory/beds.py``).

    ``house`` is the house's id, the same in the service directory (its ``key``) and in the
    rota's ``sanctuaries``. Set by the house on the console's sanctuary page (or
    ``python -m bot.directory capacity``), read for signposting ("beds free tonight") and for
    referrals, taken one at a time when a house accepts a referral and given back when it
    declines after all or the person leaves (``bot/escalation/engine.py``).
    """

    __tablename__ = "sanctuary_beds"
    __table_args__ = (UniqueConstraint("house", "night"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    house: Mapped[str] = Column(String(64), nullable=False)
    night: Mapped[dt.date] = Column(Date, nullable=False)
    free_beds: Mapped[int] = Column(Integer, nullable=False)
    updated_by: Mapped[str] = Column(String(64), nullable=False)
    updated_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class UnmetNeed(Base):
    """A request the directory could not meet: nothing for this need, serving this place, was
    open (with a place free) when the person asked (``bot/directory/unmet.py``).

    Only what the report counts: the need (``bot.directory.needs.NEEDS``), the place as the
    directory's key for it (a town or county, never what the person typed, never a postcode),
    or ``not given`` / ``not in the directory``, and when. ``conversation_id`` is the
    pseudonymous sender id, kept only so that a person asking again in the same conversation
    counts once; the report never reads it.
    """

    __tablename__ = "unmet_needs"

    id: Mapped[int] = Column(Integer, primary_key=True)
    conversation_id: Mapped[str] = Column(String(128), nullable=False, index=True)
    need: Mapped[str] = Column(String(32), nullable=False)
    place: Mapped[str] = Column(String(64), nullable=False)
    asked_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False,
                                           default=utcnow, index=True)
