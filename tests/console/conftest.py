"""Fixtures for the console: accounts, signing in through the real form, a fake takeover engine."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

from bot import settings as settings_module
from bot.duty import account_admin, twofactor
from bot.duty import staff as staff_module
from bot.duty.app import create_app
from bot.duty.keys import SETTINGS_KEY
from bot.store import db
from bot.store.models.duty import Staff
from tests.duty.conftest import AUTH, TOKEN, make_settings, seed  # noqa: F401  fixtures reused

PASSWORD = "correct horse battery staple"
# The authenticator app's secret of every manager ``make_staff`` makes (managers must use a
# second factor); tests of the set-up itself make accounts without one (``enrolled=False``).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    # argon2's production cost (64 MiB, 3 passes) per test login would make the suite slow
    # on a shared 2-core machine; the code path is the same.
    monkeypatch.setattr(staff_module, "hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(staff_module, "_dummy_hash", None)


def enrol(database_url: str, username: str, secret: str = TOTP_SECRET,
          key: str = settings_module.DEV_STAFF_2FA_KEY) -> None:
    """Give ``username`` a second factor with ``secret``, as if set up at sign-in."""
    with db.transaction(database_url) as s:
        s.execute(update(Staff).where(Staff.username == username)
                  .values(totp_secret=twofactor.seal(secret, key)))


@pytest.fixture
def make_staff(db_url):
    def make(username: str, role: str, house: str | None = None, password: str = PASSWORD,
             enrolled: bool | None = None) -> int:
        staff_id = staff_module.create_staff(
            db.get_engine(db_url), username, password, role, house=house,
            display_name=username.title(),
        )
        if enrolled if enrolled is not None else role in account_admin.MANAGER_ROLES:
            enrol(db_url, username)
        return staff_id

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


def current_code(client, username: str, secret: str = TOTP_SECRET) -> str:
    """The code the authenticator app shows now. The account's last used step is forgotten
    first, so a test may sign the same manager in twice within one 30-second step."""
    with db.transaction(client.server.app[SETTINGS_KEY].database_url) as s:
        s.execute(update(Staff).where(Staff.username == username).values(totp_last_step=None))
    return twofactor.code_at(secret, time.time())


async def give_code(client, username: str, secret: str = TOTP_SECRET):
    """At ``/login/next`` (the code step): submit the current code; the response (303)."""
    page = await client.get("/login/next")
    assert page.status == 200, await page.text()
    text = await page.text()
    assert 'action="/login/code"' in text, "not the code step (a second factor to set up?)"
    step = _CSRF_FIELD.search(text).group(1)
    return await client.post("/login/code", data={"code": current_code(client, username, secret),
                                                  "csrf_token": step}, allow_redirects=False)


async def post_login(client, username: str, password: str = PASSWORD):
    """The sign-in form posted, and the code step done when the account has one: the last
    response (a 303 to the console page this person starts on, when all went well)."""
    token = await login_csrf(client)
    resp = await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
    )
    if resp.status == 303 and resp.headers["Location"] == "/login/next":
        resp = await give_code(client, username)
    return resp


async def sign_in(client, username: str, password: str = PASSWORD) -> str:
    """Sign in through the form (and the code step); returns the session's CSRF token."""
    resp = await post_login(client, username, password)
    assert resp.status == 303, await resp.text()
    assert not resp.headers["Location"].startswith("/login"), resp.headers["Location"]
    page = await client.get(resp.headers["Location"])
    assert page.status == 200
    return _CSRF_META.search(await page.text()).group(1)
