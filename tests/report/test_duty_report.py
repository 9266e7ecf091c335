"""The report in the duty service: who may see it, the JSON, bad dates, and /report."""

from __future__ import annotations

import datetime as dt

import pytest

from bench import report_data
from bot.duty.app import create_app
from bot.report import figures, render, service
from bot.store import db
from tests.console.conftest import cheap_hashes, make_staff, post_login  # noqa: F401
from tests.duty.conftest import AUTH, make_settings

TZ = "Europe/London"


@pytest.fixture
def year(db_url):
    w = report_data.generate(conversations=200, escalations=40, year=2025, seed=11)
    report_data.load(db.get_engine(db_url), w)
    return w


async def sign_in_as(client, username: str) -> str:
    """Sign in through the form; returns where the console sent this person."""
    resp = await post_login(client, username)
    assert resp.status == 303, await resp.text()
    return resp.headers["Location"]


async def test_api_report_gives_the_commands_figures(db_url, year, aiohttp_client):
    client = await aiohttp_client(create_app(make_settings(db_url)))
    resp = await client.get("/api/report?from=2025-01-01&to=2025-12-31", headers=AUTH)
    assert resp.status == 200
    body = await resp.json()
    expected = render.json_report(service.make(
        db.get_engine(db_url), dt.date(2025, 1, 1), dt.date(2025, 12, 31), TZ))
    assert body == expected
    assert body["contacts"] == len(year.conversations)
    assert body["empty"] is False
    keys = [f["key"] for f in body["figures"]]
    assert {"contacts_by_hour", "contacts_by_channel", "risk_levels", "time_to_human",
            "ladder", "unacknowledged", "outcomes", "sanctuary"} <= set(keys)


async def test_an_empty_range_says_so(db_url, aiohttp_client):
    client = await aiohttp_client(create_app(make_settings(db_url)))
    body = await (await client.get("/api/report?from=2019-01-01&to=2019-01-31",
                                   headers=AUTH)).json()
    assert body["empty"] is True and body["contacts"] == "fewer than 5"


@pytest.mark.parametrize("query,message", [
    ("from=2025-02-30&to=2025-03-01", "from is not a real date"),
    ("from=2025-1-1&to=2025-03-01", "from must be a date as YYYY-MM-DD"),
    ("from=2025-03-01", "to is required"),
    ("from=2025-03-01&to=2025-02-01", "is before from"),
    ("from=2020-01-01&to=2025-02-01", "at most"),
    ("from=2025-01-01&to=2025-01-02&limit=3", "unknown query parameter"),
])
async def test_bad_dates_are_a_400(sqlite_url, aiohttp_client, query, message):
    client = await aiohttp_client(create_app(make_settings(sqlite_url)))
    resp = await client.get(f"/api/report?{query}", headers=AUTH)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request" and message in body["message"], body


async def test_a_commissioner_sees_the_report_and_nothing_else(
        db_url, year, aiohttp_client, make_staff):  # noqa: F811
    make_staff("commish", "commissioner")
    client = await aiohttp_client(create_app(make_settings(db_url)))
    assert await sign_in_as(client, "commish") == "/duty/report"
    page = await client.get("/duty/report?from=2025-01-01&to=2025-12-31")
    assert page.status == 200
    text = await page.text()
    assert "Contacts by hour of day" in text and "<svg" in text
    # Its own policy: inline style for the self-contained page, still no script at all.
    csp = page.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in csp and "script-src" not in csp
    assert "default-src 'none'" in csp
    csv_ = await client.get("/duty/report.csv?from=2025-01-01&to=2025-12-31")
    assert csv_.status == 200 and (await csv_.text()).startswith("figure,row,column,value")
    assert (await client.get("/api/report?from=2025-01-01&to=2025-01-31")).status == 200
    # The queue redirects to the report; everything else is refused.
    queue = await client.get("/duty", allow_redirects=False)
    assert queue.status == 303 and queue.headers["Location"] == "/duty/report"
    for path in ("/api/escalations", "/duty/queue.json", "/duty/rota", "/duty/sanctuary",
                 "/metrics"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 403, path


async def test_duty_managers_see_it_and_peer_workers_do_not(
        db_url, aiohttp_client, make_staff):  # noqa: F811
    make_staff("manager", "duty_manager")
    make_staff("peer", "peer_worker")
    app = create_app(make_settings(db_url))
    client = await aiohttp_client(app)
    await sign_in_as(client, "manager")
    page = await client.get("/duty/report")  # no dates: the last full month
    assert page.status == 200
    first, last = service.last_full_month(dt.date.today())
    assert f'value="{first.isoformat()}"' in await page.text()
    queue = await client.get("/duty")
    assert 'href="/duty/report"' in await queue.text()
    other = await aiohttp_client(create_app(make_settings(db_url)))
    await sign_in_as(other, "peer")
    assert (await other.get("/duty/report")).status == 403
    assert (await other.get("/api/report")).status == 403
    assert 'href="/duty/report"' not in await (await other.get("/duty")).text()


async def test_no_signed_in_nobody_gets_it(sqlite_url, aiohttp_client):
    client = await aiohttp_client(create_app(make_settings(sqlite_url)))
    assert (await client.get("/api/report")).status == 401
    resp = await client.get("/duty/report", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    # /report is off by default.
    assert (await client.get("/report")).status == 404


async def test_report_public_serves_the_last_full_month(db_url, aiohttp_client, monkeypatch):
    from bot.duty import report_page

    engine = db.get_engine(db_url)
    # A month with enough contacts to show: 6 web chats on the 10th of last month.
    first, last = service.last_full_month(dt.datetime.now().date())
    w = report_data.World()
    base = dt.datetime.combine(first + dt.timedelta(days=9), dt.time(20), dt.timezone.utc)
    for i in range(6):
        w.conversations.append(report_data.Conversation(
            f"webchat{i:02d}", "web chat", [(base + dt.timedelta(minutes=i), "none")]))
    report_data.load(engine, w)
    client = await aiohttp_client(create_app(make_settings(db_url, REPORT_PUBLIC="1")))
    resp = await client.get("/report")
    assert resp.status == 200
    text = await resp.text()
    assert f"{first:%-d %B %Y} to {last:%-d %B %Y}" in text
    assert "Contacts by channel" in text and "webchat0" not in text
    raw = figures.build(engine, first, last, TZ)
    assert raw.contacts == 6
    # Built once, then served from memory for a while (anyone may ask, many times).
    calls = []
    real = report_page.service.make
    monkeypatch.setattr(report_page.service, "make", lambda *a: calls.append(a) or real(*a))
    assert (await client.get("/report")).status == 200
    assert calls == []
