"""JSON API handlers under ``/api`` (bearer token or staff session: ``auth_middleware``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from aiohttp import web

from bot.duty import openapi, queries
from bot.duty.errors import ApiError
from bot.duty.rundb import DB_UNAVAILABLE, run_db  # noqa: F401  run_db's home used to be here
from bot.store.models import utcnow

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
LIST_PARAMS = {"status", "level", "limit"}
# Ids are PostgreSQL INTEGERs; a larger number would be a database error, not a "not found".
MAX_ID = 2**31 - 1
# Matched with fullmatch: "$" would also match before a final newline, and "1\n" is not id 1
# (found by tests/fuzz).
_ID_RE = re.compile(r"[0-9]{1,10}")
_REF_RE = re.compile(r"[A-Za-z0-9]{1,12}")


def _choices(request: web.Request, name: str, allowed: Sequence[str]) -> list[str]:
    """``?name=a,b`` or ``?name=a&name=b``; 400 naming the bad value and what is allowed."""
    values: list[str] = []
    for raw in request.query.getall(name, []):
        for value in raw.split(","):
            value = value.strip().lower()
            if value not in allowed:
                raise ApiError(
                    400,
                    "bad_request",
                    f"{name} must be one of {', '.join(allowed)} (comma-separated for several); "
                    f"got {value!r}",
                )
            if value not in values:
                values.append(value)
    return values


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    # ASCII digits only: str.isdigit() also says yes to "²" or "١", which int() then refuses
    # or reads as another number (found by tests/fuzz: "?limit=²" was a 500).
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, "bad_request", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


async def list_escalations(request: web.Request) -> web.Response:
    # Unknown parameters are refused rather than ignored: a mistyped filter (?stauts=open)
    # would otherwise silently return every escalation.
    unknown = sorted(set(request.query) - LIST_PARAMS)
    if unknown:
        raise ApiError(
            400,
            "bad_request",
            f"unknown query parameter(s): {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(LIST_PARAMS))}",
        )
    statuses = _choices(request, "status", queries.STATUSES)
    levels = _choices(request, "level", queries.RISK_ORDER)
    limit = _limit(request)
    rows = await run_db(request, queries.list_escalations, statuses, levels, limit, utcnow())
    # A bare array, as DESIGN.md's interface promises; the limit applied is in a header.
    return web.json_response(rows, headers={"X-Result-Limit": str(limit)})


def parse_key(key: str) -> tuple[int | None, str | None]:
    """``(id, None)`` for a numeric id, ``(None, REF)`` for a reference; ``(None, None)`` if neither."""
    if _ID_RE.fullmatch(key):
        number = int(key)
        return (number, None) if 1 <= number <= MAX_ID else (None, None)
    if _REF_RE.fullmatch(key):
        # Staff type references from an SMS on a phone keyboard; case must not matter.
        return None, key.upper()
    return None, None


async def get_escalation(request: web.Request) -> web.Response:
    key = request.match_info["id"]
    escalation_id, ref = parse_key(key)
    found = None
    if escalation_id is not None or ref is not None:
        found = await run_db(request, queries.get_escalation, escalation_id, ref, utcnow())
    if found is None:
        raise ApiError(404, "not_found", "No escalation with that id or reference.")
    return web.json_response(found)


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(openapi.document())

