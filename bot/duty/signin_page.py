"""The sign-in steps after the password (``/login/next``): new password, code, second factor set-up.

What each step is and why: ``bot/duty/signin.py``. The half-done sign-in travels in the
session cookie (a pending session, refused by every console page); each form carries the
pending session's CSRF token. Wrong codes count in the same sign-in limiter as wrong
passwords, per (username, client address), and a key that must wait is not even checked.
Neither a code nor a secret is logged.
"""

from __future__ import annotations

import logging
from typing import Optional

from aiohttp import web

from bot.duty import auth, signin, twofactor
from bot.duty import staff as staff_module
from bot.duty.console import _address, home_for, render
from bot.duty.errors import ApiError
from bot.duty.keys import LIMITER_KEY, SETTINGS_KEY
from bot.duty.rundb import run_db

log = logging.getLogger(__name__)

NEXT = "/login/next"


def _token(request: web.Request) -> Optional[str]:
    token = request.cookies.get(auth.session_cookie_name(request))
    if not token or len(token) > 128 or not token.isascii():
        return None
    return token


async def _pending(request: web.Request) -> tuple[str, signin.Pending]:
    """The half-done sign-in of this browser; anything else goes back to the sign-in form."""
    token = _token(request)
    pending = await run_db(request, signin.load_pending, token) if token else None
    if pending is None:
        raise web.HTTPSeeOther("/login")
    return token, pending


async def _checked_form(request: web.Request, pending: signin.Pending):
    form = await request.post()
    if not auth.same(form.get(auth.CSRF_FIELD), pending.csrf_token):
        raise ApiError(403, "csrf", "This form has expired; sign in again.")
    return form


def _step_page(request: web.Request, pending: signin.Pending, status: int = 200,
               error: str = "") -> web.Response:
    context = {"stage": pending.stage, "step_csrf": pending.csrf_token, "error": error,
               "username": pending.username, "uri": "", "secret": ""}
    if pending.stage == "enrol":
        settings = request.app[SETTINGS_KEY]
        secret = twofactor.unseal(pending.pending_secret or "", settings.staff_2fa_key) or ""
        context["uri"] = twofactor.provisioning_uri(secret, pending.username)
        context["secret"] = twofactor.spaced(secret)
    return render(request, "login_step.html", status=status, **context)


def _go_on(request: web.Request, token: str, stage: str) -> web.HTTPSeeOther:
    """The redirect to the next step (or the console), carrying the new session cookie."""
    settings = request.app[SETTINGS_KEY]
    resp = web.HTTPSeeOther(NEXT if stage != "ok" else "/duty")
    max_age = settings.duty_session_hours * 3600 if stage == "ok" else signin.PENDING_MINUTES * 60
    auth.set_cookie(request, resp, auth.session_cookie_name(request), token, max_age=max_age)
    return resp


async def _signed_in(request: web.Request, old_token: str, staff_id: int) -> web.HTTPSeeOther:
    settings = request.app[SETTINGS_KEY]
    await run_db(request, signin.end, old_token)
    token = await run_db(request, staff_module.open_session, staff_id, settings.duty_session_hours)
    who = await run_db(request, staff_module.load_session, token)
    resp = _go_on(request, token, "ok")
    resp.headers["Location"] = home_for(who) if who else "/duty"
    return resp


async def next_step(request: web.Request) -> web.StreamResponse:
    _, pending = await _pending(request)
    return _step_page(request, pending)


async def new_password(request: web.Request) -> web.StreamResponse:
    token, pending = await _pending(request)
    if pending.stage != "password":
        raise web.HTTPSeeOther(NEXT)
    form = await _checked_form(request, pending)
    new = str(form.get("new_password", ""))[:1024]
    again = str(form.get("new_password_again", ""))[:1024]
    try:
        await run_db(request, signin.change_password, pending, new, again)
    except staff_module.AccountError as exc:
        return _step_page(request, pending, 400, f"Not changed: {exc}.")
    log.info("console password changed by its holder at sign-in (staff id %d)", pending.staff_id)
    settings = request.app[SETTINGS_KEY]
    await run_db(request, signin.end, token)
    token, stage = await run_db(request, signin.begin, pending.staff_id, settings.staff_2fa,
                                settings.duty_session_hours, settings.staff_2fa_key)
    raise _go_on(request, token, stage)


async def _limited(request: web.Request, pending: signin.Pending) -> Optional[web.Response]:
    limiter = request.app[LIMITER_KEY]
    wait = limiter.retry_after(pending.username, _address(request))
    if not wait:
        return None
    log.warning("console sign-in limit hit at the second factor (user %s): retry in %d s",
                limiter.tag(pending.username), wait)
    resp = _step_page(request, pending, 429,
                      f"Too many attempts. Try again in {wait} seconds, or ask the duty manager.")
    resp.headers["Retry-After"] = str(wait)
    return resp


async def code(request: web.Request) -> web.StreamResponse:
    token, pending = await _pending(request)
    if pending.stage != "totp":
        raise web.HTTPSeeOther(NEXT)
    form = await _checked_form(request, pending)
    limited = await _limited(request, pending)
    if limited is not None:
        return limited
    limiter = request.app[LIMITER_KEY]
    settings = request.app[SETTINGS_KEY]
    how = await run_db(request, signin.check_code, pending.staff_id, str(form.get("code", "")),
                       settings.staff_2fa_key)
    if how is None:
        limiter.failed(pending.username, _address(request))
        log.info("console second factor refused (user %s)", limiter.tag(pending.username))
        return _step_page(request, pending, 401,
                          "That code did not work. Codes change every 30 seconds and each "
                          "works once: wait for the next one, or use a recovery code.")
    limiter.succeeded(pending.username, _address(request))
    log.info("console sign-in for %r (second factor: %s)", pending.username, how)
    raise await _signed_in(request, token, pending.staff_id)


async def enrol(request: web.Request) -> web.StreamResponse:
    token, pending = await _pending(request)
    if pending.stage != "enrol":
        raise web.HTTPSeeOther(NEXT)
    form = await _checked_form(request, pending)
    limited = await _limited(request, pending)
    if limited is not None:
        return limited
    limiter = request.app[LIMITER_KEY]
    settings = request.app[SETTINGS_KEY]
    codes = await run_db(request, signin.confirm_enrolment, pending, str(form.get("code", "")),
                         settings.staff_2fa_key)
    if codes is None:
        limiter.failed(pending.username, _address(request))
        return _step_page(request, pending, 400,
                          "That code did not match. Check the app shows the line's console "
                          "account, and type the 6 digits it shows now.")
    limiter.succeeded(pending.username, _address(request))
    log.info("console second factor set up for %r", pending.username)
    redirect = await _signed_in(request, token, pending.staff_id)
    # Shown once, in this response (never cached: /login is no-store); then to the console.
    resp = render(request, "recovery_codes.html", codes=codes, home=redirect.headers["Location"])
    for morsel in redirect.cookies.values():
        resp.cookies[morsel.key] = morsel
    return resp
