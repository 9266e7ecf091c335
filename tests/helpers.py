"""Helpers shared by the async test packages (channels, handoff): ``eventually`` and the one
fake Twilio API both packages send SMS to."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer


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
    """Twilio's create-message endpoint (``POST /2010-04-01/Accounts/{sid}/Messages.json``).

    Like Twilio it answers 404 for another account and 401 without the account's basic auth
    (counted in ``auth_failures``), then 201 with a message SID. Every authenticated request is
    kept in ``requests``; every message Twilio would have created in ``created``, with its
    SID and ``at`` (``time.monotonic()`` on arrival, for timing assertions).

    Scripted failures: ``refusals[number]`` answers every request to that number with
    ``(status, twilio error code)`` (a number Twilio refuses for good: 21610, 21211); then
    ``script`` entries ``(status, code or None, delay seconds)`` are used one per request, in
    order (a status below 300 there means "created, after the delay"). ``delay_s`` delays every
    answer.
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

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["sid"] != self.account_sid:
            return web.json_response({"code": 20404, "message": "not found"}, status=404)
        try:
            auth = aiohttp.BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            auth = None
        if auth is None or (auth.login, auth.password) != (self.account_sid, self.auth_token):
            self.auth_failures += 1
            return web.json_response({"code": 20003, "message": "auth"}, status=401)
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
        self.created.append({**form, "sid": sid, "at": arrived})
        return web.Response(status=201, content_type="application/json", text=json.dumps({
            "sid": sid, "account_sid": self.account_sid, "to": form.get("To"),
            "from": form.get("From"), "body": form.get("Body"), "status": "queued",
            "num_segments": "1", "direction": "outbound-api",
        }))

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
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    try:
        yield fake
    finally:
        await asyncio.wait_for(server.close(), 15)
