"""The console's rota page (``/duty/rota``): who is on call now, every shift, and shift edits.

Peer workers, duty managers and admins see the page; duty managers and admins change shifts
(``auth.PERMISSIONS``: ``rota``, ``rota_edit``). Sanctuary volunteers get 403 for both. The
middleware has already refused anything without a session and any POST without the
session's CSRF token. How an edit is checked, written and audited: ``bot/duty/rota_edit.py``;
the rota itself is in the database (``bot/escalation/rota_store.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Optional

from aiohttp import web

from bot.duty import auth, rota_edit
from bot.duty.console import render
from bot.duty.keys import SETTINGS_KEY
from bot.duty.rundb import run_db

log = logging.getLogger(__name__)

MAX_FIELD_CHARS = 64
MAX_LIST_ITEMS = 50


async def _page(
    request: web.Request, status: int = 200, error: str = "", problems: Sequence[str] = ()
) -> web.Response:
    view = await run_db(request, rota_edit.read_view, request.app[SETTINGS_KEY].rota_file)
    changes = await run_db(request, rota_edit.recent_changes)
    return render(
        request, "rota.html", status=status, view=view, changes=changes, error=error,
        problems=list(problems), day_names=rota_edit.DAY_NAMES,
    )


async def rota_page(request: web.Request) -> web.StreamResponse:
    auth.require(request, "rota")
    return await _page(request)


def _text(form, name: str) -> str:
    value = form.get(name, "")
    return value.strip()[:MAX_FIELD_CHARS] if isinstance(value, str) else ""


def _list(form, name: str) -> tuple[str, ...]:
    values = [v.strip()[:MAX_FIELD_CHARS] for v in form.getall(name, []) if isinstance(v, str)]
    return tuple(v for v in values if v)[:MAX_LIST_ITEMS]


def _index(form) -> Optional[int]:
    raw = _text(form, "index")
    return int(raw) if raw.isdigit() and len(raw) < 6 else None


async def _edit(request: web.Request, action: str) -> web.StreamResponse:
    who = auth.require(request, "rota_edit")
    form = await request.post()
    shift = None
    if action != "remove":
        shift = rota_edit.ShiftInput(
            days=_list(form, "days"), start=_text(form, "from"), end=_text(form, "to"),
            staff=_list(form, "staff"),
        )
    edit = rota_edit.Edit(action, _text(form, "team"), _index(form) if action != "add" else None, shift)
    try:
        done = await run_db(
            request, rota_edit.apply_edit, request.app[SETTINGS_KEY].rota_file, edit,
            _text(form, "version"), who.actor,
        )
    except rota_edit.EditRefused as exc:
        return await _page(request, status=exc.status, error=exc.message, problems=exc.problems)
    # Ids only: the log never carries a phone number (nor does the summary).
    log.info("rota edited by %s: %s (team %s, change %d)", who.actor, action, edit.team, done.change_id)
    # A fixed notice code (bot/duty/notices.py); the change itself is under "Recent changes".
    notice = {"add": "shift_added", "change": "shift_changed", "remove": "shift_removed"}[action]
    raise web.HTTPSeeOther(f"/duty/rota?notice={notice}")


async def add_shift(request: web.Request) -> web.StreamResponse:
    return await _edit(request, "add")


async def change_shift(request: web.Request) -> web.StreamResponse:
    return await _edit(request, "change")


async def remove_shift(request: web.Request) -> web.StreamResponse:
    return await _edit(request, "remove")
