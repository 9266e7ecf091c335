"""``run_db``: blocking SQLAlchemy work in the app's thread pool, never on the event loop."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import exc as sa_exc

from bot.duty.errors import ApiError
from bot.duty.keys import DB_EXECUTOR_KEY, ENGINE_KEY

log = logging.getLogger(__name__)

T = TypeVar("T")

# Errors that mean "the database is not there right now" (down, unreachable, locked, not
# migrated on SQLite), as opposed to a bug: these become 503, everything else a 500.
DB_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


async def run_db(request: web.Request, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(engine, *args)`` in the database thread pool; 503 when the database is down."""
    app = request.app
    call = functools.partial(fn, app[ENGINE_KEY], *args)
    try:
        return await asyncio.get_running_loop().run_in_executor(app[DB_EXECUTOR_KEY], call)
    except DB_UNAVAILABLE as exc:
        # The class is enough to diagnose; the message can carry connection details.
        cause = getattr(exc, "orig", None) or exc
        log.warning("database unavailable for %s: %s", request.path, type(cause).__name__)
        raise ApiError(
            503,
            "database_unavailable",
            "The database is not answering; try again shortly.",
            headers={"Retry-After": "5"},
        ) from None
