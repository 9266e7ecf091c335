"""Helpers shared by the test packages: ``eventually``, the one fake Twilio API the channel and
handoff tests send SMS to, and ``tampering`` for the audit trail's tamper tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any, Callable, Optional

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from bot.store.db import transaction


@contextmanager
def tampering(url: Optional[str] = None):
    """A transaction that rewrites the audit trail as someone with the database owner's rights
    could. On PostgreSQL the tables refuse UPDATE and DELETE (migration 0015); a superuser
    gets past the triggers with ``session_replication_role = replica`` (an owner could drop
    them), so the tamper tests show what the keyed hashes and checkpoints still catch."""
    with transaction(url) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SET LOCAL session_replication_role = replica"))
        yield session


async def eventually(check: Callable[[], Any], timeout: float = 5.0, what: str = "condition"):
    """Poll ``check`` (sync or async) until truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class FakeTwilio:
    """Twilio's Messages resource (``/2010-04-01/Accounts/{sid}/Messages.json``): create by
    POST, list by GET.

    Like Twilio it answers 404 for another account and 401 without the account's basic auth
    (counted in ``auth_failures``), then 201 with a message SID. Every authenticated POST is
    kept in ``requests``; every message Twilio would have created in ``created``, with its
    SID, ``at`` (``time.monotonic()`` on arrival, for timing assertions) and ``date_created``
    (RFC 2822, whole seconds, as Twilio writes it).

    Scripted failures: ``refusals[number]`` answers every request to that number with
    ``(status, twilio error code)`` (a number Twilio refuses for good: 21610, 21211); then
    ``script`` entries ``(status, code or None, delay seconds)`` are used one per request, in
    order (a status below 300 there means "created, after the delay"). ``delay_s`` delays every
    answer. ``hold_s`` entries are used one per message created, in order: the message is
    created at once and its answer held back that many seconds (Twilio accepted it; the
    sender's time-out ran out first).

    The list (GET, ``To``, ``From``, ``PageSize``) answers from ``created`` as Twilio does:
    filtered, newest first, one page. Every authenticated GET is kept in ``lookups``;
    ``list_script`` entries ``(status, code or None, delay seconds)`` are used one per GET.
    """

    account_sid: str
    auth_token: str
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    script: list[tuple] = field(default_factory=list)
    refusals: dict[str, tuple[int, int]] = field(default_factory=dict)
    auth_failures: int = 0
    delay_s: float = 0.0
    hold_s: list[float] = field(default_factory=list)
    lookups: list[dict[str, Any]] = field(default_factory=list)
    list_script: list[tuple] = field(default_factory=list)

    def _refused(self, request: web.Request) -> Optional[web.Response]:
        if request.match_info["sid"] != self.account_sid:
            return web.json_response({"code": 20404, "message": "not found"}, status=404)
        try:
            auth = aiohttp.BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            auth = None
        if auth is None or (auth.login, auth.password) != (self.account_sid, self.auth_token):
            self.auth_failures += 1
            return web.json_response({"code": 20003, "message": "auth"}, status=401)
        return None

    async def handle(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        form = dict(await request.post())
        arrived = time.monotonic()
        self.requests.append({**form, "at": arrived})
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        refusal = self.refusals.get(str(form.get("To")))
        if refusal is not None:
            return self._error(*refusal)
        if self.script:
            status, code, delay = self.script.pop(0)
            if delay:
                await asyncio.sleep(delay)
            if status >= 300:
                return self._error(status, code)
        sid = "SM" + uuid.uuid4().hex
        message = {**form, "sid": sid, "at": arrived,
                   "date_created": format_datetime(dt.datetime.now(dt.timezone.utc))}
        self.created.append(message)
        if self.hold_s:
            await asyncio.sleep(self.hold_s.pop(0))
        return web.Response(status=201, content_type="application/json",
                            text=json.dumps(self._resource(message)))

    async def list_messages(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        query = dict(request.query)
        self.lookups.append({**query, "at": time.monotonic()})
        if self.list_script:
            status, code, delay = self.list_script.pop(0)
            if delay:
                await asyncio.sleep(delay)
            if status >= 300:
                return self._error(status, code)
        size = min(int(query.get("PageSize", 50)), 1000)
        found = [m for m in reversed(self.created)
                 if m.get("To") == query.get("To", m.get("To"))
                 and m.get("From") == query.get("From", m.get("From"))]
        page = found[:size]
        uri = request.path_qs
        return web.json_response({
            "messages": [self._resource(m) for m in page],
            "first_page_uri": uri, "previous_page_uri": None, "uri": uri, "page": 0,
            "page_size": size, "start": 0, "end": max(len(page) - 1, 0),
            # Only this page is served; a caller that asks for the next one is told it exists.
            "next_page_uri": uri + "&PageToken=PA1" if len(found) > size else None,
        })

    def _resource(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "sid": message["sid"], "account_sid": self.account_sid, "to": message.get("To"),
            "from": message.get("From"), "body": message.get("Body"),
            # A test may move a created message on ("delivered", "undelivered" + error_code).
            "status": message.get("status", "queued"), "error_code": message.get("error_code"),
            "num_segments": "1", "direction": "outbound-api",
            "date_created": message["date_created"], "date_updated": message["date_created"],
            "date_sent": None,
        }

    @staticmethod
    def _error(status: int, code: Optional[int]) -> web.Response:
        return web.json_response(
            {"code": code or status, "message": "scripted failure", "status": status},
            status=status,
        )

    def to(self, number: str) -> list[dict[str, Any]]:
        """Messages created for ``number``, oldest first."""
        return [m for m in self.created if m.get("To") == number]


@asynccontextmanager
async def serve_fake_twilio(account_sid: str, auth_token: str) -> AsyncIterator[FakeTwilio]:
    """A ``FakeTwilio`` on a free loopback port; ``fake.url`` is its base URL."""
    fake = FakeTwilio(account_sid, auth_token)
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", fake.handle)
    app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", fake.list_messages)
    server = TestServer(app, host="127.0.0.1")
    # No access log: it is Twilio's side, and a list request's query string holds the
    # number, which the tests that search our logs for it would otherwise find there.
    await server.start_server(access_log=None)
    fake.url = str(server.make_url("")).rstrip("/")
    try:
        yield fake
    finally:
        await asyncio.wait_for(server.close(), 15)


def tracker_store_for(url: str):
    """Rasa's own SQL tracker store on a test database (SQLite or PostgreSQL), as the Rasa
    server writes it."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return SQLTrackerStore(Domain.empty(), dialect="sqlite", db=parsed.database)
    return SQLTrackerStore(Domain.empty(), dialect="postgresql", host=parsed.host,
                           port=parsed.port, db=parsed.database, username=parsed.username)
