"""Shared pieces of the fuzz tests: example budgets, async properties, a watch on the logs,
and the staff relay served as the Rasa server serves it.

The property tests run hypothesis with small, fixed budgets (``derandomize=True``: the same
examples on every run, so a red build is reproducible and CI stays within its time). Set
``FUZZ_EXAMPLES=N`` to run every property with ``N`` examples instead, for a longer hunt:

    FUZZ_EXAMPLES=500 PYTHONPATH=. .venv/bin/python -m pytest tests/fuzz -q

A longer hunt also draws fresh examples (``derandomize`` is off then), so repeated long runs
explore different inputs; a failure prints the ``@reproduce_failure`` blob to replay it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis.strategies import SearchStrategy
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from sanic import Sanic

from bot import settings as settings_module
from bot.channels.relay import RelayInput
from bot.channels.webchat import WebChatInput

# The SMS channel's harness (fake Twilio, the channel on loopback HTTP), shared with
# tests/channels rather than copied.
from tests.channels.conftest import fake_twilio, servers, twilio_env  # noqa: F401

# The duty service's: an app on a migrated database, escalations seeded through the engine.
from tests.duty.conftest import client, seed  # noqa: F401

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 0)


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings for one property: ``examples`` by default, ``FUZZ_EXAMPLES`` if set.

    ``function_scoped_fixture`` is suppressed on purpose: one server (and one database) serves
    every example of a property, as a real server serves every request.
    """
    return settings(
        max_examples=FUZZ_EXAMPLES or examples,
        deadline=None,
        derandomize=not FUZZ_EXAMPLES,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
        print_blob=True,
    )


# One example that takes longer than this is a hang, not a slow machine.
EXAMPLE_TIMEOUT_S = 60.0


def fuzz_property(
    examples: int, **strategies: SearchStrategy
) -> Callable[[Callable[..., Awaitable[None]]], Callable[[], Awaitable[None]]]:
    """Turn an async check into an awaitable hypothesis run of ``examples`` examples.

    Hypothesis cannot drive an async function itself, and a server started in the test's
    event loop must be called from that loop. So hypothesis runs in a worker thread and hands
    each example to the test's loop, waiting for its result: failures, shrinking and the
    report work as usual, and every example talks to the one server the test started.
    """

    def decorate(check: Callable[..., Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        loop: dict[str, asyncio.AbstractEventLoop] = {}

        @fuzz_settings(examples)
        @given(**strategies)
        def run_example(**kwargs: Any) -> None:
            # Printed with the falsifying example (hypothesis cannot show composite values
            # drawn for a function it does not call itself).
            note(f"example: {kwargs!r}")
            future = asyncio.run_coroutine_threadsafe(check(**kwargs), loop["loop"])
            try:
                future.result(timeout=EXAMPLE_TIMEOUT_S)
            # On Python 3.10 this is not the builtin TimeoutError (they merge in 3.11).
            except concurrent.futures.TimeoutError:
                future.cancel()
                raise

        async def run() -> None:
            loop["loop"] = asyncio.get_running_loop()
            await asyncio.to_thread(run_example)

        return run

    return decorate


class LogWatch:
    """Every log record of the test, with checks for tracebacks, our errors and leaked text."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def problems(self, secrets: Iterable[str] = ()) -> list[str]:
        """What a person reading the logs should never see after a client's mistake."""
        found: list[str] = []
        wanted = [s for s in secrets if s and len(s) >= 4]
        for record in self.caplog.records:
            text = record.getMessage()
            where = f"{record.levelname} {record.name}"
            if record.exc_info or "Traceback" in text:
                found.append(f"traceback logged by {where}: {text[:120]!r}")
            elif record.levelno >= logging.ERROR and record.name.startswith(("bot", "sanic",
                                                                              "aiohttp")):
                found.append(f"{where}: {text[:120]!r}")
            for secret in wanted:
                if secret in text:
                    found.append(f"{where} logged a message text or number")
        return found

    def assert_clean(self, secrets: Iterable[str] = ()) -> None:
        problems = self.problems(secrets)
        assert not problems, "\n".join(problems[:10])


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> LogWatch:
    """Capture every logger at DEBUG, as an operator with verbose logs would see it."""
    caplog.set_level(logging.DEBUG)
    return LogWatch(caplog)


# -- the staff relay, as the Rasa server serves it ----------------------------------------

RELAY_TOKEN = "relay-fuzz-token-3d1e"


class RelayAgent:
    """What the relay needs of Rasa's agent: a tracker store and a lock store."""

    def __init__(self) -> None:
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.lock_store = InMemoryLockStore()

    async def on_new_message(self, message) -> None:  # people do not write in here
        raise AssertionError("the relay never starts a turn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def relay(db_url, monkeypatch):
    """The staff relay (and the web chat channel it delivers through) on a free port, on the
    test's database; yields its base URL, a client session and the stand-in agent."""
    monkeypatch.setenv("RELAY_TOKEN", RELAY_TOKEN)
    monkeypatch.setenv("PSEUDONYM_KEY", "fuzz-pseudonym-key")
    settings_module.reset()
    Sanic.test_mode = True
    agent = RelayAgent()
    app = Sanic(f"relay_fuzz_{uuid.uuid4().hex[:8]}", configure_logging=False)
    app.ctx.agent = agent
    app.blueprint(WebChatInput(allowed_origins=["http://127.0.0.1:8080"]).blueprint(
        agent.on_new_message))
    app.blueprint(RelayInput().blueprint(agent.on_new_message), url_prefix="/webhooks/relay")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True,
                                     access_log=False)
    await server.startup()
    task = asyncio.ensure_future(server.serve_forever())
    try:
        async with aiohttp.ClientSession() as session:
            yield f"http://127.0.0.1:{port}", session, agent
    finally:
        task.cancel()
        server.close()
        settings_module.reset()
