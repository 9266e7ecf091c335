"""Who may call what: nothing under /api answers without the bearer token; /health is open."""

from __future__ import annotations

import pytest

from bot.duty.app import create_app

from .conftest import AUTH, TOKEN, make_settings

API_PATHS = ["/api/escalations", "/api/escalations/1", "/api/openapi.json", "/api/no-such-route"]


@pytest.mark.parametrize("path", API_PATHS)
async def test_no_token_is_refused(client, path):
    resp = await client.get(path)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    body = await resp.json()
    assert body["error"] == "unauthorized"


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer ",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer tøken-with-non-ascii",
    ],
)
async def test_wrong_token_is_refused(client, header):
    resp = await client.get("/api/escalations", headers={"Authorization": header})
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthorized"


async def test_right_token_is_accepted(client):
    for path in ["/api/escalations", "/api/openapi.json"]:
        resp = await client.get(path, headers=AUTH)
        assert resp.status == 200, path
    # The scheme is case-insensitive (RFC 7235).
    resp = await client.get("/api/escalations", headers={"Authorization": f"bearer {TOKEN}"})
    assert resp.status == 200


async def test_unknown_api_route_is_404_json_with_token(client):
    resp = await client.get("/api/no-such-route", headers=AUTH)
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


async def test_wrong_method_is_405_json(client):
    resp = await client.post("/api/escalations", headers=AUTH)
    assert resp.status == 405
    assert (await resp.json())["error"] == "method_not_allowed"


async def test_unset_token_refuses_every_request_and_says_why(db_url, aiohttp_client):
    client = await aiohttp_client(create_app(make_settings(db_url, DUTY_API_TOKEN=None)))
    for headers in ({}, AUTH, {"Authorization": "Bearer "}):
        resp = await client.get("/api/escalations", headers=headers)
        assert resp.status == 401
        body = await resp.json()
        assert "not configured" in body["message"]


async def test_health_needs_no_token(client):
    resp = await client.get("/health")
    assert resp.status == 200
    # Only the overall state: which part is down is for the token or staff (issue 23).
    assert set(await resp.json()) == {"status"}
