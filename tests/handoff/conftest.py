"""Handoff harness: the shared fake Twilio API (``tests.helpers``), a test rota, the dispatcher
and sender.

The rota has one person on call round the clock for each tier, so tests do not depend on the
time of day they run at.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bot import settings as settings_module
from bot.escalation.delivery import outbox_sender
from bot.escalation.dispatch import Dispatcher
from tests.helpers import eventually  # noqa: F401  re-exported for the tests here
from tests.helpers import serve_fake_twilio

ACCOUNT_SID = "AC" + "2" * 32
AUTH_TOKEN = "handoff-test-auth-token"
LINE_NUMBER = "+447700900000"
PEER = "+447700900501"
MANAGER = "+447700900502"
CRISIS = "+447700900503"
VOLUNTEER = "+447700900504"
PERSON = "+447700900123"
PUBLIC_URL = "https://duty.example.org"

ROTA = """
timezone: Europe/London
staff:
  - {id: pia, name: Pia, role: peer_worker, phone: "07700 900501"}
  - {id: sam, name: Sam, role: duty_manager, phone: "07700 900502"}
  - {id: cal, name: Cal, role: crisis_team, phone: "07700 900503"}
  - {id: val, name: Val, role: sanctuary_volunteer, phone: "07700 900504"}
tiers:
  - id: peer_workers
    name: Peer workers
    shifts: [{days: daily, from: "00:00", to: "00:00", staff: [pia]}]
  - id: duty_manager
    name: Duty manager
    shifts: [{days: daily, from: "00:00", to: "00:00", staff: [sam]}]
  - id: crisis_team
    name: Crisis team
    shifts: [{days: daily, from: "00:00", to: "00:00", staff: [cal]}]
ladders:
  support: [peer_workers, duty_manager]
  urgent: [peer_workers, duty_manager, crisis_team]
  imminent: [duty_manager, crisis_team]
sanctuaries:
  - id: harbour_house
    name: Harbour House
    area: Brighton and Hove
    volunteers: [val]
    shifts: [{days: daily, from: "00:00", to: "00:00", staff: [val]}]
"""


@pytest.fixture
async def fake_twilio():
    """The shared fake Twilio API (auth checked, scripted failures, arrival times)."""
    async with serve_fake_twilio(ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def configure(monkeypatch, tmp_path, fake_twilio):
    """Point Twilio at the fake and the dispatcher at the test rota; call with overrides."""
    rota_file = tmp_path / "rota.yml"
    rota_file.write_text(ROTA)

    def apply(**extra: str | None) -> None:
        env = {
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_NUMBER": LINE_NUMBER, "TWILIO_API_URL": fake_twilio.url,
            "PUBLIC_BASE_URL": "https://line.example.org", "PSEUDONYM_KEY": "handoff-key",
            "ROTA_FILE": str(rota_file), "DUTY_PUBLIC_URL": PUBLIC_URL,
            "ESCALATION_ACK_TIMEOUT_S": None, **extra,
        }
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        settings_module.reset()

    apply()
    return apply


@pytest.fixture
def pg_env(pg_url, configure):
    return pg_url


@pytest.fixture
def any_env(db_url, configure):
    return db_url


@pytest.fixture
async def handoff():
    """Start dispatchers and SMS senders as a duty service would; all stopped after."""
    started: list[Any] = []

    async def start(dispatchers: int = 1, senders: int = 1, **options: Any):
        out_senders = [outbox_sender(poll_s=0.05, backoff_base_s=0.02, backoff_cap_s=0.1,
                                    send_timeout_s=2.0) for _ in range(senders)]
        out_dispatchers = []
        for i in range(dispatchers):
            sender = out_senders[i % senders] if senders else None
            d = Dispatcher(poll_s=0.05, on_enqueued=sender.wake if sender else None, **options)
            out_dispatchers.append(d)
        for s in out_senders:
            await s.start()
            started.append(s)
        for d in out_dispatchers:
            await d.start()
            started.append(d)
        return out_dispatchers, out_senders

    yield start
    for item in reversed(started):
        await item.stop()




async def client_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()
