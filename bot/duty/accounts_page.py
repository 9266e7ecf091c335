"""The console's staff accounts page (``/duty/staff``): add, disable, enable, reset.

Duty managers and admins only (``auth.PERMISSIONS["accounts"]``); everyone else gets 403.
The middleware has already refused anything without a session and any POST without the
session's CSRF token. What each change does, and its trail: ``bot/duty/account_admin.py``.

A temporary password (a new account, a reset) is shown once, in the response to the POST
that made it (never in a URL, never logged; the page is not cached), for the manager to pass
on; the member of staff replaces it at their next sign-in.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.duty import account_admin, auth
from bot.duty.console import _houses, render
from bot.duty.keys import SETTINGS_KEY
from bot.duty.rundb import run_db
from bot.store.models.duty import ROLES

log = logging.getLogger(__name__)

MAX_FIELD_CHARS = 64


def _text(form, name: str) -> str:
    value = form.get(name, "")
    return value.strip()[:MAX_FIELD_CHARS] if isinstance(value, str) else ""


async def _page(request: web.Request, status: int = 200, error: str = "",
                issued: tuple[str, str] | None = None, form: dict | None = None) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    rows = await run_db(request, account_admin.accounts)
    changes = await run_db(request, account_admin.recent_changes)
    return render(request, "staff.html", status=status, accounts=rows, changes=changes,
                  error=error, issued=issued, roles=ROLES, policy=settings.staff_2fa,
                  manager_roles=account_admin.MANAGER_ROLES, form=form or {})


async def staff_page(request: web.Request) -> web.StreamResponse:
    auth.require(request, "accounts")
    return await _page(request)


async def add(request: web.Request) -> web.StreamResponse:
    who = auth.require(request, "accounts")
    form = await request.post()
    fields = {k: _text(form, k) for k in ("username", "display_name", "role", "house")}
    if fields["role"] == "sanctuary_volunteer" and fields["house"]:
        known = await _houses(request)
        if known and fields["house"] not in known:
            return await _page(request, 400, "There is no sanctuary house with that id in the "
                               f"rota; known: {', '.join(sorted(known))}.", form=fields)
    try:
        password = await run_db(request, account_admin.add_account, who.actor, fields["username"],
                                fields["role"], fields["display_name"], fields["house"] or None)
    except account_admin.Refused as exc:
        return await _page(request, exc.status, exc.message, form=fields)
    log.info("console account added by %s (role %s)", who.actor, fields["role"])
    username = fields["username"].lower()
    return await _page(request, issued=(username, password))


async def _change(request: web.Request, action: str) -> web.StreamResponse:
    who = auth.require(request, "accounts")
    form = await request.post()
    username = _text(form, "username")
    try:
        if action == "disable":
            await run_db(request, account_admin.set_active, who.actor, username, False)
        elif action == "enable":
            await run_db(request, account_admin.set_active, who.actor, username, True)
        elif action == "reset_2fa":
            await run_db(request, account_admin.reset_second_factor, who.actor, username)
        else:
            password = await run_db(request, account_admin.reset_password, who.actor, username)
            log.info("console password reset by %s", who.actor)
            return await _page(request, issued=(username.lower(), password))
    except account_admin.Refused as exc:
        return await _page(request, exc.status, exc.message)
    log.info("console account %s by %s", action, who.actor)
    if action == "disable" and username.lower() == who.username:
        # They have just ended their own session.
        raise web.HTTPSeeOther("/login")
    notice = {"disable": "account_disabled", "enable": "account_enabled",
              "reset_2fa": "second_factor_reset"}[action]
    raise web.HTTPSeeOther(f"/duty/staff?notice={notice}")


async def disable(request: web.Request) -> web.StreamResponse:
    return await _change(request, "disable")


async def enable(request: web.Request) -> web.StreamResponse:
    return await _change(request, "enable")


async def reset_password(request: web.Request) -> web.StreamResponse:
    return await _change(request, "reset_password")


async def reset_second_factor(request: web.Request) -> web.StreamResponse:
    return await _change(request, "reset_2fa")

