"""The duty console (``/duty``), sign-in (``/login``) and sign-out (``/logout``).

Access is checked twice: ``auth_middleware`` refuses anything under ``/duty`` without a live
session and any POST without the session's CSRF token; each handler then ``require``s the
permission its page needs (``bot/duty/auth.py`` has the table of roles).

Pages are server-rendered (Jinja2, autoescaped) and work without JavaScript except what is
live: ``static/console.js`` refreshes the queue from ``/duty/queue.json`` and an open
conversation's transcript from ``/duty/e/{ref}/messages.json`` every few seconds, and sends
replies with ``fetch()`` so the page is not reloaded. The rota page is ``rota_console.py``.
No inline script or style: the Content-Security-Policy forbids both.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from typing import Any, Optional

import jinja2
from aiohttp import web

from bot.duty import auth, console_db, notices, signin, staff, transcripts
from bot.duty.errors import ApiError
from bot.duty.keys import DB_EXECUTOR_KEY, LIMITER_KEY, ROTA_GAPS_KEY, SETTINGS_KEY, TAKEOVER_KEY
from bot.duty.ratelimit import client_address
from bot.duty.rundb import run_db
from bot.duty.takeover import MAX_REPLY_CHARS, TakeoverError
from bot.escalation import blocks
from bot.settings import ROOT
from bot.store.models import utcnow

log = logging.getLogger(__name__)

TEMPLATES = ROOT / "bot" / "duty" / "templates"
LEVEL_LABELS = {"imminent": "Imminent risk", "urgent": "Urgent", "support": "Wants a person"}
ROLE_LABELS = {
    "peer_worker": "Peer worker",
    "duty_manager": "Duty manager",
    "sanctuary_volunteer": "Sanctuary volunteer",
    "admin": "Admin",
    "commissioner": "Commissioner",
}


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    who = auth.principal(request)
    context.setdefault("who", who)
    context.setdefault("can", lambda permission: auth.can(who, permission))
    context.setdefault("csrf", who.csrf_token if who else "")
    context.setdefault("level_labels", LEVEL_LABELS)
    context.setdefault("role_labels", ROLE_LABELS)
    # A fixed text chosen by code, never the query's own words (bot/duty/notices.py).
    ref = request.match_info.get("ref", "").upper()
    context.setdefault("notice", notices.text(
        request.query.get("notice", ""), ref if ref.isalnum() and len(ref) <= 12 else ""))
    gaps = request.app.get(ROTA_GAPS_KEY)
    context.setdefault("rota_gaps", gaps.lines if gaps is not None and auth.can(who, "queue") else [])
    html = _env().get_template(template).render(**context)
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


def home_for(who: staff.Principal) -> str:
    if auth.can(who, "queue"):
        return "/duty"
    if auth.can(who, "sanctuary"):
        return "/duty/sanctuary"
    return "/duty/report"


# --- sign-in -------------------------------------------------------------------------------


def _address(request: web.Request) -> str:
    # Used only as a rate-limit key in memory (hashed); never logged or stored in clear.
    return client_address(request, request.app[SETTINGS_KEY].trusted_proxies)


def _login_page(request: web.Request, status: int = 200, error: str = "", username: str = "") -> web.Response:
    token = auth.new_login_csrf()
    resp = render(request, "login.html", status=status, error=error, username=username, login_csrf=token)
    # Double-submit token for the sign-in form (there is no session yet to hold one).
    auth.set_cookie(request, resp, auth.LOGIN_CSRF_COOKIE, token, max_age=3600)
    return resp


async def login_form(request: web.Request) -> web.StreamResponse:
    who = auth.principal(request)
    if who is not None:
        raise web.HTTPSeeOther(home_for(who))
    return _login_page(request)


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if not auth.same(form.get(auth.CSRF_FIELD), request.cookies.get(auth.LOGIN_CSRF_COOKIE)):
        raise ApiError(403, "csrf", "The sign-in form expired; reload the page and try again.")
    username = staff.normalise_username(str(form.get("username", "")))[:64]
    password = str(form.get("password", ""))[:1024]
    limiter = request.app[LIMITER_KEY]
    address = _address(request)
    wait = limiter.retry_after(username, address)
    if wait:
        # Tags, not names: a username box sometimes holds a password typed in the wrong place.
        log.warning(
            "console sign-in limit hit (user %s, address %s): retry in %d s",
            limiter.tag(username), limiter.tag(address), wait,
        )
        resp = _login_page(
            request, 429,
            f"Too many attempts with this username from here. Try again in {wait} seconds, "
            "or ask the duty manager.",
            username,
        )
        resp.headers["Retry-After"] = str(wait)
        return resp
    staff_id = await run_db(request, staff.authenticate, username, password)
    if staff_id is None:
        limiter.failed(username, address)
        log.info("console sign-in refused (user %s)", limiter.tag(username))
        return _login_page(request, 401, "That username and password did not match.", username)
    limiter.succeeded(username, address)
    settings = request.app[SETTINGS_KEY]
    hours = settings.duty_session_hours
    # A temporary password to change, or a second factor to give or set up, first
    # (bot/duty/signin.py): then the session is a pending one, good only for /login/next.
    token, stage = await run_db(request, signin.begin, staff_id, settings.staff_2fa, hours,
                                settings.staff_2fa_key)
    if stage != "ok":
        resp = web.HTTPSeeOther("/login/next")
        auth.set_cookie(request, resp, auth.session_cookie_name(request), token,
                        max_age=signin.PENDING_MINUTES * 60)
        auth.clear_cookie(request, resp, auth.LOGIN_CSRF_COOKIE)
        raise resp
    who = await run_db(request, staff.load_session, token)
    log.info("console sign-in for %r", username)
    resp = web.HTTPSeeOther(home_for(who) if who else "/duty")
    auth.set_cookie(request, resp, auth.session_cookie_name(request), token, max_age=hours * 3600)
    auth.clear_cookie(request, resp, auth.LOGIN_CSRF_COOKIE)
    raise resp


async def logout(request: web.Request) -> web.StreamResponse:
    token = request.get(auth.SESSION_TOKEN)
    if token:
        await run_db(request, staff.close_session, token)
    resp = web.HTTPSeeOther("/login")
    auth.clear_cookie(request, resp, auth.session_cookie_name(request))
    raise resp


# --- queue and conversations ---------------------------------------------------------------


async def queue_page(request: web.Request) -> web.StreamResponse:
    who = auth.principal(request)
    if who is not None and not auth.can(who, "queue"):
        if auth.can(who, "sanctuary"):
            raise web.HTTPSeeOther("/duty/sanctuary")
        if auth.can(who, "report"):
            raise web.HTTPSeeOther("/duty/report")
    auth.require(request, "queue")
    rows = await run_db(request, console_db.queue, utcnow())
    return render(request, "queue.html", rows=rows)


async def queue_json(request: web.Request) -> web.Response:
    auth.require(request, "queue")
    rows = await run_db(request, console_db.queue, utcnow())
    return web.json_response({"escalations": rows})


def _ref(request: web.Request) -> str:
    ref = request.match_info["ref"].upper()
    if not ref.isalnum() or len(ref) > 12:
        raise ApiError(404, "not_found", "No such escalation.")
    return ref


async def _houses(request: web.Request) -> dict[str, str]:
    loop = asyncio.get_running_loop()
    cfg = request.app[SETTINGS_KEY]
    return await loop.run_in_executor(request.app[DB_EXECUTOR_KEY], house_names, cfg.rota_file,
                                      cfg.database_url)


def house_names(path: str, url: Optional[str] = None) -> dict[str, str]:
    """Sanctuary house ids and names from the current rota (empty when there is none).

    The database's rota (``path``, ROTA_FILE, is imported only into an empty database); each
    call checks the latest version number, so a rota edited in the console, by this duty
    service or another, shows its new houses at once.
    """
    from bot.escalation import rota_store

    try:
        r = rota_store.source_for(path, url).get()
    except Exception as exc:  # noqa: BLE001  the console still works without house names
        log.warning("cannot read the rota for house names (%s)", type(exc).__name__)
        return {}
    return {h.id: h.name for h in r.sanctuaries.values()}


def _signed_in_at(request: web.Request, who: staff.Principal) -> dt.datetime:
    hours = request.app[SETTINGS_KEY].duty_session_hours
    return who.expires_at - dt.timedelta(hours=hours)


async def conversation_page(request: web.Request) -> web.StreamResponse:
    who = auth.require(request, "transcript")
    ref = _ref(request)
    view = await run_db(request, console_db.open_conversation, ref, who.actor, True, utcnow(),
                        _signed_in_at(request, who))
    if view is None:
        raise ApiError(404, "not_found", "No such escalation.")
    takeover = request.app.get(TAKEOVER_KEY)
    houses: list[tuple[str, str]] = list(takeover.referral_houses()) if takeover else []
    # The block list (bot/duty/blocks_console.py): shown to every reader, changed by managers.
    sender_block = await run_db(request, blocks.for_ref, ref)
    return render(
        request,
        "conversation.html",
        sender_block=sender_block,
        block_durations=blocks.DURATIONS,
        max_block_reason=blocks.MAX_REASON,
        esc=view.escalation,
        messages=view.messages,
        cursor=view.cursor,
        cut=view.cut,
        transcript_available=view.transcript_available,
        sharing_refused=view.sharing_refused,
        held_back=view.held_back,
        held_back_risk=view.held_back_risk,
        overridden=view.overridden,
        conversation_risk=view.conversation_risk,
        plan=view.plan,
        max_reason=console_db.MAX_OVERRIDE_REASON,
        outcomes=console_db.OUTCOMES,
        takeover=takeover is not None,
        houses=houses,
        max_reply=MAX_REPLY_CHARS,
    )


def _message_json(m: transcripts.Message) -> dict[str, Any]:
    return {"seq": m.seq, "at": m.at, "who": m.who, "text": m.text, "risk": m.risk,
            "staff_name": m.staff_name}


async def messages_json(request: web.Request) -> web.Response:
    """``GET /duty/e/{ref}/messages.json?after=N``: the live transcript's new messages.

    The conversation page polls this while it is open (``static/console.js``), so the
    person's messages and staff replies appear without a reload. Read-only, so no CSRF
    token; the opening is audited, not each poll (``console_db.new_messages``).
    """
    who = auth.require(request, "transcript")
    ref = _ref(request)
    raw = request.query.get("after", "0")
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(400, "bad_request", "after must be a message number.")
    update = await run_db(request, console_db.new_messages, ref, who.actor, int(raw),
                          _signed_in_at(request, who))
    if update is None:
        raise ApiError(404, "not_found", "No such escalation.")
    return web.json_response({
        "ref": ref, "status": update.status, "after": update.cursor,
        "messages": [_message_json(m) for m in update.messages],
    })


async def read_anyway(request: web.Request) -> web.StreamResponse:
    """``POST /duty/e/{ref}/read-anyway``: read what a person asked not to be passed on.

    Only with a typed reason (e.g. risk to life), which goes on the audit trail with the
    staff id before anything is shown; the page then shows this member of staff the held-back
    messages for the rest of their session (a new sign-in asks again).
    """
    who = auth.require(request, "transcript")
    ref = _ref(request)
    form = await request.post()
    reason = str(form.get("reason", ""))[:2000]
    try:
        found = await run_db(request, console_db.read_despite_refusal, ref, who.actor, reason)
    except console_db.ActionRefused as exc:
        raise _back(ref, notices.code_for(str(exc), ref)) from None
    if not found:
        raise ApiError(404, "not_found", "No such escalation.")
    log.info("held-back transcript of %s read by %s despite a refusal to share", ref, who.actor)
    raise web.HTTPSeeOther(f"/duty/e/{ref}#transcript-h")


def _wants_json(request: web.Request) -> bool:
    # The conversation page's script sends replies with fetch() and asks for JSON, so the
    # page is not reloaded (a reload is a new, audited opening of the transcript).
    return "application/json" in request.headers.get("Accept", "")


def _back(ref: str, code: str = "") -> web.HTTPSeeOther:
    """Back to the conversation page, with a notice code (``bot/duty/notices.py``)."""
    return web.HTTPSeeOther(f"/duty/e/{ref}" + notices.query(code))


async def acknowledge(request: web.Request) -> web.StreamResponse:
    who = auth.require(request, "act")
    ref = _ref(request)
    try:
        await run_db(request, console_db.acknowledge, ref, who.actor)
    except console_db.ActionRefused as exc:
        raise _back(ref, notices.code_for(str(exc), ref)) from None
    raise _back(ref, "acknowledged")


async def resolve(request: web.Request) -> web.StreamResponse:
    who = auth.require(request, "act")
    ref = _ref(request)
    form = await request.post()
    try:
        await run_db(request, console_db.resolve, ref, who.actor, str(form.get("outcome", "")))
    except console_db.ActionRefused as exc:
        raise _back(ref, notices.code_for(str(exc), ref)) from None
    # The person may now be offered the feedback survey, through the takeover engine's staff
    # relay (in the background: docs/feedback.md, "When the line asks").
    engine = request.app.get(TAKEOVER_KEY)
    after = getattr(engine, "resolved", None)
    if after is not None:
        after(ref)
    raise _back(ref, "resolved")


async def _takeover_step(request: web.Request, step: str) -> web.StreamResponse:
    who = auth.require(request, "act")
    ref = _ref(request)
    engine = request.app[TAKEOVER_KEY]
    form = await request.post()
    try:
        if step == "take_over":
            await engine.take_over(ref, who)
            notice = "taken_over"
        elif step == "reply":
            text = str(form.get("text", "")).strip()
            if not text or len(text) > MAX_REPLY_CHARS:
                raise TakeoverError(f"Write a reply of 1 to {MAX_REPLY_CHARS} characters.")
            await engine.reply(ref, who, text)
            notice = "reply_sent"
        elif step == "hand_back":
            await engine.hand_back(ref, who)
            notice = "handed_back"
        else:
            house = str(form.get("house", ""))
            if house not in dict(engine.referral_houses()):
                raise TakeoverError("Choose a house from the list.")
            await engine.refer(ref, who, house)
            notice = "referred"
    except TakeoverError as exc:
        if _wants_json(request):
            return web.json_response({"ok": False, "notice": str(exc)}, status=409)
        raise _back(ref, notices.code_for(str(exc), ref)) from None
    if _wants_json(request):
        return web.json_response({"ok": True, "notice": notices.text(notice, ref)})
    raise _back(ref, notice)


async def take_over(request: web.Request) -> web.StreamResponse:
    return await _takeover_step(request, "take_over")


async def reply(request: web.Request) -> web.StreamResponse:
    return await _takeover_step(request, "reply")


async def hand_back(request: web.Request) -> web.StreamResponse:
    return await _takeover_step(request, "hand_back")


async def refer(request: web.Request) -> web.StreamResponse:
    return await _takeover_step(request, "refer")


# --- sanctuary houses ----------------------------------------------------------------------


def _visible_house(who: staff.Principal) -> Optional[str]:
    # A volunteer sees their own house only; a duty manager sees every house (None).
    return who.house if who.role == "sanctuary_volunteer" else None


async def sanctuary_page(request: web.Request) -> web.StreamResponse:
    who = auth.require(request, "sanctuary")
    settings = request.app[SETTINGS_KEY]
    night = console_db.tonight(settings.tz_line)
    house = _visible_house(who)
    referrals = await run_db(request, console_db.referrals, house, utcnow())
    beds = await run_db(request, console_db.beds, night)
    names = await _houses(request)
    houses = [house] if house else sorted(set(names) | set(beds))
    return render(
        request, "sanctuary.html", referrals=referrals, beds=beds, houses=houses,
        names=names, night=night, max_beds=console_db.MAX_FREE_BEDS,
    )


async def sanctuary_beds(request: web.Request) -> web.StreamResponse:
    who = auth.require(request, "sanctuary")
    form = await request.post()
    house = _visible_house(who) or str(form.get("house", ""))
    if who.role == "sanctuary_volunteer" and form.get("house") not in (None, "", who.house):
        raise ApiError(403, "forbidden", "You can update your own house only.")
    names = await _houses(request)
    if who.role != "sanctuary_volunteer" and names and house not in names:
        raise web.HTTPSeeOther("/duty/sanctuary?notice=unknown_house")
    raw = str(form.get("free_beds", "")).strip()
    if not raw.isdigit():
        raise web.HTTPSeeOther("/duty/sanctuary?notice=beds_not_a_number")
    night = console_db.tonight(request.app[SETTINGS_KEY].tz_line)
    try:
        await run_db(request, console_db.set_beds, house, night, int(raw), who.actor)
    except console_db.ActionRefused:
        raise web.HTTPSeeOther("/duty/sanctuary?notice=beds_out_of_range") from None
    raise web.HTTPSeeOther("/duty/sanctuary?notice=beds_updated")
