"""After PostgreSQL drops the line's connections (a restart, a failover), the line reconnects.

Connections are pinged only after sitting idle (``db.PING_AFTER_IDLE_S``); one in use a
moment ago is taken as it is, and if the server dropped it in that moment, one statement
fails and the next gets a new connection.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bot.store import db
from bot.store.db import transaction


def _drop_connections(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
    admin.dispose()


def _answer() -> int:
    with transaction() as s:
        return s.execute(text("SELECT 41 + 1")).scalar_one()


def test_an_idle_connection_dropped_by_the_server_is_replaced_unnoticed(pg_url, monkeypatch):
    assert _answer() == 42
    _drop_connections(pg_url)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # the pooled connection counts as idle
    assert _answer() == 42


def test_a_connection_dropped_while_in_use_fails_once_then_the_line_reconnects(pg_url):
    assert _answer() == 42
    _drop_connections(pg_url)
    with pytest.raises(OperationalError):
        _answer()  # used a moment ago: not pinged, and the server had dropped it
    assert _answer() == 42  # the pool threw its connections away: a new one
