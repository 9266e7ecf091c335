"""Harness for the SMS channel: a fake Twilio API and the channel on real loopback HTTP.

- ``fake_twilio``: the shared ``tests.helpers.FakeTwilio`` (Twilio's create-message endpoint
  on loopback HTTP, with an auth check, scripted failures and arrival times) for this
  package's account.
- ``SmsServer``: a sanic app with the channel's blueprint and a stub agent in place of Rasa's
  (``on_new_message``), served on a free loopback port; requests to it are signed with
  twilio's own ``RequestValidator.compute_signature``.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from sanic import Sanic
from twilio.request_validator import RequestValidator

from bot import settings as settings_module
from bot.sms.pseudonym import pseudonym
from bot.channels.sms import SmsInput
from tests.helpers import eventually  # noqa: F401  re-exported for the tests here
from tests.helpers import serve_fake_twilio

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token"
LINE_NUMBER = "+447700900000"
PERSON = "+447700900123"
PUBLIC_BASE = "https://line.example.org"


@pytest.fixture(autouse=True)
def _server_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    """The channel's own sender posts, on PostgreSQL too: these tests drive it in-process.
    Posting by the duty service (``SMS_SENDER=duty``, the default on PostgreSQL) is tested
    in ``test_sms_sender_duty.py``."""
    monkeypatch.setenv("SMS_SENDER", "server")
    settings_module.reset()


# Small numbers so that retries, leases and fail-safes happen in fractions of a second.
FAST = {
    "turn_timeout_s": 0.5,
    "turn_hard_limit_s": 3.0,
    "lease_s": 5.0,
    "poll_s": 0.05,
    "max_send_attempts": 4,
    "backoff_base_s": 0.02,
    "backoff_cap_s": 0.1,
    "send_timeout_s": 0.5,
    "rate_capacity": 100.0,
    "rate_refill_per_s": 100.0,
}
# Several sanic apps start in one process here; test mode lets sanic 21.12 re-apply its
# start-up code rewriting ("touchup") for each, instead of failing on the second app.
Sanic.test_mode = True


def new_sid(prefix: str = "SM") -> str:
    return prefix + uuid.uuid4().hex


@pytest.fixture
async def fake_twilio():
    async with serve_fake_twilio(ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


def configure(monkeypatch: pytest.MonkeyPatch, api_url: str, **extra: str) -> None:
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_NUMBER": LINE_NUMBER,
        "TWILIO_API_URL": api_url,
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "PSEUDONYM_KEY": "test-pseudonym-key",
        **extra,
    }
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    settings_module.reset()


@pytest.fixture
def twilio_env(db_url, fake_twilio, monkeypatch):
    """A migrated database (SQLite, then PostgreSQL) and Twilio pointed at the fake."""
    configure(monkeypatch, fake_twilio.url)
    return db_url


class StubAgent:
    """Stands in for ``app.ctx.agent.handle_message``: records, then runs ``behaviour``."""

    def __init__(self, behaviour: Callable[[Any], Awaitable[None]] | None = None) -> None:
        self.messages: list[Any] = []
        self.behaviour = behaviour or echo
        self.running: dict[str, int] = {}
        self.max_parallel: dict[str, int] = {}

    async def __call__(self, message) -> None:
        self.messages.append(message)
        sid = message.sender_id
        self.running[sid] = self.running.get(sid, 0) + 1
        self.max_parallel[sid] = max(self.max_parallel.get(sid, 0), self.running[sid])
        try:
            await self.behaviour(message)
        finally:
            self.running[sid] -= 1


async def echo(message) -> None:
    await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmsServer:
    def __init__(self, agent: StubAgent, **options: Any) -> None:
        self.agent = agent
        self.channel = SmsInput(**{**FAST, **options})
        self.app = Sanic(f"sms_test_{uuid.uuid4().hex[:10]}", configure_logging=False)
        self.app.blueprint(self.channel.blueprint(agent), url_prefix="/webhooks/sms")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = None
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> SmsServer:
        self._server = await self.app.create_server(
            host="127.0.0.1", port=self.port, return_asyncio_server=True, access_log=False
        )
        await self._server.startup()
        await self._server.before_start()
        await self._server.after_start()
        self.session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self._server is not None:
            await self._server.before_stop()
            await self._server.close()
            await self._server.after_stop()
            self._server = None

    async def post(
        self,
        path: str,
        params: dict[str, str],
        *,
        sign: bool = True,
        token: str = AUTH_TOKEN,
        signed_url: str | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, str]:
        hdrs = dict(headers or {})
        if sign:
            url = signed_url or (PUBLIC_BASE + path)
            hdrs["X-Twilio-Signature"] = RequestValidator(token).compute_signature(url, params)
        async with self.session.post(
            self.url + path, data=data if data is not None else params, headers=hdrs
        ) as resp:
            return resp.status, await resp.text(), resp.headers.get("Content-Type", "")

    async def sms(self, body: str | None, *, sid: str | None = None, number: str = PERSON,
                  **extra: str) -> tuple[int, str, str]:
        params = {
            "MessageSid": sid or new_sid(), "SmsSid": "", "AccountSid": ACCOUNT_SID,
            "From": number, "To": LINE_NUMBER, "NumMedia": "0", "FromCity": "",
            "FromCountry": "GB", **extra,
        }
        if body is not None:
            params["Body"] = body
        params["SmsSid"] = params["MessageSid"]
        return await self.post("/webhooks/sms/webhook", params)


@pytest.fixture
async def servers():
    """Start SmsServer instances with ``await servers(agent, **options)``; all stopped after."""
    started: list[SmsServer] = []

    async def start(agent: StubAgent | None = None, **options: Any) -> SmsServer:
        server = await SmsServer(agent or StubAgent(), **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        try:
            await asyncio.wait_for(server.stop(), 15)
        except asyncio.TimeoutError:  # noqa: UP041  on Python 3.10 it is not the builtin
            for task in asyncio.all_tasks():
                task.print_stack()
            raise




def person_id(number: str = PERSON) -> str:
    return pseudonym(number)
