"""Migrations 0003_sms and 0009_outbox_in_doubt make exactly what bot/store/models/sms.py
declares."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
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


def test_0009_marks_parts_waiting_at_the_upgrade_and_downgrades(db_url):
    # Parts the line left unfinished when it was stopped for the upgrade: one whose last post
    # timed out (it may be at Twilio), one left "sending" (in doubt once its lease is
    # reclaimed), one refused with a 500 (not in doubt), one sent. Then back down again.
    migrate.downgrade(db_url, "0008_risk_net")
    engine = get_engine(db_url)
    created = dt.datetime(2026, 12, 1, 22, 0, tzinfo=dt.timezone.utc)  # noqa: UP017  (3.10)
    with engine.begin() as conn:
        table = sa.Table("sms_outbox", sa.MetaData(), autoload_with=conn)
        assert "in_doubt" not in table.c
        common = dict(pseudonym="sms-x", kind="reply", body="b", part=1, parts=1,
                      encoding="GSM-7", segments=1, next_attempt_at=created,
                      created_at=created, updated_at=created, error_code=None, twilio_sid=None)
        conn.execute(table.insert(), [
            dict(common, id=1, status="pending", attempts=2, error_code="timeout"),
            dict(common, id=2, status="sending", attempts=0),
            dict(common, id=3, status="pending", attempts=1, error_code="500"),
            dict(common, id=4, status="sent", attempts=1, twilio_sid="SM1"),
        ])
    migrate.upgrade(db_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, in_doubt, first_attempt_at FROM sms_outbox ORDER BY id")).all()
    assert [(r.id, bool(r.in_doubt), r.first_attempt_at is not None) for r in rows] == [
        (1, True, True), (2, False, True), (3, False, True), (4, False, False)]
    assert _sms_diff(db_url) == []
    migrate.downgrade(db_url, "0008_risk_net")
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("sms_outbox")}
    assert not columns & {"in_doubt", "first_attempt_at"}
    migrate.upgrade(db_url)
    assert _sms_diff(db_url) == []
