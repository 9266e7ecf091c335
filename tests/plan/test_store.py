"""The plan's tables (migration 0016_crisis_plan) are what the models declare, on both
databases, and go away and come back; the words are sealed under PLAN_KEY and under no other
key; the web chat carries the plan as one marked message."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import bot.store.registry  # noqa: F401  every table on Base.metadata
from bot.channels.webchat import bot_payloads
from bot.plan import crypto
from bot.store import migrate
from bot.store.db import get_engine
from bot.store.models import Base

TABLES = ("crisis_plans", "plan_sessions")


def _diff(url):
    with get_engine(url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    return [d for d in diff if any(t in repr(d) for t in TABLES)]


def test_the_migration_makes_what_the_models_declare(db_url):
    assert _diff(db_url) == []


def test_the_migration_downgrades_and_upgrades(sqlite_url):
    migrate.downgrade(sqlite_url, "0014_unmet_need")
    assert not set(TABLES) & set(inspect(get_engine(sqlite_url)).get_table_names())
    migrate.upgrade(sqlite_url)
    assert set(TABLES) <= set(inspect(get_engine(sqlite_url)).get_table_names())
    assert _diff(sqlite_url) == []


def test_sealed_words_open_only_with_their_key():
    words = {"warning_signs": "I stop sleeping \U0001F614", "people_to_ask": "Jo"}
    token = crypto.seal(words, key="k" * 40)
    assert "sleeping" not in token
    assert crypto.open_sealed(token, key="k" * 40) == words
    with pytest.raises(crypto.PlanUnreadable):
        crypto.open_sealed(token, key="x" * 40)


def test_web_chat_sends_the_plan_whole_and_marked():
    text = "Your plan:\nWarning signs: a\n\nb"
    [payload] = bot_payloads({"text": text, "plan": True, "timestamp": 1.0})
    assert payload["plan"] is True and payload["text"] == text
    # An ordinary reply is still cut at blank lines and never marked.
    parts = bot_payloads({"text": text, "timestamp": 1.0})
    assert len(parts) == 2 and not any("plan" in p for p in parts)
