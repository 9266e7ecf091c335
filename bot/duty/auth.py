"""Staff sign-in: who may do what, session cookies, CSRF tokens and the login rate limit.

Roles see only what their work needs (DESIGN.md, "Confidential"):

| permission   | peer_worker | duty_manager | sanctuary_volunteer | admin |
|--------------|:-----------:|:------------:|:-------------------:|:-----:|
| queue        | yes         | yes          |                     | yes   |
| transcript   | yes         | yes          |                     |       |
| act          | yes         | yes          |                     |       |
| api          | yes         | yes          |                     |       |
| sanctuary    |             | yes (all)    | yes (own house)     |       |
| metrics      |             | yes          |                     | yes   |
| rota         | yes         | yes          |                     | yes   |
| rota_edit    |             | yes          |                     | yes   |
| report       |             | yes          |                     |       |
| block        |             | yes          |                     |       |
| audit_export |             | yes          |                     |       |
| accounts     |             | yes          |                     | yes   |

A commissioner (a sixth role) has only ``report``: the anonymous figures of ``bot/report``
(console page ``/duty/report`` and ``GET /api/report``), never a conversation.

``accounts``: add, disable, re-enable, reset the password or the second factor of a console
account (``/duty/staff``; ``bot/duty/account_admin.py``). Those two roles must sign in with a
second factor whatever ``STAFF_2FA`` says (``bot/duty/signin.py``).

``transcript`` also opens the feedback survey's free-text comments (``/duty/feedback``),
audited as a transcript is. ``audit_export`` downloads an escalation's audit trail for an
incident system (``/duty/e/{ref}/audit.jsonl``; docs/audit.md).

``block``: only a duty manager puts a sender on the block list or lifts a block
(``bot/duty/blocks_console.py``); everyone who reads a transcript sees that a sender is
blocked.

An admin runs the service (accounts, metrics, the queue's shape, the rota) and has no need to
read what people wrote, so has no transcript, summary or API access. Peer workers see who is
on call (names, masked numbers) but only duty managers and admins change the rota.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Optional

from aiohttp import web

from bot.duty.keys import SETTINGS_KEY
from bot.duty.errors import ApiError
from bot.duty.staff import Principal

PERMISSIONS: dict[str, frozenset[str]] = {
    "queue": frozenset({"peer_worker", "duty_manager", "admin"}),
    "transcript": frozenset({"peer_worker", "duty_manager"}),
    "act": frozenset({"peer_worker", "duty_manager"}),
    "api": frozenset({"peer_worker", "duty_manager"}),
    "sanctuary": frozenset({"duty_manager", "sanctuary_volunteer"}),
    "metrics": frozenset({"duty_manager", "admin"}),
    "rota": frozenset({"peer_worker", "duty_manager", "admin"}),
    "rota_edit": frozenset({"duty_manager", "admin"}),
    "report": frozenset({"duty_manager", "commissioner"}),
    "block": frozenset({"duty_manager"}),
    "audit_export": frozenset({"duty_manager"}),
    "accounts": frozenset({"duty_manager", "admin"}),
}

PRINCIPAL = "staff"  # request[PRINCIPAL]: the signed-in Principal, or absent
SESSION_TOKEN = "staff_token"  # request[SESSION_TOKEN]: the raw cookie token (for sign-out)
LOGIN_CSRF_COOKIE = "duty_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def can(principal: Optional[Principal], permission: str) -> bool:
    return principal is not None and principal.role in PERMISSIONS[permission]


def principal(request: web.Request) -> Optional[Principal]:
    return request.get(PRINCIPAL)


def require(request: web.Request, permission: str) -> Principal:
    """The signed-in principal, or 403 when their role does not carry ``permission``."""
    who = principal(request)
    if who is None:
        # The middleware already refuses unsigned requests; this is a second lock.
        raise ApiError(401, "unauthorized", "Sign in first.")
    if not can(who, permission):
        raise ApiError(403, "forbidden", "Your role does not give access to this.")
    return who


def secure_cookies(request: web.Request) -> bool:
    # Behind the TLS proxy the duty service itself speaks plain HTTP, so the public URL, not
    # the request's scheme, says whether browsers reach it over HTTPS.
    return request.app[SETTINGS_KEY].duty_public_url.startswith("https://")


def session_cookie_name(request: web.Request) -> str:
    # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and
    # Path=/ (no sibling subdomain can plant or overwrite it); it needs HTTPS.
    return "__Host-duty_session" if secure_cookies(request) else "duty_session"


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure_cookies(request),
    )


def clear_cookie(request: web.Request, response: web.StreamResponse, name: str) -> None:
    response.del_cookie(name, path="/")


def same(a: Optional[str], b: Optional[str]) -> bool:
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


async def submitted_csrf(request: web.Request) -> Optional[str]:
    """The CSRF token a request carries: the header (scripts) or the form field (forms)."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        # aiohttp caches the parsed form, so the handler can read it again.
        form = await request.post()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_session_csrf(request: web.Request, who: Principal) -> None:
    if not same(await submitted_csrf(request), who.csrf_token):
        raise ApiError(
            403, "csrf", "This form has expired or did not come from the console; reload and try again."
        )


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)
