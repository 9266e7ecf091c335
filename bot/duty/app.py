"""The duty service's aiohttp application factory.

``create_app`` builds the app without touching the network or the database: the engine, the
database thread pool and the HTTP client session are made in ``cleanup_ctx`` when the app
starts and closed when it stops, so tests and ``python -m bot.duty`` share one code path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import aiohttp
from aiohttp import web

from bot import settings as settings_module
from bot.duty.keys import (
    DB_EXECUTOR_KEY,
    DISPATCH_TIMINGS_KEY,
    ENGINE_KEY,
    HTTP_KEY,
    LIMITER_KEY,
    PUBLIC_REPORT_KEY,
    SETTINGS_KEY,
    TAKEOVER_KEY,
    DispatchTimings,
)
from bot.duty.middlewares import (
    auth_middleware,
    error_middleware,
    on_prepare,
    quiet_malformed_requests,
)
from bot.duty.metrics import METRICS_KEY, LineMetrics
from bot.duty.ratelimit import LoginLimiter
from bot.duty.rota_gaps import rota_gaps_ctx
from bot.duty.takeover import TakeoverEngine
from bot.duty.routes import setup_routes
from bot.settings import Settings
from bot.store import db

# Fewer threads than the engine's pool (5 + 10 overflow), so a burst of requests queues here
# instead of timing out waiting for a connection.
DB_THREADS = 8


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    # Creating the engine does not connect: the service starts (and /health reports 503)
    # while the database is down, rather than refusing to start.
    engine = db.get_engine(app[SETTINGS_KEY].database_url)
    executor = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="duty-db")
    app[ENGINE_KEY] = engine
    app[DB_EXECUTOR_KEY] = executor
    yield
    # Don't wait for a thread stuck connecting to an unreachable database: shutdown must not
    # hang on it. Queued work is dropped; nothing here writes yet.
    executor.shutdown(wait=False, cancel_futures=True)
    engine.dispose()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[HTTP_KEY] = session
        yield


def create_app(
    settings: Settings | None = None,
    takeover: TakeoverEngine | None = None,
    dispatch: bool = False,
    dispatch_timings: DispatchTimings | None = None,
) -> web.Application:
    """The duty service; ``settings`` defaults to the process environment.

    ``takeover``: the takeover engine (issue 5). Without one the console has no take over,
    reply, hand back or refer buttons, and those routes do not exist.
    ``dispatch``: run the alert dispatcher and an SMS sender in this process
    (``bot/duty/handoff.py``). Off by default so that tests of the console and API see the
    escalations they seed exactly as they left them; ``python -m bot.duty`` turns it on.
    ``dispatch_timings``: the dispatcher's and sender's polls (``DispatchTimings``).
    """
    app = web.Application(middlewares=[error_middleware, auth_middleware])
    quiet_malformed_requests()
    app[SETTINGS_KEY] = settings or settings_module.settings()
    app[LIMITER_KEY] = LoginLimiter()
    app[PUBLIC_REPORT_KEY] = {}
    app[METRICS_KEY] = LineMetrics()
    if takeover is not None:
        app[TAKEOVER_KEY] = takeover
    app.on_response_prepare.append(on_prepare)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(http_ctx)
    # Warns at start-up (log) and on console pages when the rota leaves a gap within 14 days.
    app.cleanup_ctx.append(rota_gaps_ctx)
    if takeover is not None and hasattr(takeover, "app_ctx"):
        # After the database and HTTP contexts: the engine binds to both (bot/duty/handoff.py).
        app.cleanup_ctx.append(takeover.app_ctx)
    if dispatch:
        from bot.duty.handoff import handoff_ctx, stop_handoff

        app[DISPATCH_TIMINGS_KEY] = dispatch_timings or DispatchTimings()
        app.cleanup_ctx.append(handoff_ctx)
        app.on_shutdown.append(stop_handoff)
    setup_routes(app)
    return app
