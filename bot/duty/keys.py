"""Typed keys for what the duty service keeps on its ``web.Application``.

They live in their own module so that handlers and middlewares can import them without
importing the app factory (which imports them, through the routes).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

import aiohttp
from aiohttp import web
from sqlalchemy.engine import Engine

from bot.duty.ratelimit import LoginLimiter
from bot.duty.rota_gaps import RotaGaps
from bot.duty.takeover import TakeoverEngine
from bot.settings import Settings

SETTINGS_KEY = web.AppKey("settings", Settings)
ENGINE_KEY = web.AppKey("engine", Engine)
# Database work runs here, never on the event loop (SQLAlchemy 1.4 sessions are blocking).
DB_EXECUTOR_KEY = web.AppKey("db_executor", ThreadPoolExecutor)
# One client session for the health probes of the Rasa and action servers.
HTTP_KEY = web.AppKey("http", aiohttp.ClientSession)

# Failed console sign-ins, per username and per client address (bot/duty/auth.py).
LIMITER_KEY = web.AppKey("login_limiter", LoginLimiter)
# The takeover engine (issue 5), when one is configured; absent, the console hides takeover.
TAKEOVER_KEY = web.AppKey("takeover", TakeoverEngine)
# Gaps in the rota within 14 days, for the console's banner (bot/duty/rota_gaps.py).
ROTA_GAPS_KEY = web.AppKey("rota_gaps", RotaGaps)
# The public report (/report, with REPORT_PUBLIC): the month it covers, its HTML, when made.
PUBLIC_REPORT_KEY = web.AppKey("public_report", dict)


@dataclass(frozen=True)
class DispatchTimings:
    """How often the duty service's alert dispatcher and SMS sender look for work when
    nothing woke them (``create_app(dispatch_timings=...)``).

    ``dispatch_poll_s``: on PostgreSQL only the safety net under the wake-up (a job due after a
    ladder timeout; one announced while the listener reconnected); on SQLite, how every alert
    job is found. ``sender_poll_s``: the SMS sender's own poll (None: the sender's default);
    the dispatcher wakes it when it writes alert rows, so it is not on an alert's path.
    ``quiet_poll_s``: how often the feedback survey's quiet-period watcher looks for
    conversations that went quiet (a minute: the quiet period is half an hour).
    ``wait_poll_s``: how often the wait watcher looks for people whose next "still waiting"
    update is due (15 s: updates are minutes apart, ``WAIT_UPDATE_SECONDS``).
    ``checkpoint_poll_s``: how often a signed checkpoint of the audit trail is written (one
    is written at start; issue 28 asks for at least hourly).
    """

    dispatch_poll_s: float = 0.25
    sender_poll_s: Optional[float] = None
    quiet_poll_s: float = 60.0
    wait_poll_s: float = 15.0
    checkpoint_poll_s: float = 3600.0


DISPATCH_TIMINGS_KEY = web.AppKey("dispatch_timings", DispatchTimings)
