"""Tables for the service directory (migration ``0002_directory``).

Each service's full specification is kept as JSON (``spec``) so the database holds exactly what
was validated; the columns and the two small link tables beside it exist for querying by need
and area in SQL. Live capacity has its own table keyed by service key, so reloading the
directory does not forget tonight's bed count.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

from sqlalchemy import JSON, Boolean, Column, DateTime, ForeignKey, Integer, String, Text
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


class DirectoryCapacity(Base):
    """Live places free tonight (sanctuary beds), set by staff; survives directory reloads."""

    __tablename__ = "directory_capacity"

    service_key: Mapped[str] = Column(String(64), primary_key=True)
    available: Mapped[int] = Column(Integer, nullable=False)
    updated_at: Mapped[dt.datetime] = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    note: Mapped[Optional[str]] = Column(Text, nullable=True)
