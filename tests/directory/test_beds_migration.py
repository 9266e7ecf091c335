"""Migration 0010_one_bed_count: the directory's old bed counts join the one count per house
and night; then ``directory_capacity`` is gone."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from bot.store import migrate
from bot.store.db import get_engine


def test_0010_carries_counts_over_and_drops_the_second_table(db_url):
    migrate.downgrade(db_url, "0009_outbox_in_doubt")
    engine = get_engine(db_url)
    set_at = dt.datetime(2026, 12, 1, 21, 0, tzinfo=dt.timezone.utc)  # noqa: UP017  (3.10)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO directory_capacity (service_key, available, updated_at) "
            "VALUES ('taunton-haven', 3, :at), ('bridgwater-sanctuary', 1, :at)"), {"at": set_at})
        # The house already set its own count for that night on the console: it wins.
        conn.execute(sa.text(
            "INSERT INTO sanctuary_beds (house, night, free_beds, updated_by, updated_at) "
            "VALUES ('bridgwater-sanctuary', :night, 2, 'staff:iris', :at)"),
            {"night": dt.date(2026, 12, 1), "at": set_at})
    migrate.upgrade(db_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT house, night, free_beds FROM sanctuary_beds ORDER BY house")).all()
        tables = set(engine.dialect.get_table_names(conn))
    assert [(h, str(n)[:10], f) for h, n, f in rows] == [
        ("bridgwater-sanctuary", "2026-12-01", 2), ("taunton-haven", "2026-12-01", 3)]
    assert "directory_capacity" not in tables
    migrate.downgrade(db_url, "0009_outbox_in_doubt")
    with engine.connect() as conn:
        assert "directory_capacity" in set(engine.dialect.get_table_names(conn))
