"""Migration 0003_sms creates exactly what bot/channels/models.py declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import bot.store.registry  # noqa: F401  every table on Base.metadata
from bot.store import migrate
from bot.store.db import get_engine
from bot.store.models import Base

SMS_TABLES = {"sms_contacts", "sms_inbox", "sms_outbox", "sms_opt_outs"}


def _sms_diff(url: str):
    with get_engine(url).connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )

    def table_of(entry):
        entry = entry[0] if isinstance(entry, list) else entry
        for item in entry[1:]:
            name = getattr(item, "name", None) if not isinstance(item, str) else item
            table = getattr(item, "table", None)
            if table is not None:
                return table.name
            if name in SMS_TABLES:
                return name
        return None

    return [d for d in diff if table_of(d) in SMS_TABLES]


def test_migration_matches_the_models(db_url):
    assert _sms_diff(db_url) == []


def test_migration_downgrades_and_upgrades_again(sqlite_url):
    migrate.downgrade(sqlite_url, "0001_escalations")
    with get_engine(sqlite_url).connect() as conn:
        names = set(get_engine(sqlite_url).dialect.get_table_names(conn))
    assert not names & SMS_TABLES
    migrate.upgrade(sqlite_url)
    assert _sms_diff(sqlite_url) == []
