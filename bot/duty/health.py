"""``GET /health``: is the database up, and can this service reach Rasa and the action server?

200 while the database answers (the duty service can still show the queue and record
acknowledgements without Rasa); 503 when it does not. To anyone, the body is only
``{"status": "ok" | "degraded"}``: which part is down, its backend and
latencies are for monitors with the API token or signed-in staff (issue 23: an attacker
learns nothing from them). Even then the body never carries URLs or error messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy.engine import make_url

from bot.duty.auth import principal
from bot.duty.keys import DB_EXECUTOR_KEY, HTTP_KEY, SETTINGS_KEY
from bot.duty.middlewares import has_bearer
from bot.store import db

log = logging.getLogger(__name__)

DB_TIMEOUT_S = 2.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=1.5)

Check = dict[str, Any]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


async def check_database(app: web.Application) -> Check:
    url = app[SETTINGS_KEY].database_url
    result: Check = {"ok": False, "backend": make_url(url).get_backend_name()}
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    try:
        # A hung connect must not hang the probe: wait_for gives up on it (the thread is
        # left to finish on its own).
        await asyncio.wait_for(
            loop.run_in_executor(app[DB_EXECUTOR_KEY], db.ping, url), timeout=DB_TIMEOUT_S
        )
    # On Python 3.10 asyncio.TimeoutError is not the builtin TimeoutError (they merge in 3.11).
    except asyncio.TimeoutError:
        result["error"] = "timeout"
    # A health probe reports every failure instead of raising; the class names the cause
    # without the message, which can hold connection details.
    except Exception as exc:
        cause = getattr(exc, "orig", None) or exc
        result["error"] = f"unavailable ({type(cause).__name__})"
    else:
        result["ok"] = True
    result["latency_ms"] = _ms(started)
    return result


async def check_http(session: aiohttp.ClientSession, url: str) -> Check:
    result: Check = {"ok": False}
    started = time.monotonic()
    try:
        async with session.get(url, timeout=HTTP_TIMEOUT, allow_redirects=False) as resp:
            result["status_code"] = resp.status
            result["ok"] = resp.status == 200
            if not result["ok"]:
                result["error"] = f"HTTP {resp.status}"
    except asyncio.TimeoutError:
        result["error"] = "timeout"
    except aiohttp.ClientConnectionError:
        result["error"] = "unreachable"
    except Exception as exc:  # same reason as above: report, never raise
        result["error"] = f"error ({type(exc).__name__})"
    result["latency_ms"] = _ms(started)
    return result


async def health(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS_KEY]
    database, rasa, actions = await asyncio.gather(
        check_database(app),
        check_http(app[HTTP_KEY], f"{settings.rasa_url}/"),
        check_http(app[HTTP_KEY], f"{settings.actions_url}/health"),
    )
    all_ok = database["ok"] and rasa["ok"] and actions["ok"]
    status = "ok" if all_ok else "degraded"
    body: dict[str, Any] = {"status": status}
    # The session (if any) was loaded by auth_middleware; the token is checked here.
    if principal(request) is not None or has_bearer(request):
        body.update(database=database, rasa=rasa, actions=actions)
    return web.json_response(
        body,
        status=200 if database["ok"] else 503,
        # Load balancers and monitors must see the state now, not a cached one.
        headers={"Cache-Control": "no-store"},
    )
