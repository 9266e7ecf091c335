"""GET /health: database, Rasa server and action server; 503 only when the database is down."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from bot.duty.app import create_app

from .conftest import AUTH, UNREACHABLE_PG, make_settings


def _fake_upstream(status: int = 200, delay_s: float = 0.0) -> web.Application:
    """Stands in for both: Rasa answers GET /, the action server GET /health."""

    async def hello(request: web.Request) -> web.Response:
        await asyncio.sleep(delay_s)
        return web.Response(text="Hello from Rasa: 3.6.21", status=status)

    async def health(request: web.Request) -> web.Response:
        await asyncio.sleep(delay_s)
        return web.json_response({"status": "ok"}, status=status)

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/health", health)
    return app


async def _upstream_url(aiohttp_server, **kwargs) -> str:
    server = await aiohttp_server(_fake_upstream(**kwargs))
    return str(server.make_url("")).rstrip("/")


async def test_all_up_is_ok(db_url, aiohttp_client, aiohttp_server):
    upstream = await _upstream_url(aiohttp_server)
    client = await aiohttp_client(
        create_app(make_settings(db_url, RASA_URL=upstream, ACTIONS_URL=upstream))
    )
    resp = await client.get("/health", headers=AUTH)
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["backend"] in ("sqlite", "postgresql")
    assert body["rasa"] == {"ok": True, "status_code": 200, "latency_ms": body["rasa"]["latency_ms"]}
    assert body["actions"]["ok"] is True


async def test_rasa_and_actions_down_is_degraded_but_200(db_url, aiohttp_client):
    client = await aiohttp_client(create_app(make_settings(db_url)))  # both at port 1
    resp = await client.get("/health", headers=AUTH)
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "degraded" and body["database"]["ok"] is True
    assert body["rasa"]["ok"] is False and body["rasa"]["error"] == "unreachable"
    assert body["actions"]["ok"] is False


async def test_upstream_error_status_is_not_ok(sqlite_url, aiohttp_client, aiohttp_server):
    upstream = await _upstream_url(aiohttp_server, status=500)
    client = await aiohttp_client(
        create_app(make_settings(sqlite_url, RASA_URL=upstream, ACTIONS_URL=upstream))
    )
    body = await (await client.get("/health", headers=AUTH)).json()
    assert body["rasa"] == {
        "ok": False, "status_code": 500, "error": "HTTP 500", "latency_ms": body["rasa"]["latency_ms"]
    }
    assert body["status"] == "degraded"


async def test_a_hanging_upstream_times_out_quickly(sqlite_url, aiohttp_client, aiohttp_server):
    upstream = await _upstream_url(aiohttp_server, delay_s=5)
    client = await aiohttp_client(
        create_app(make_settings(sqlite_url, RASA_URL=upstream, ACTIONS_URL=upstream))
    )
    started = time.monotonic()
    body = await (await client.get("/health", headers=AUTH)).json()
    assert time.monotonic() - started < 3
    assert body["rasa"]["error"] == "timeout" and body["actions"]["error"] == "timeout"


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
async def test_database_down_is_503(aiohttp_client, tmp_path, kind):
    url = UNREACHABLE_PG if kind == "postgresql" else f"sqlite:///{tmp_path}"
    client = await aiohttp_client(create_app(make_settings(url)))
    resp = await client.get("/health", headers=AUTH)
    assert resp.status == 503
    body = await resp.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is False
    assert body["database"]["backend"] == kind
    assert body["database"]["error"].startswith("unavailable")
    # No connection details, even for a monitor with the token.
    assert "127.0.0.1" not in await resp.text() and str(tmp_path) not in await resp.text()
