"""Middlewares: errors (never a traceback), and who may reach ``/api``, ``/duty``, ``/metrics``.

Order matters: ``error_middleware`` is outermost so that it also renders the 401s and 404s
raised further in; ``auth_middleware`` runs before any protected handler, including routes
that do not exist, so that nothing under ``/api`` or ``/duty`` answers (not even "not found")
without a valid token or staff session.

Security headers are added in ``on_prepare`` (a response signal, not a middleware) so that
redirects, errors and static files get them too.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.duty import auth, staff
from bot.duty.errors import ApiError, error_body
from bot.duty.keys import SETTINGS_KEY
from bot.duty.rundb import run_db

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_PREFIX = "/api/"
# The one API path a commissioner's session may read (the anonymous report's figures).
REPORT_API = "/api/report"
CONSOLE_PREFIX = "/duty"
# Paths answered in JSON; everything else (the console and web chat pages) gets text.
JSON_PREFIXES = ("/api/", "/health", "/metrics")
# Paths where a staff session cookie is read (nowhere else, so the carer's page never does).
# /health reads it only to decide how much to say (bot/duty/health.py).
SESSION_PATHS = ("/api", "/duty", "/metrics", "/login", "/logout", "/health")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

__all__ = [
    "ApiError",
    "auth_middleware",
    "check_bearer",
    "error_middleware",
    "on_prepare",
    "quiet_malformed_requests",
]


def _wants_json(request: web.Request) -> bool:
    return (
        request.path == "/api"
        or request.path.startswith(JSON_PREFIXES)
        or request.path.endswith(".json")
    )


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
        if not _wants_json(request):
            return web.Response(
                status=exc.status, text=f"{exc.status}: {exc.message}", headers=exc.headers
            )
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


class MalformedRequestLogFilter(logging.Filter):
    """One WARNING line, without a traceback, for an HTTP request aiohttp could not parse.

    aiohttp 3.9 (pinned by Rasa) logs such a request, a client's mistake it answers with 400,
    at ERROR with a traceback that quotes the offending header line, which can hold a session
    cookie or the API token (found by tests/fuzz).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and (exc.code or 400) < 500:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "refused an HTTP request that could not be parsed (%s %s)"
            record.args = (exc.code, type(exc).__name__)
            record.exc_info, record.exc_text = None, None
        return True


def quiet_malformed_requests() -> None:
    """Install ``MalformedRequestLogFilter`` on aiohttp's server logger (once per process)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestLogFilter) for f in logger.filters):
        logger.addFilter(MalformedRequestLogFilter())


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="duty"'})


def has_bearer(request: web.Request) -> bool:
    """Whether the request carries the right API token (no error either way)."""
    try:
        check_bearer(request)
    except ApiError:
        return False
    return True


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
    # Constant-time comparison, on bytes so that a non-ASCII header cannot raise; aiohttp
    # hands bytes that are not UTF-8 over as lone surrogates, which only surrogateescape
    # turns back into bytes (found by tests/fuzz: they were a 500).
    given_bytes = given.strip().encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given_bytes, expected.encode("utf-8")):
        raise _unauthorized("The bearer token is not valid.")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


async def _load_principal(request: web.Request) -> None:
    token = request.cookies.get(auth.session_cookie_name(request))
    # Our tokens are short URL-safe ASCII; anything else is no session (and a cookie that is
    # not UTF-8 would not even hash: found by tests/fuzz).
    if not token or len(token) > 128 or not token.isascii():
        return
    who = await run_db(request, staff.load_session, token)
    if who is not None:
        request[auth.PRINCIPAL] = who
        request[auth.SESSION_TOKEN] = token


def _no_session(request: web.Request) -> Exception:
    # A person at a browser is sent to sign in; scripts (JSON, POSTs) get a plain 401.
    if request.method in ("GET", "HEAD") and not _wants_json(request):
        return web.HTTPSeeOther("/login")
    return ApiError(401, "unauthorized", "Sign in to the duty console first.")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if not path.startswith(SESSION_PATHS):
        return await handler(request)
    await _load_principal(request)
    who = auth.principal(request)

    if _under(path, "/api") or path == "/metrics":
        permission = {"/metrics": "metrics", REPORT_API: "report"}.get(path, "api")
        # Machines send the bearer token; a browser signed in to the console sends its
        # session cookie. Nothing here answers without one of the two (issue 6).
        if "Authorization" in request.headers or who is None:
            check_bearer(request)
        elif not auth.can(who, permission):
            raise ApiError(403, "forbidden", "Your role does not give access to this.")
        elif request.method in UNSAFE_METHODS:
            await auth.check_session_csrf(request, who)
        return await handler(request)

    if _under(path, CONSOLE_PREFIX) or path == "/logout":
        if who is None:
            raise _no_session(request)
        if request.method in UNSAFE_METHODS:
            await auth.check_session_csrf(request, who)
        return await handler(request)

    return await handler(request)


BASE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
# Pages that show what people wrote, and sign-in forms, are never kept in a browser's cache
# or its back-forward cache (a shared family computer, a shared office PC).
NO_STORE_PREFIXES = ("/duty", "/login", "/logout", "/api", "/metrics")
# Two years, as the shipped nginx sends: once a browser has seen the console over HTTPS it
# never tries plain HTTP for it again (a café's network cannot strip TLS from a sign-in).
HSTS = "max-age=63072000"
# aiohttp's default names Python's and its own version; this says only what answers.
SERVER = "crisis-line"


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", BASE_CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # "Leave this site quickly" must not tell the neutral site where the person came from.
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.path == "/" or request.path.startswith(NO_STORE_PREFIXES):
        headers["Cache-Control"] = "no-store"
    # Set here, before aiohttp adds its default (it only sets Server when absent).
    headers["Server"] = SERVER
    if request.app[SETTINGS_KEY].duty_public_url.startswith("https://"):
        # The duty service itself speaks plain HTTP behind the TLS proxy; the public URL says
        # whether browsers reach it over HTTPS (as for the cookies' Secure flag).
        headers.setdefault("Strict-Transport-Security", HSTS)
