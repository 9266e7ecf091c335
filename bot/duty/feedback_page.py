"""``/duty/feedback``: what people wrote in their own words at the end of the feedback survey.

For the roles that read transcripts (``transcript``: peer workers and duty managers), with a
transcript's audit: ``bot/feedback/reading.py`` commits an entry naming who read which
comments before their words are read. Newest first, ``PAGE_SIZE`` a page
(``?before=<id>`` for older ones). No conversation id or escalation is shown, and none of it
is in the report.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.duty import auth
from bot.duty.console import render
from bot.duty.errors import ApiError
from bot.duty.keys import SETTINGS_KEY
from bot.duty.rundb import run_db
from bot.feedback import reading
from bot.feedback.questions import configured
from bot.store.models import utcnow

log = logging.getLogger(__name__)

SET_LABELS = {"default": "Service user", "carers": "Carer"}
CHANNEL_LABELS = {"sms": "SMS", "socketio": "web chat", "webchat": "web chat"}


def _local(at: dt.datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"


async def feedback_page(request: web.Request) -> web.StreamResponse:
    who = auth.require(request, "transcript")
    raw = request.query.get("before")
    if raw is not None and (not raw.isdigit() or len(raw) > 18):
        raise ApiError(400, "bad_request", "before must be a comment number.")
    before = int(raw) if raw is not None else None
    page = await run_db(request, reading.read_page, who.actor, before, configured(),
                        reading.PAGE_SIZE, utcnow())
    if page.recorded is not None:
        # The entry is the record; the log names who and how many, never the words.
        log.info("feedback comments read by %s (%d shown)", who.actor, len(page.comments))
    tz = ZoneInfo(request.app[SETTINGS_KEY].tz_line)
    comments = [
        {"id": c.id, "at": _local(c.at, tz), "iso": c.at.isoformat(timespec="seconds"),
         "who": SET_LABELS.get(c.set_name, c.set_name),
         "channel": CHANNEL_LABELS.get(c.channel, c.channel),
         "question": c.question, "text": c.text}
        for c in page.comments
    ]
    readings = [{"at": _local(r["at"], tz), "iso": r["at"].isoformat(timespec="seconds"),
                 "actor": r["actor"], "count": r["count"]} for r in page.readings]
    return render(request, "feedback.html", comments=comments, older=page.older,
                  first_page=before is None, readings=readings)
