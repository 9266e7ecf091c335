"""The block list in the console: "Block this sender" on a conversation page, and
``/duty/blocks`` (every current block, with "Lift block", and the latest ended ones).

Only duty managers block and lift blocks (``auth.PERMISSIONS["block"]``; everyone else gets
403); everyone who reads transcripts sees on a conversation page that its sender is blocked.
The middleware has already refused anything without a session and any POST without the
session's CSRF token. A sender is chosen by the escalation whose page the form is on, so no
identifier is typed or shown: the list names each block by that escalation's reference.
What a block is and does: ``bot/escalation/blocks.py``, ``bot/channels/contact_turn.py``.
"""

from __future__ import annotations

from aiohttp import web

from bot.duty import auth, notices
from bot.duty.console import render
from bot.duty.errors import ApiError
from bot.duty.rundb import run_db
from bot.escalation import blocks
from bot.escalation.engine import NotFound


def _ref(request: web.Request) -> str:
    ref = request.match_info["ref"].upper()
    if not ref.isalnum() or len(ref) > 12:
        raise ApiError(404, "not_found", "No such escalation.")
    return ref


async def block_sender(request: web.Request) -> web.StreamResponse:
    """``POST /duty/e/{ref}/block``: ``reason`` (required) and ``hours`` (``blocks.DURATIONS``)."""
    who = auth.require(request, "block")
    ref = _ref(request)
    form = await request.post()
    try:
        await run_db(request, blocks.block, ref, who.actor, form.get("reason"), form.get("hours"))
    except NotFound:
        raise ApiError(404, "not_found", "No such escalation.") from None
    except blocks.BlockRefused as exc:
        raise web.HTTPSeeOther(f"/duty/e/{ref}" + notices.query(exc.code) + "#block-h") from None
    raise web.HTTPSeeOther(f"/duty/e/{ref}" + notices.query("sender_blocked") + "#block-h")


async def unblock_sender(request: web.Request) -> web.StreamResponse:
    """``POST /duty/blocks/{id}/unblock``; ``back=conversation`` returns to the page it came from."""
    who = auth.require(request, "block")
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise ApiError(404, "not_found", "No such block.")
    form = await request.post()
    try:
        ref = await run_db(request, blocks.unblock, int(raw), who.actor)
        code = "sender_unblocked"
    except blocks.BlockRefused as exc:
        ref, code = "", exc.code
    if ref and form.get("back") == "conversation":
        raise web.HTTPSeeOther(f"/duty/e/{ref}" + notices.query(code) + "#block-h")
    raise web.HTTPSeeOther("/duty/blocks" + notices.query(code))


async def blocks_page(request: web.Request) -> web.StreamResponse:
    auth.require(request, "block")
    found = await run_db(request, blocks.listing)
    return render(request, "blocks.html", current=found.current, ended=found.ended,
                  durations=blocks.DURATIONS)
