"""The anonymous report in the duty service: ``/duty/report`` (duty managers, commissioners),
``/duty/report.csv``, ``GET /api/report`` (its figures as JSON) and, with ``REPORT_PUBLIC``,
``/report`` (the latest full month, no sign-in).

All four go through ``bot.report.service.make``, so they show the command's figures, small
numbers suppressed. The page is the report's own self-contained HTML with a date form on
top; it carries its CSS inline, so it is sent with a Content-Security-Policy of its own that
allows inline style and nothing else (no script at all, no outside source).
"""

from __future__ import annotations

import datetime as dt
import html
import time
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.duty import auth
from bot.duty.errors import ApiError
from bot.duty.keys import PUBLIC_REPORT_KEY, SETTINGS_KEY
from bot.duty.rundb import run_db
from bot.report import render, service

REPORT_PARAMS = {"from", "to"}
# The public page is built at most this often (anyone may ask for it, many times).
PUBLIC_CACHE_S = 15 * 60
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _today(request: web.Request) -> dt.date:
    return dt.datetime.now(ZoneInfo(request.app[SETTINGS_KEY].tz_line)).date()


def _range(request: web.Request) -> tuple[dt.date, dt.date]:
    """``?from=&to=`` (both YYYY-MM-DD), or the last full month when neither is given."""
    unknown = sorted(set(request.query) - REPORT_PARAMS)
    if unknown:
        raise ApiError(400, "bad_request",
                       f"unknown query parameter(s): {', '.join(unknown)}; allowed: from, to")
    raw_from, raw_to = request.query.get("from"), request.query.get("to")
    if raw_from is None and raw_to is None:
        return service.last_full_month(_today(request))
    try:
        start = service.parse_date(raw_from, "from")
        end = service.parse_date(raw_to, "to")
        service.check_range(start, end)
    except service.BadRange as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    return start, end


async def _make(request: web.Request, start: dt.date, end: dt.date):
    cfg = request.app[SETTINGS_KEY]
    return await run_db(request, service.make, start, end, cfg.tz_line, cfg.holiday_nation)


def _page(text: str) -> web.Response:
    resp = web.Response(text=text, content_type="text/html", charset="utf-8")
    resp.headers["Content-Security-Policy"] = REPORT_CSP
    return resp


def _form(start: dt.date, end: dt.date) -> str:
    return (
        '<form method="get" action="/duty/report" class="note" '
        'style="border:1px solid #ccc;padding:.5rem 1rem">'
        '<a href="/duty">Back to the console</a> &middot; '
        f'<label>From <input type="date" name="from" value="{start.isoformat()}" required></label> '
        f'<label>to <input type="date" name="to" value="{end.isoformat()}" required></label> '
        '<button type="submit">Show</button> &middot; '
        f'<a href="/duty/report.csv?from={start.isoformat()}&amp;to={end.isoformat()}">'
        "Download the CSV</a> &middot; print this page to save it as a PDF</form>"
    )


async def report_page(request: web.Request) -> web.StreamResponse:
    auth.require(request, "report")
    start, end = _range(request)
    report = await _make(request, start, end)
    return _page(render.html_report(report, header=_form(start, end)))


async def report_csv(request: web.Request) -> web.StreamResponse:
    auth.require(request, "report")
    start, end = _range(request)
    report = await _make(request, start, end)
    return web.Response(
        text=render.csv_report(report), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition":
                 f'attachment; filename="report-{start.isoformat()}-{end.isoformat()}.csv"'})


async def report_json(request: web.Request) -> web.Response:
    # The middleware has checked the bearer token or a session with the ``report`` permission.
    start, end = _range(request)
    report = await _make(request, start, end)
    return web.json_response(render.json_report(report))


async def public_report(request: web.Request) -> web.StreamResponse:
    if not request.app[SETTINGS_KEY].report_public:
        raise web.HTTPNotFound()
    start, end = service.last_full_month(_today(request))
    cache = request.app[PUBLIC_REPORT_KEY]
    now = time.monotonic()
    if cache.get("range") != (start, end) or now - cache.get("at", -1e9) > PUBLIC_CACHE_S:
        report = await _make(request, start, end)
        title = html.escape("The line's report for last month, published for everyone.")
        cache.update(range=(start, end), at=now,
                     html=render.html_report(report, header=f'<p class="note">{title}</p>'))
    return _page(cache["html"])
