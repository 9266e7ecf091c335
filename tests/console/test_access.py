"""Who may reach what: nothing under /duty, /api or /metrics answers without a session or
token; POSTs need the session's CSRF token; expired sessions and wrong roles are refused."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from bot.store.models.duty import StaffSession
from bot.store import db
from bot.store.models import utcnow

from .conftest import AUTH, PASSWORD, login_csrf, sign_in

PROTECTED = ("/duty", "/api", "/metrics", "/logout")


def protected_routes(app):
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix") or ""
        if path.startswith(PROTECTED):
            yield route.method, path.replace("{ref}", "EABCDE").replace("{id}", "1")


@pytest.fixture(params=["plain", "with_takeover"])
async def either_client(request, db_url, aiohttp_client):
    from bot.duty.app import create_app

    from .conftest import FakeTakeover, make_settings

    engine = FakeTakeover() if request.param == "with_takeover" else None
    return request.param, await aiohttp_client(create_app(make_settings(db_url), takeover=engine))


async def test_no_protected_route_answers_without_session_or_token(either_client, seed):
    which, client = either_client
    seed("urgent")
    routes = sorted(set(protected_routes(client.app)))
    assert ("GET", "/duty/e/EABCDE") in routes and ("GET", "/metrics") in routes
    if which == "with_takeover":
        assert ("POST", "/duty/e/EABCDE/takeover") in routes
    for method, path in routes + [("GET", "/duty/no-such-page"), ("POST", "/api/escalations")]:
        resp = await client.request(method, path, allow_redirects=False)
        if method in ("GET", "HEAD") and path.startswith("/duty") and not path.endswith(".json"):
            # A person at a browser is sent to sign in; the page itself is not served.
            assert resp.status == 303, path
            assert resp.headers["Location"] == "/login"
        else:
            assert resp.status == 401, (method, path)
        assert "Take over" not in await resp.text()


async def test_signed_in_staff_reach_the_console_and_the_api(client, make_staff):
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    assert (await client.get("/duty")).status == 200
    assert (await client.get("/duty/queue.json")).status == 200
    # /api takes a staff session as well as the bearer token (issue 6).
    assert (await client.get("/api/escalations")).status == 200
    assert (await client.get("/api/openapi.json")).status == 200


async def test_a_wrong_bearer_token_is_refused_even_with_a_session(client, make_staff):
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    resp = await client.get("/api/escalations", headers={"Authorization": "Bearer nope"})
    assert resp.status == 401


async def test_post_without_or_with_a_wrong_csrf_token_is_refused(client, make_staff, seed):
    seed("urgent")
    make_staff("ellen", "peer_worker")
    csrf = await sign_in(client, "ellen")
    ref = (await (await client.get("/duty/queue.json")).json())["escalations"][0]["ref"]
    for data, headers in [({}, {}), ({"csrf_token": "x" + csrf}, {}), ({}, {"X-CSRF-Token": "nope"})]:
        resp = await client.post(f"/duty/e/{ref}/acknowledge", data=data, headers=headers,
                                 allow_redirects=False)
        assert resp.status == 403
    listed = await (await client.get("/duty/queue.json")).json()
    assert listed["escalations"][0]["status"] == "open"
    # Sign-out is a POST too.
    assert (await client.post("/logout", allow_redirects=False)).status == 403
    resp = await client.post(f"/duty/e/{ref}/acknowledge", data={"csrf_token": csrf},
                             allow_redirects=False)
    assert resp.status == 303


async def test_login_form_needs_its_csrf_cookie(client, make_staff):
    make_staff("ellen", "peer_worker")
    resp = await client.post("/login", data={"username": "ellen", "password": PASSWORD,
                                             "csrf_token": "forged"}, allow_redirects=False)
    assert resp.status == 403


async def test_expired_session_is_refused(client, make_staff, db_url):
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    with db.transaction(db_url) as s:
        s.execute(update(StaffSession).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    resp = await client.get("/duty", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert (await client.get("/duty/queue.json")).status == 401
    assert (await client.get("/api/escalations")).status == 401


async def test_session_lifetime_comes_from_the_setting(db_url, aiohttp_client, make_staff):
    from bot.duty.app import create_app

    from .conftest import make_settings

    client = await aiohttp_client(create_app(make_settings(db_url, DUTY_SESSION_HOURS="2")))
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    with db.transaction(db_url) as s:
        row = s.execute(StaffSession.__table__.select()).one()
    created, expires = row.created_at, row.expires_at
    assert abs((expires - created) - dt.timedelta(hours=2)) < dt.timedelta(seconds=1)


async def test_sign_out_ends_the_session(client, make_staff):
    make_staff("ellen", "peer_worker")
    csrf = await sign_in(client, "ellen")
    resp = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert (await client.get("/duty/queue.json")).status == 401


@pytest.mark.parametrize(
    "role, house, allowed, refused",
    [
        ("peer_worker", None, ["/duty", "/duty/e/{ref}", "/api/escalations", "/duty/feedback"],
         ["/metrics", "/duty/sanctuary"]),
        ("duty_manager", None, ["/duty", "/duty/e/{ref}", "/api/escalations", "/metrics", "/duty/sanctuary",
                                "/duty/feedback"],
         []),
        ("sanctuary_volunteer", "harbour_house", ["/duty/sanctuary"],
         ["/duty/e/{ref}", "/duty/queue.json", "/api/escalations", "/metrics", "/duty/feedback"]),
        ("admin", None, ["/duty", "/duty/queue.json", "/metrics"],
         ["/duty/e/{ref}", "/api/escalations", "/duty/sanctuary", "/duty/feedback"]),
    ],
)
async def test_each_role_sees_only_what_it_needs(client, make_staff, seed, role, house, allowed, refused):
    seed("urgent")
    make_staff("sam", role, house=house)
    await sign_in(client, "sam")
    with db.transaction() as s:
        from bot.store.models import Escalation

        ref = s.execute(Escalation.__table__.select()).first().ref
    for path in allowed:
        resp = await client.get(path.format(ref=ref), allow_redirects=False)
        assert resp.status == 200, (role, path)
    for path in refused:
        resp = await client.get(path.format(ref=ref), allow_redirects=False)
        assert resp.status == 403, (role, path)


async def test_wrong_role_cannot_act(client, make_staff, seed):
    seed("urgent")
    make_staff("adm", "admin")
    csrf = await sign_in(client, "adm")
    ref = (await (await client.get("/duty/queue.json")).json())["escalations"][0]["ref"]
    resp = await client.post(f"/duty/e/{ref}/acknowledge", data={"csrf_token": csrf},
                             allow_redirects=False)
    assert resp.status == 403


async def test_volunteer_home_is_the_sanctuary_page(client, make_staff):
    make_staff("vol", "sanctuary_volunteer", house="harbour_house")
    await sign_in(client, "vol")
    resp = await client.get("/duty", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/duty/sanctuary"


async def test_session_cookie_flags(db_url, aiohttp_client, make_staff):
    from bot.duty.app import create_app

    from .conftest import make_settings

    make_staff("ellen", "peer_worker")
    for public, name, secure in [
        ("http://localhost:8080", "duty_session", False),
        ("https://duty.example.org", "__Host-duty_session", True),
    ]:
        client = await aiohttp_client(create_app(make_settings(db_url, DUTY_PUBLIC_URL=public)))
        token = await login_csrf(client)
        # The test client speaks plain HTTP, so it keeps a Secure cookie back: send it by hand.
        resp = await client.post("/login", data={"username": "ellen", "password": PASSWORD,
                                                 "csrf_token": token}, allow_redirects=False,
                                 headers={"Cookie": f"duty_login_csrf={token}"})
        assert resp.status == 303
        cookie = resp.cookies[name]
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Strict"
        assert bool(cookie["secure"]) is secure
        assert cookie["path"] == "/"


async def test_login_rate_limit(client, make_staff):
    make_staff("ellen", "peer_worker")
    make_staff("sam", "peer_worker")
    for _ in range(5):
        token = await login_csrf(client)
        resp = await client.post("/login", data={"username": "ellen", "password": "wrong password!",
                                                 "csrf_token": token})
        assert resp.status == 401
        assert "did not match" in await resp.text()
    # Locked: even the right password is not tried now.
    token = await login_csrf(client)
    resp = await client.post("/login", data={"username": "Ellen", "password": PASSWORD,
                                             "csrf_token": token}, allow_redirects=False)
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 0
    # Another account is not locked out by ellen's failures.
    await sign_in(client, "sam")


async def test_unknown_user_and_wrong_password_look_the_same(client, make_staff):
    make_staff("ellen", "peer_worker")
    bodies = []
    for name in ("ellen", "nobody"):
        token = await login_csrf(client)
        resp = await client.post("/login", data={"username": name, "password": "wrong password!",
                                                 "csrf_token": token})
        assert resp.status == 401
        bodies.append((await resp.text()).replace(name, "NAME"))
    assert bodies[0].split("csrf_token")[0] == bodies[1].split("csrf_token")[0]


async def test_metrics_with_token_or_manager_session(client, make_staff):
    assert (await client.get("/metrics")).status == 401
    resp = await client.get("/metrics", headers=AUTH)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")


async def test_console_pages_are_not_cached_and_carry_security_headers(client, make_staff):
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    resp = await client.get("/duty")
    assert resp.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
