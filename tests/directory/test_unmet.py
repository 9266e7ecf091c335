"""Unmet need's table (migration 0014_unmet_need) is what the model declares, on both
databases, and goes away and comes back; the carers' intents the report counts are the
domain's."""

from __future__ import annotations

from pathlib import Path

import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import bot.store.registry  # noqa: F401  every table on Base.metadata
from bot.directory.needs import CARER_INTENTS
from bot.store import migrate
from bot.store.db import get_engine
from bot.store.models import Base

ROOT = Path(__file__).resolve().parents[2]


def _unmet_diff(url):
    with get_engine(url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    return [d for d in diff if "unmet_needs" in repr(d)]


def test_the_migration_makes_what_the_model_declares(db_url):
    assert _unmet_diff(db_url) == []


def test_the_migration_downgrades_and_upgrades(sqlite_url):
    migrate.downgrade(sqlite_url, "0013_feedback_wiring")
    assert "unmet_needs" not in inspect(get_engine(sqlite_url)).get_table_names()
    migrate.upgrade(sqlite_url)
    assert "unmet_needs" in inspect(get_engine(sqlite_url)).get_table_names()
    assert _unmet_diff(sqlite_url) == []


def test_the_carers_intents_are_the_domains():
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    intents = {i if isinstance(i, str) else next(iter(i)) for i in domain["intents"]}
    assert {i for i in intents if i.startswith("carer_")} == set(CARER_INTENTS)
