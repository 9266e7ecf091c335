"""Migration 0018_staff_2fa makes what the models declare (staff, sessions, recovery codes, the
accounts' trail), on both databases; it goes away and comes back, and an account made before
it keeps signing in (no temporary password, no second factor, its sessions whole)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import column, inspect, select, table

import bot.store.registry  # noqa: F401  every table on Base.metadata
from bot.duty import staff as staff_module
from bot.store import db, migrate
from bot.store.db import get_engine
from bot.store.models import Base
from bot.store.models.duty import Staff

TABLES = ("staff", "staff_sessions", "staff_recovery_codes", "staff_account_changes")


def _diff(url):
    with get_engine(url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    return [d for d in diff if any(f"'{t}'" in repr(d) or f"{t}." in repr(d) for t in TABLES)]


def test_the_migration_makes_what_the_models_declare(db_url):
    assert _diff(db_url) == []


def test_the_migration_downgrades_and_upgrades_keeping_accounts(sqlite_url):
    migrate.downgrade(sqlite_url, "0017_audit_key")
    names = inspect(get_engine(sqlite_url)).get_table_names()
    assert "staff_recovery_codes" not in names and "staff_account_changes" not in names
    # The table as 0017 left it (the model's insert would name the new columns).
    old_staff = table("staff", *(column(c) for c in (
        "username", "display_name", "role", "active", "password_hash", "created_at",
        "password_changed_at")))
    with db.transaction(sqlite_url) as s:
        s.execute(old_staff.insert().values(
            username="ellen", display_name="Ellen", role="peer_worker", active=True,
            password_hash=staff_module.hasher.hash("correct horse battery staple"),
            created_at=db_now(), password_changed_at=db_now()))
    migrate.upgrade(sqlite_url)
    assert _diff(sqlite_url) == []
    with db.transaction(sqlite_url) as s:
        row = s.execute(select(Staff.must_change_password, Staff.totp_secret)).one()
    assert tuple(row) == (False, None)


def db_now():
    from bot.store.models import utcnow

    return utcnow()
