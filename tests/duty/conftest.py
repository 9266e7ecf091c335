"""Fixtures for the duty service: settings built from a dict, a client, seeded escalations.

Settings are made with ``bot.settings.load(env)`` rather than by changing the process
environment, so each test states exactly what the app sees.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

import pytest
from sqlalchemy import select

from bot import settings as settings_module
from bot.duty.app import create_app
from bot.escalation import audit
from bot.escalation.engine import record_escalation
from bot.settings import Settings
from bot.store.db import transaction
from bot.store.models import Escalation, EscalationEvent, utcnow

TOKEN = "duty-test-token-8c1f0e2a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Nothing listens on port 1: a refused connection, at once.
NOWHERE = "http://127.0.0.1:1"
UNREACHABLE_PG = "postgresql+psycopg2://postgres@127.0.0.1:1/line"


def make_settings(database_url: str, **env: str | None) -> Settings:
    values: dict[str, str | None] = {
        "DATABASE_URL": database_url,
        "DUTY_API_TOKEN": TOKEN,
        "RASA_URL": NOWHERE,
        "ACTIONS_URL": NOWHERE,
    }
    values.update(env)
    return settings_module.load({k: v for k, v in values.items() if v is not None})


@pytest.fixture
async def client(db_url, aiohttp_client):
    return await aiohttp_client(create_app(make_settings(db_url)))


Seed = Callable[..., int]


@pytest.fixture
def seed(db_url) -> Seed:
    """Open an escalation through the engine, then set its age, status and trail for a test."""
    counter = iter(range(1, 10_000))

    def make(
        level: str,
        status: str = "open",
        age_s: int = 0,
        ack_after_s: int | None = None,
        signals: Iterable[str] = (),
        trail: Iterable[str] = (),
    ) -> int:
        rec = record_escalation(
            f"conv-{next(counter)}", level, list(signals), channel="sms",
            summary={"risk_level": level, "suggested": ["Samaritans 116 123"]},
        )
        with transaction() as s:
            esc = s.get(Escalation, rec.id)
            esc.created_at = utcnow() - dt.timedelta(seconds=age_s)
            created = s.execute(
                select(EscalationEvent).where(EscalationEvent.escalation_id == rec.id)
            ).scalar_one()
            at = created.at
            for i, kind in enumerate(trail, start=1):
                audit.append(
                    s, esc, kind, "staff:ellen", reason=f"test step {i}",
                    at=at + dt.timedelta(seconds=i),
                )
            esc.status = status
            if ack_after_s is not None:
                esc.acknowledged_at = esc.created_at + dt.timedelta(seconds=ack_after_s)
        return rec.id

    return make
