"""Middlewares: errors as JSON (never a traceback), and bearer-token access to ``/api``.

Order matters: ``error_middleware`` is outermost so that it also renders the 401s and 404s
raised further in; ``auth_middleware`` runs before any ``/api`` handler, including routes
that do not exist, so that nothing under ``/api`` answers (not even "not found") without a
valid token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.duty.keys import SETTINGS_KEY

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_PREFIX = "/api/"
# Paths answered in JSON; everything else (the future console and web chat pages) gets text.
JSON_PREFIXES = ("/api/", "/health")


class ApiError(Exception):
    """An error a handler means the client to see: status, a stable code and a message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": code, "message": message}


def _wants_json(request: web.Request) -> bool:
    return request.path == "/api" or request.path.startswith(JSON_PREFIXES)


def _code_for(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        503: "unavailable",
    }.get(status, "error")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(
            error_body(exc.code, exc.message), status=exc.status, headers=exc.headers
        )
    except web.HTTPException as exc:
        # Redirects and aiohttp's own 404/405 for unknown routes: keep the status, but
        # answer in JSON where clients expect JSON.
        if exc.status < 400 or not _wants_json(request):
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return web.json_response(
            error_body(_code_for(exc.status), exc.reason), status=exc.status, headers=headers
        )
    except Exception:
        # The traceback goes to the server log only. Handlers here never hold message text or
        # phone numbers, so the log cannot leak them; the client gets a bare 500.
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json(request):
            return web.json_response(
                error_body("internal_error", "The server could not answer this request."),
                status=500,
            )
        return web.Response(status=500, text="500: the server could not answer this request.")


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="duty"'})


def check_bearer(request: web.Request) -> None:
    """Raise a 401 unless the request carries ``Authorization: Bearer $DUTY_API_TOKEN``."""
    expected = request.app[SETTINGS_KEY].duty_api_token
    if not expected:
        # Fail closed: an unset token must never mean "no token needed".
        raise _unauthorized(
            "DUTY_API_TOKEN is not configured on this server, so the API refuses every "
            "token-based request."
        )
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise _unauthorized("Send Authorization: Bearer <DUTY_API_TOKEN>.")
    # Constant-time comparison, on bytes so that a non-ASCII header cannot raise.
    if not hmac.compare_digest(given.strip().encode("utf-8"), expected.encode("utf-8")):
        raise _unauthorized("The bearer token is not valid.")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Every path under /api needs the token, the OpenAPI document included (issue 6: no
    # route under /api answers without a session or token). Staff sessions join here later.
    if request.path == "/api" or request.path.startswith(API_PREFIX):
        check_bearer(request)
    return await handler(request)
