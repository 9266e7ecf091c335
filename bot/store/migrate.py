"""Run Alembic migrations from code (set-up, tests) without a working-directory dependency."""

from __future__ import annotations

from typing import Optional

from alembic import command
from alembic.config import Config

from bot.settings import ROOT


def alembic_config(url: Optional[str] = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "bot" / "store" / "migrations"))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: Optional[str] = None, revision: str = "heads") -> None:
    """Bring the database at ``url`` (default: ``DATABASE_URL``) up to date."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: Optional[str] = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)
