"""Sign-in limits (issue 23, item 8): per (username, client address), never site-wide.

Behind the shipped nginx every request comes from 127.0.0.1; the client's own address is in
``X-Forwarded-For``, believed only from a proxy named in ``TRUSTED_PROXIES``.
"""

from __future__ import annotations

import logging

from bot.duty.app import create_app
from bot.duty.ratelimit import LoginLimiter, client_address
from tests.console.conftest import PASSWORD, login_csrf, sign_in
from tests.duty.conftest import make_settings

WRONG = "not the password at all"


async def _try(client, username: str, password: str, forwarded_for: str | None = None):
    token = await login_csrf(client)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token},
        headers=headers, allow_redirects=False,
    )


async def _hammer(client, username: str, times: int = 30, forwarded_for: str | None = None) -> list[int]:
    return [(await _try(client, username, WRONG, forwarded_for)).status for _ in range(times)]


async def test_thirty_wrong_passwords_for_one_user_do_not_stop_another(client, make_staff, caplog):
    make_staff("ellen", "duty_manager")
    make_staff("pia", "peer_worker")
    caplog.set_level(logging.INFO)
    statuses = await _hammer(client, "ellen")
    # Slowed down: after a few tries the same (user, address) waits, told how long.
    assert statuses[:3] == [401, 401, 401] and 429 in statuses
    refused = await _try(client, "ellen", PASSWORD)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) > 0
    # Everyone else at the same address (behind nginx: everyone) still signs in.
    await sign_in(client, "pia")
    # Every limit hit is logged, without the password and without the username in clear.
    hits = [r for r in caplog.records if "sign-in limit" in r.getMessage()]
    assert len(hits) == statuses.count(429) + 1
    for record in caplog.records:
        assert WRONG not in record.getMessage() and PASSWORD not in record.getMessage()
        if record.name.startswith("bot.duty") and "refused" in record.getMessage():
            assert "ellen" not in record.getMessage()


async def test_wrong_passwords_for_many_names_do_not_lock_the_console(client, make_staff):
    # Someone guessing names and passwords from behind the proxy (one address for everyone).
    make_staff("pia", "peer_worker")
    for i in range(12):
        await _hammer(client, f"guess{i}", times=5)
    await sign_in(client, "pia")


async def test_the_same_user_from_another_address_signs_in(db_url, aiohttp_client, make_staff):
    client = await aiohttp_client(create_app(make_settings(db_url, TRUSTED_PROXIES="127.0.0.1")))
    make_staff("ellen", "duty_manager")
    statuses = await _hammer(client, "ellen", forwarded_for="203.0.113.7")
    assert 429 in statuses
    assert (await _try(client, "ellen", PASSWORD, "203.0.113.7")).status == 429
    # Behind a trusted proxy, two clients are told apart: ellen at her own desk gets in.
    assert (await _try(client, "ellen", PASSWORD, "198.51.100.20")).status == 303


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(client, make_staff):
    # No TRUSTED_PROXIES: an attacker cannot dodge the limit by inventing addresses.
    make_staff("ellen", "duty_manager")
    statuses = [
        (await _try(client, "ellen", WRONG, f"192.0.2.{i}")).status for i in range(1, 31)
    ]
    assert 429 in statuses
    assert (await _try(client, "ellen", PASSWORD, "198.51.100.20")).status == 429


class _Req:
    def __init__(self, remote, xff=None):
        self.remote = remote
        self.headers = {"X-Forwarded-For": xff} if xff is not None else {}


def test_client_address_walks_forwarded_for_only_through_trusted_proxies():
    trusted = ("127.0.0.1/32", "10.0.0.0/8")
    assert client_address(_Req("127.0.0.1", "198.51.100.20"), trusted) == "198.51.100.20"
    # A client-supplied first entry is not believed: the proxy appended the real peer.
    assert client_address(_Req("127.0.0.1", "6.6.6.6, 198.51.100.20"), trusted) == "198.51.100.20"
    # Through two trusted proxies.
    assert client_address(_Req("127.0.0.1", "198.51.100.20, 10.1.2.3"), trusted) == "198.51.100.20"
    # From an untrusted peer the header means nothing.
    assert client_address(_Req("203.0.113.9", "198.51.100.20"), trusted) == "203.0.113.9"
    assert client_address(_Req("127.0.0.1", "198.51.100.20"), ()) == "127.0.0.1"
    # Garbage in the header: the trusted peer itself, never a crash.
    assert client_address(_Req("127.0.0.1", "not an address"), trusted) == "127.0.0.1"


def test_memory_stays_bounded_after_many_usernames():
    limiter = LoginLimiter(max_entries=1000)
    for i in range(50_000):
        limiter.failed(f"user{i}", "127.0.0.1", now=1000.0)
    assert limiter.entries() <= 1000
    # Entries are forgotten once their window has passed.
    limiter.failed("late", "127.0.0.1", now=1000.0 + limiter.forget_after_s + 1)
    assert limiter.entries() == 1


def test_slowdown_grows_and_a_success_clears_it():
    limiter = LoginLimiter()
    waits = []
    for _ in range(limiter.free_failures + 4):
        limiter.failed("ellen", "a", now=0.0)
        waits.append(limiter.retry_after("ellen", "a", now=0.0))
    assert waits[: limiter.free_failures - 1] == [0] * (limiter.free_failures - 1)
    slowed = waits[limiter.free_failures - 1:]
    assert all(b > a for a, b in zip(slowed, slowed[1:], strict=False))
    assert limiter.retry_after("ellen", "b", now=0.0) == 0
    assert limiter.retry_after("pia", "a", now=0.0) == 0
    limiter.succeeded("ellen", "a")
    assert limiter.retry_after("ellen", "a", now=0.0) == 0
