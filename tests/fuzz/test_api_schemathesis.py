"""schemathesis against the duty service's own OpenAPI document (``/api/openapi.json``).

The document is the interface outside tools rely on (DESIGN.md, "Escalations"), so every
operation in it is called with data that fits it (positive) and data that does not (negative),
with the bearer token, against a real duty service: the app from ``create_app`` on a free
loopback port, in a thread of its own (schemathesis calls it with blocking ``requests``), on a
new PostgreSQL database (the stricter of the two) with escalations in every state. Checks:

- ``not_a_server_error``: no input gives a 5xx;
- ``status_code_conformance``: every status is one the document lists for that operation;
- ``content_type_conformance``, ``response_schema_conformance`` and
  ``response_headers_conformance``: every body is of the documented type and matches its
  schema (the escalations as much as the JSON errors), with the documented headers;
- ``negative_data_rejection``: data that does not fit the document is refused with a 4xx.

``/health`` is called too; with no Rasa or action server beside it, it reports ``degraded``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from aiohttp import web
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import create_engine, text

from bot import settings as settings_module
from bot.duty.app import create_app
from bot.escalation import audit
from bot.escalation.engine import record_escalation
from bot.store import db, migrate
from bot.store.db import transaction
from bot.store.models import Escalation, utcnow
from tests.conftest import POSTGRES_ADMIN_URL
from tests.duty.conftest import AUTH, make_settings
from tests.fuzz.conftest import FUZZ_EXAMPLES, fuzz_settings

EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


class AppThread:
    """An aiohttp app served from its own event loop in a thread, on a free loopback port."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="duty-app",
                                       daemon=True)
        self.runner: web.AppRunner | None = None

    def start(self) -> str:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> str:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


def seed_every_state() -> None:
    """Escalations of every level and status, so that each field of the schema has values."""
    states = [
        ("imminent", "open", None, None, ["overdose_taken"]),
        ("urgent", "alerted", None, None, ["self_harm"]),
        ("urgent", "acknowledged", 25, None, []),
        ("support", "active", 40, None, []),
        ("urgent", "resolved", 30, 600, ["suicidal_thoughts"]),
        ("support", "referred", 50, 900, []),
    ]
    for i, (level, status, ack_s, resolved_s, signals) in enumerate(states):
        rec = record_escalation(f"fuzz-{i}", level, signals, channel="sms",
                                summary={"risk_level": level})
        with transaction() as s:
            esc = s.get(Escalation, rec.id)
            esc.created_at = utcnow() - dt.timedelta(seconds=3600)
            if ack_s is not None:
                esc.acknowledged_at = esc.created_at + dt.timedelta(seconds=ack_s)
                audit.append(s, esc, "acknowledged", "staff:ellen", reason="fuzz seed")
            if resolved_s is not None:
                esc.resolved_at = esc.created_at + dt.timedelta(seconds=resolved_s)
            esc.status = status


@pytest.fixture(scope="module")
def duty_service() -> Iterator[str]:
    """The duty service on a new PostgreSQL database; yields its base URL."""
    name = f"line_fuzz_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    server: AppThread | None = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", url)
        settings_module.reset()
        try:
            migrate.upgrade(url)
            seed_every_state()
            server = AppThread(create_app(make_settings(url)))
            yield server.start()
        finally:
            if server is not None:
                server.stop()
            db.dispose_all()
            settings_module.reset()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture
def duty_schema(duty_service: str):
    """The document as the running service serves it, set up to call that service."""
    resp = requests.get(f"{duty_service}/api/openapi.json", headers=AUTH, timeout=10)
    assert resp.status_code == 200
    # Loaded as a document rather than from its URL: schemathesis leaves out the operation
    # that serves the document it was loaded from, and that operation is API too.
    loaded = schemathesis.openapi.from_dict(resp.json())
    loaded.config.update(base_url=duty_service, headers=AUTH)
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=FUZZ_EXAMPLES or EXAMPLES,
        deterministic=not FUZZ_EXAMPLES,
    )
    return loaded


schema = schemathesis.pytest.from_fixture("duty_schema")


@schema.parametrize()
@fuzz_settings(EXAMPLES)
def test_every_operation_answers_as_its_document_says(case) -> None:
    case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=10)
