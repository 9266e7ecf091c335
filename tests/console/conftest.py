"""Fixtures for the console: accounts, signing in through the real form, a fake takeover engine."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from argon2 import PasswordHasher

from bot.duty import staff as staff_module
from bot.duty.app import create_app
from bot.store import db
from tests.duty.conftest import AUTH, TOKEN, make_settings, seed  # noqa: F401  fixtures reused

PASSWORD = "correct horse battery staple"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    # argon2's production cost (64 MiB, 3 passes) per test login would make the suite slow
    # on a shared 2-core machine; the code path is the same.
    monkeypatch.setattr(staff_module, "hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(staff_module, "_dummy_hash", None)


@pytest.fixture
def make_staff(db_url):
    def make(username: str, role: str, house: str | None = None, password: str = PASSWORD) -> int:
        return staff_module.create_staff(
            db.get_engine(db_url), username, password, role, house=house,
            display_name=username.title(),
        )

    return make


@dataclass
class FakeTakeover:
    calls: list = field(default_factory=list)

    async def take_over(self, ref, staff):
        self.calls.append(("take_over", ref, staff.username))

    async def reply(self, ref, staff, text):
        self.calls.append(("reply", ref, staff.username, text))

    async def hand_back(self, ref, staff):
        self.calls.append(("hand_back", ref, staff.username))

    async def refer(self, ref, staff, house):
        self.calls.append(("refer", ref, staff.username, house))

    def referral_houses(self):
        return [("harbour_house", "Harbour House")]


@pytest.fixture
async def client(db_url, aiohttp_client):
    return await aiohttp_client(create_app(make_settings(db_url)))


@pytest.fixture
def takeover():
    return FakeTakeover()


@pytest.fixture
async def takeover_client(db_url, aiohttp_client, takeover):
    return await aiohttp_client(create_app(make_settings(db_url), takeover=takeover))


async def login_csrf(client) -> str:
    resp = await client.get("/login")
    assert resp.status == 200
    return _CSRF_FIELD.search(await resp.text()).group(1)


async def sign_in(client, username: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    token = await login_csrf(client)
    resp = await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    page = await client.get(resp.headers["Location"])
    assert page.status == 200
    return _CSRF_META.search(await page.text()).group(1)
