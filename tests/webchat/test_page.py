"""The carers' web chat page at ``/`` on the duty service."""

from __future__ import annotations

import re

import pytest

from bot.duty.app import create_app
from tests.duty.conftest import make_settings


@pytest.fixture
async def client(sqlite_url, aiohttp_client):
    settings = make_settings(sqlite_url, WEBCHAT_SOCKET_URL="https://chat.example.org:5005")
    return await aiohttp_client(create_app(settings))


async def test_page_says_it_is_automated_and_shows_emergency_numbers(client):
    resp = await client.get("/")
    assert resp.status == 200
    page = await resp.text()
    assert "automated assistant, not a person" in page
    for number in ('href="tel:999"', "116&nbsp;123", 'href="tel:111"', "option&nbsp;2"):
        assert number in page
    assert "Leave this site quickly" in page
    assert 'content="https://chat.example.org:5005"' in page
    # Labels for every control; a live region is set by the script (role="log").
    assert '<label for="message">' in page


async def test_page_loads_nothing_from_third_parties(client):
    resp = await client.get("/")
    page = await resp.text()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    loaded = [s for s in sources if not s.startswith(("tel:", "#"))]
    # The quick-exit link is the only outside address, and it is navigated to, not loaded.
    assert [s for s in loaded if s.startswith("http")] == ["https://www.bbc.co.uk/weather"]
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "connect-src 'self' https://chat.example.org:5005 wss://chat.example.org:5005" in csp
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in resp.headers


async def test_vendored_socketio_client_and_assets_are_served(client):
    for path in ("/static/vendor/socket.io.min.js", "/static/webchat.js", "/static/webchat.css"):
        resp = await client.get(path)
        assert resp.status == 200, path
    body = await (await client.get("/static/vendor/socket.io.min.js")).text()
    assert body.startswith("/*!\n * Socket.IO v4.")
    assert (await client.get("/static/../settings.py")).status in (403, 404)


async def test_end_chat_and_quick_exit_clear_browser_storage():
    # The script is checked by the browser tests; here, that the behaviours are wired at all.
    from bot.settings import ROOT

    js = (ROOT / "bot/duty/static/webchat.js").read_text()
    assert "location.replace(exitUrl)" in js
    assert js.count("forgetEverything()") >= 3  # defined, end chat, quick exit
    assert "sessionStorage" in js and "localStorage" in js
