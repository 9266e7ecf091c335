"""Shared fixtures: a fresh, migrated database per test, on SQLite and on the real PostgreSQL.

PostgreSQL runs on this machine (127.0.0.1:5432, trust auth); set TEST_POSTGRES_URL to use
another server. Each test that asks for ``pg_url`` gets its own new database, dropped after.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text

from bot import settings as settings_module
from bot.store import db, migrate

ROOT = Path(__file__).resolve().parent.parent
SHARED_EVAL = ROOT.parent / "shared" / "eval"
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(autouse=True)
def _fresh_turn_gate() -> Iterator[None]:
    """Every test starts with a new turn gate: its memory of conversations that showed risk
    is process-wide, and one test's risk message must not let another's skip a queue."""
    gate = sys.modules.get("bot.channels.gate")  # nothing to reset if no test imported it
    if gate is not None:
        gate.reset()
    live = sys.modules.get("bot.feedback.live")  # the channels' view of live surveys, likewise
    if live is not None:
        live.reset()
    contact = sys.modules.get("bot.channels.contact_turn")  # the fair-use counter, block view
    if contact is not None:
        contact.reset()
    yield


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated SQLite database in a temporary folder, set as DATABASE_URL."""
    url = f"sqlite:///{tmp_path / 'line.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    settings_module.reset()
    migrate.upgrade(url)
    yield url
    db.dispose_all()
    settings_module.reset()


@pytest.fixture
def pg_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new, migrated PostgreSQL database on the real server, set as DATABASE_URL."""
    name = f"line_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("DATABASE_URL", url)
    settings_module.reset()
    try:
        migrate.upgrade(url)
        yield url
    finally:
        db.dispose_all()
        settings_module.reset()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite (the default) and once on the real PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
