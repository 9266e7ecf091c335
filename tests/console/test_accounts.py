"""Staff accounts and the second factor (issue 28, part 5).

Managers add, disable, re-enable and reset accounts in the console, every change on a
hash-chained trail; managers must sign in with a TOTP code (everyone with STAFF_2FA=all);
recovery codes work once; a code is never accepted twice; a disabled account's live session
ends at its next request.
"""

from __future__ import annotations

import logging
import re
import time

import pytest
from sqlalchemy import select, update

from bot.duty import account_admin, account_trail, auth, twofactor
from bot.duty.__main__ import main as duty_main
from bot.duty.app import create_app
from bot.store import db
from bot.store.models.duty import Staff, StaffAccountChange, StaffRecoveryCode, StaffSession

from .conftest import (
    PASSWORD,
    TOTP_SECRET,
    current_code,
    login_csrf,
    post_login,
    sign_in,
)
from tests.duty.conftest import make_settings

_STEP_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')
_URI = re.compile(r'<code id="otpauth-uri">([^<]+)</code>')
_CODES = re.compile(r"<li><code>([a-z0-9-]{14})</code></li>")
_TEMPORARY = re.compile(r"Temporary password for <strong>[^<]+</strong>:\s*<code>([^<]+)</code>")
NEW_PASSWORD = "violet harbour lantern orbit"


async def _password_only(client, username: str, password: str = PASSWORD):
    token = await login_csrf(client)
    return await client.post("/login", data={"username": username, "password": password,
                                             "csrf_token": token}, allow_redirects=False)


async def _step(client) -> tuple[str, str]:
    page = await client.get("/login/next")
    assert page.status == 200
    text = await page.text()
    return _STEP_CSRF.search(text).group(1), text


def _trail(db_url) -> list[StaffAccountChange]:
    with db.transaction(db_url) as s:
        rows = s.execute(select(StaffAccountChange).order_by(StaffAccountChange.seq)).scalars().all()
        s.expunge_all()
        return rows


def _account(db_url, username: str) -> Staff:
    with db.transaction(db_url) as s:
        row = s.execute(select(Staff).where(Staff.username == username)).scalar_one()
        s.expunge(row)
        return row


# --- setting up the second factor ------------------------------------------------------------


async def test_a_manager_sets_up_a_second_factor_before_the_console_opens(
        client, make_staff, db_url, caplog, aiohttp_client):
    caplog.set_level(logging.DEBUG)
    make_staff("ellen", "duty_manager", enrolled=False)
    resp = await _password_only(client, "ellen")
    assert resp.status == 303 and resp.headers["Location"] == "/login/next"
    # Half signed in: no page of the console, no API.
    duty = await client.get("/duty", allow_redirects=False)
    assert duty.status == 303 and duty.headers["Location"] == "/login"
    assert (await client.get("/duty/queue.json")).status == 401
    csrf, page = await _step(client)
    secret = _SECRET.search(page).group(1).replace(" ", "")
    uri = _URI.search(page).group(1).replace("&amp;", "&")
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    # Stored encrypted, never in clear.
    with db.transaction(db_url) as s:
        assert secret not in repr(s.execute(select(Staff.totp_secret)).all())
    wrong = await client.post("/login/enrol", data={"code": "000000", "csrf_token": csrf})
    assert wrong.status == 400 and "did not match" in await wrong.text()
    assert _account(db_url, "ellen").totp_secret is None
    code = twofactor.code_at(secret, time.time())
    done = await client.post("/login/enrol", data={"code": code, "csrf_token": csrf},
                             allow_redirects=False)
    assert done.status == 200
    codes = _CODES.findall(await done.text())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert (await client.get("/duty")).status == 200
    # Recovery codes are kept hashed; the trail says it happened and holds no secret or code.
    with db.transaction(db_url) as s:
        stored = s.execute(select(StaffRecoveryCode.code_hash)).scalars().all()
    assert len(stored) == 10 and not set(codes) & set(stored)
    entry = _trail(db_url)[-1]
    assert (entry.actor, entry.action, entry.username) == ("staff:ellen", "2fa_enrolled", "ellen")
    for text in [repr(r.data) for r in _trail(db_url)] + [r.getMessage() for r in caplog.records]:
        assert secret not in text and code not in text and codes[0] not in text
    assert account_trail.verify(db.get_engine(db_url)) is None
    # Next time: the code step, not the set-up.
    later = await aiohttp_client(create_app(make_settings(db_url)))
    assert (await _password_only(later, "ellen")).status == 303
    _, page = await _step(later)
    assert "Your code" in page and "totp-secret" not in page


async def test_peer_workers_may_skip_it_unless_staff_2fa_is_all(db_url, aiohttp_client, make_staff):
    make_staff("pia", "peer_worker")
    client = await aiohttp_client(create_app(make_settings(db_url)))
    resp = await _password_only(client, "pia")
    assert resp.status == 303 and resp.headers["Location"] == "/duty"
    strict = await aiohttp_client(create_app(make_settings(db_url, STAFF_2FA="all")))
    resp = await _password_only(strict, "pia")
    assert resp.status == 303 and resp.headers["Location"] == "/login/next"
    _, page = await _step(strict)
    assert "Set up a second factor" in page
    assert (await strict.get("/duty", allow_redirects=False)).status == 303


# --- the code step --------------------------------------------------------------------------------


async def test_a_code_works_once(client, make_staff, db_url, aiohttp_client):
    make_staff("ellen", "duty_manager")
    code = current_code(client, "ellen")
    assert (await _password_only(client, "ellen")).status == 303
    csrf, page = await _step(client)
    assert "Your code" in page
    ok = await client.post("/login/code", data={"code": code, "csrf_token": csrf},
                           allow_redirects=False)
    assert ok.status == 303 and ok.headers["Location"] == "/duty"
    # The same code again, from another browser, in the same 30 seconds: refused (replay).
    other = await aiohttp_client(create_app(make_settings(db_url)))
    assert (await _password_only(other, "ellen")).status == 303
    csrf, _ = await _step(other)
    again = await other.post("/login/code", data={"code": code, "csrf_token": csrf},
                             allow_redirects=False)
    assert again.status == 401 and "did not work" in await again.text()
    assert (await other.get("/duty", allow_redirects=False)).status == 303


async def test_wrong_codes_count_in_the_sign_in_limit(client, make_staff):
    make_staff("ellen", "duty_manager")
    assert (await _password_only(client, "ellen")).status == 303
    statuses = []
    for _ in range(8):
        csrf, _ = await _step(client)
        resp = await client.post("/login/code", data={"code": "123456", "csrf_token": csrf})
        statuses.append(resp.status)
    assert statuses[:5] == [401] * 5 and 429 in statuses
    # While the key waits, even the right code is not tried.
    csrf, _ = await _step(client)
    resp = await client.post("/login/code", data={"code": current_code(client, "ellen"),
                                                  "csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0


async def test_the_code_step_needs_its_own_csrf_token(client, make_staff):
    make_staff("ellen", "duty_manager")
    assert (await _password_only(client, "ellen")).status == 303
    resp = await client.post("/login/code", data={"code": current_code(client, "ellen"),
                                                  "csrf_token": "forged"}, allow_redirects=False)
    assert resp.status == 403
    assert (await client.get("/duty", allow_redirects=False)).status == 303


async def test_a_recovery_code_signs_in_once(client, make_staff, db_url, aiohttp_client):
    make_staff("ellen", "duty_manager", enrolled=False)
    await _password_only(client, "ellen")
    csrf, page = await _step(client)
    secret = _SECRET.search(page).group(1).replace(" ", "")
    done = await client.post("/login/enrol", data={"code": twofactor.code_at(secret, time.time()),
                                                   "csrf_token": csrf})
    codes = _CODES.findall(await done.text())
    for attempt, expected in ((1, 303), (2, 401)):
        browser = await aiohttp_client(create_app(make_settings(db_url)))
        await _password_only(browser, "ellen")
        csrf, _ = await _step(browser)
        resp = await browser.post("/login/code", data={"code": codes[0].upper().replace("-", " "),
                                                       "csrf_token": csrf}, allow_redirects=False)
        assert resp.status == expected, attempt
    entry = _trail(db_url)[-1]
    assert entry.action == "recovery_code_used" and entry.data == {"left": 9}


# --- managing accounts -----------------------------------------------------------------------------


async def test_disabling_ends_a_live_session_at_its_next_request(db_url, aiohttp_client, make_staff):
    make_staff("ellen", "duty_manager")
    make_staff("pia", "peer_worker")
    manager = await aiohttp_client(create_app(make_settings(db_url)))
    csrf = await sign_in(manager, "ellen")
    peer = await aiohttp_client(create_app(make_settings(db_url)))
    await sign_in(peer, "pia")
    assert (await peer.get("/duty")).status == 200
    resp = await manager.post("/duty/staff/disable", data={"username": "pia", "csrf_token": csrf},
                              allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/duty/staff?notice=account_disabled"
    # Pia's browser, signed in a moment ago, is out at its next request.
    page = await peer.get("/duty", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/login"
    assert (await peer.get("/duty/queue.json")).status == 401
    # And cannot sign in again.
    assert (await post_login(peer, "pia")).status == 401
    # Enabled again: she can.
    resp = await manager.post("/duty/staff/enable", data={"username": "pia", "csrf_token": csrf},
                              allow_redirects=False)
    assert resp.status == 303
    await sign_in(peer, "pia")
    actions = [(e.actor, e.action, e.username) for e in _trail(db_url)][-2:]
    assert actions == [("staff:ellen", "disabled", "pia"), ("staff:ellen", "enabled", "pia")]


async def test_the_last_manager_cannot_be_disabled(client, make_staff, db_url):
    make_staff("ellen", "duty_manager")
    make_staff("pia", "peer_worker")
    csrf = await sign_in(client, "ellen")
    resp = await client.post("/duty/staff/disable", data={"username": "ellen", "csrf_token": csrf})
    assert resp.status == 409 and "last enabled manager" in await resp.text()
    assert _account(db_url, "ellen").active
    make_staff("ada", "admin")
    resp = await client.post("/duty/staff/disable", data={"username": "ada", "csrf_token": csrf},
                             allow_redirects=False)
    assert resp.status == 303
    resp = await client.post("/duty/staff/disable", data={"username": "ellen", "csrf_token": csrf})
    assert resp.status == 409
    # With another manager enabled, disabling yourself is allowed, and signs you out.
    with db.transaction(db_url) as s:
        s.execute(update(Staff).where(Staff.username == "ada").values(active=True))
    resp = await client.post("/duty/staff/disable", data={"username": "ellen", "csrf_token": csrf},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert (await client.get("/duty", allow_redirects=False)).status == 303


async def test_a_password_reset_gives_a_temporary_password_to_change(db_url, aiohttp_client,
                                                                     make_staff, caplog):
    caplog.set_level(logging.DEBUG)
    make_staff("ellen", "duty_manager")
    make_staff("pia", "peer_worker")
    manager = await aiohttp_client(create_app(make_settings(db_url)))
    csrf = await sign_in(manager, "ellen")
    resp = await manager.post("/duty/staff/reset-password",
                              data={"username": "pia", "csrf_token": csrf})
    assert resp.status == 200
    temporary = _TEMPORARY.search(await resp.text()).group(1)
    peer = await aiohttp_client(create_app(make_settings(db_url)))
    assert (await _password_only(peer, "pia")).status == 401  # the old password is gone
    resp = await _password_only(peer, "pia", temporary)
    assert resp.status == 303 and resp.headers["Location"] == "/login/next"
    assert (await peer.get("/duty", allow_redirects=False)).status == 303
    step, page = await _step(peer)
    assert "Choose your password" in page
    for new, again, why in [("violet", "violet", "at least 12"),
                            (NEW_PASSWORD, NEW_PASSWORD + "x", "not the same"),
                            (temporary, temporary, "not the temporary one"),
                            ("password1234", "password1234", "too easy")]:
        resp = await peer.post("/login/password", data={"new_password": new,
                                                        "new_password_again": again,
                                                        "csrf_token": step})
        assert resp.status == 400 and why in await resp.text(), why
    resp = await peer.post("/login/password", data={"new_password": NEW_PASSWORD,
                                                    "new_password_again": NEW_PASSWORD,
                                                    "csrf_token": step}, allow_redirects=False)
    # A peer worker without a second factor goes straight in.
    assert resp.status == 303 and resp.headers["Location"] == "/duty"
    assert (await peer.get("/duty")).status == 200
    fresh = await aiohttp_client(create_app(make_settings(db_url)))
    assert (await _password_only(fresh, "pia", temporary)).status == 401
    await sign_in(fresh, "pia", NEW_PASSWORD)
    actions = [(e.actor, e.action) for e in _trail(db_url) if e.username == "pia"][-2:]
    assert actions == [("staff:ellen", "password_reset"), ("staff:pia", "password_changed")]
    for text in [repr(e.data) for e in _trail(db_url)] + [r.getMessage() for r in caplog.records]:
        assert temporary not in text and NEW_PASSWORD not in text


async def test_a_manager_adds_an_account_that_chooses_its_password_then_sets_up_2fa(
        db_url, aiohttp_client, make_staff):
    make_staff("ellen", "duty_manager")
    manager = await aiohttp_client(create_app(make_settings(db_url)))
    csrf = await sign_in(manager, "ellen")
    resp = await manager.post("/duty/staff/add", data={
        "username": "Sam", "display_name": "Sam", "role": "duty_manager", "house": "",
        "csrf_token": csrf})
    assert resp.status == 200
    temporary = _TEMPORARY.search(await resp.text()).group(1)
    listed = await (await manager.get("/duty/staff")).text()
    assert 'data-username="sam"' in listed and "temporary password" in listed
    # Refused: a name taken, a bad role, a house for a peer worker; nothing is added.
    for data, status, why in [
        ({"username": "sam", "display_name": "Sam", "role": "peer_worker"}, 409, "already exists"),
        ({"username": "kim", "display_name": "Kim", "role": "king"}, 400, "Role must be one of"),
        ({"username": "kim", "display_name": "Kim", "role": "peer_worker", "house": "x"}, 400,
         "Only sanctuary volunteers"),
        ({"username": "k", "display_name": "Kim", "role": "peer_worker"}, 400, "Username"),
    ]:
        resp = await manager.post("/duty/staff/add", data={**data, "csrf_token": csrf})
        assert resp.status == status and why in await resp.text(), why
    assert 'data-username="kim"' not in await (await manager.get("/duty/staff")).text()
    new = await aiohttp_client(create_app(make_settings(db_url)))
    assert (await _password_only(new, "sam", temporary)).headers["Location"] == "/login/next"
    step, _ = await _step(new)
    await new.post("/login/password", data={"new_password": NEW_PASSWORD,
                                            "new_password_again": NEW_PASSWORD, "csrf_token": step})
    # A duty manager: the second factor next, before any console page.
    step, page = await _step(new)
    assert "Set up a second factor" in page
    assert (await new.get("/duty", allow_redirects=False)).status == 303


async def test_resetting_a_second_factor_asks_for_a_new_one(db_url, aiohttp_client, make_staff):
    make_staff("ellen", "duty_manager")
    make_staff("sam", "duty_manager")
    manager = await aiohttp_client(create_app(make_settings(db_url)))
    csrf = await sign_in(manager, "ellen")
    other = await aiohttp_client(create_app(make_settings(db_url)))
    await sign_in(other, "sam")
    resp = await manager.post("/duty/staff/reset-2fa", data={"username": "sam", "csrf_token": csrf},
                              allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].endswith("second_factor_reset")
    # Sam's sessions end; his next sign-in sets up a new factor, the old code no longer counts.
    assert (await other.get("/duty", allow_redirects=False)).status == 303
    await _password_only(other, "sam")
    _, page = await _step(other)
    assert "Set up a second factor" in page
    assert _trail(db_url)[-1].action == "2fa_reset"
    resp = await manager.post("/duty/staff/reset-2fa", data={"username": "sam", "csrf_token": csrf})
    assert resp.status == 409


@pytest.mark.parametrize("role, house", [("peer_worker", None), ("sanctuary_volunteer", "harbour_house"),
                                         ("commissioner", None)])
async def test_only_managers_manage_accounts(client, make_staff, db_url, role, house):
    make_staff("ellen", "duty_manager")
    make_staff("pia", role, house=house)
    signed = await post_login(client, "pia")
    home = await (await client.get(signed.headers["Location"])).text()
    assert "/duty/staff" not in home  # no link to the page
    with db.transaction(db_url) as s:  # the session's own token: only the role stands in the way
        csrf = s.execute(select(StaffSession.csrf_token)).scalar_one()
    assert (await client.get("/duty/staff")).status == 403
    for path in ("/duty/staff/disable", "/duty/staff/reset-password", "/duty/staff/reset-2fa"):
        resp = await client.post(path, data={"username": "ellen", "csrf_token": csrf})
        assert resp.status == 403, path
    resp = await client.post("/duty/staff/add", data={"username": "eve", "display_name": "Eve",
                                                      "role": "admin", "csrf_token": csrf})
    assert resp.status == 403
    assert _account(db_url, "ellen").active
    assert [e.action for e in _trail(db_url)] == ["added", "added"]


async def test_admins_manage_accounts_and_every_change_needs_the_csrf_token(client, make_staff):
    make_staff("ada", "admin")
    make_staff("pia", "peer_worker")
    csrf = await sign_in(client, "ada")
    page = await client.get("/duty/staff")
    assert page.status == 200 and 'data-username="pia"' in await page.text()
    resp = await client.post("/duty/staff/disable", data={"username": "pia"})
    assert resp.status == 403
    resp = await client.post("/duty/staff/disable", data={"username": "nobody", "csrf_token": csrf})
    assert resp.status == 404 and "no account" in await resp.text()


# --- the trail ---------------------------------------------------------------------------------


def test_the_accounts_trail_shows_a_changed_or_removed_entry(db_url, make_staff, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    from bot import settings as settings_module

    settings_module.reset()
    make_staff("ellen", "duty_manager")
    make_staff("pia", "peer_worker")
    engine = db.get_engine(db_url)
    account_admin.set_active(engine, "staff:ellen", "pia", False)
    assert account_trail.verify(engine) is None
    assert duty_main(["verify-accounts"]) == 0
    with db.transaction(db_url) as s:
        s.execute(update(StaffAccountChange).where(StaffAccountChange.seq == 3)
                  .values(actor="staff:pia"))
    assert account_trail.verify(engine) == 3
    assert duty_main(["verify-accounts"]) == 1
    assert "BROKEN at entry seq 3" in capsys.readouterr().out
    settings_module.reset()


def test_the_cli_resets_a_second_factor_and_add_staff_is_audited(db_url, make_staff, monkeypatch,
                                                                  capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    from bot import settings as settings_module

    settings_module.reset()
    make_staff("ellen", "duty_manager")
    assert duty_main(["reset-2fa", "--username", "ellen"]) == 0
    assert _account(db_url, "ellen").totp_secret is None
    assert duty_main(["reset-2fa", "--username", "ellen"]) == 2
    assert duty_main(["reset-2fa", "--username", "nobody"]) == 2
    assert [(e.actor, e.action) for e in _trail(db_url)] == [("cli", "added"), ("cli", "2fa_reset")]
    settings_module.reset()


# --- the pieces --------------------------------------------------------------------------------


def test_totp_matches_rfc_6238_and_refuses_used_and_far_steps():
    # RFC 6238, appendix B: SHA-1, secret "12345678901234567890", T = 59 s -> 94287082
    # (8 digits); authenticator apps show the last 6.
    import base64

    secret = base64.b32encode(b"12345678901234567890").decode().rstrip("=")
    assert twofactor.code_at(secret, 59) == "287082"
    assert twofactor.verify(secret, "287 082", None, at=59) == 1
    assert twofactor.verify(secret, "287082", 1, at=59) is None  # used
    assert twofactor.verify(secret, "287082", None, at=59 + 30) == 1  # a step late: still fine
    assert twofactor.verify(secret, "287082", None, at=59 + 90) is None  # three steps: no
    assert twofactor.verify(secret, "28708", None, at=59) is None
    assert twofactor.verify(secret, "abcdef", None, at=59) is None
    key = "k" * 40
    sealed = twofactor.seal(secret, key)
    assert secret not in sealed and twofactor.unseal(sealed, key) == secret
    assert twofactor.unseal(sealed, "other" * 8) is None


def test_manager_roles_are_the_roles_that_manage_accounts():
    assert set(account_admin.MANAGER_ROLES) == set(auth.PERMISSIONS["accounts"])
    assert TOTP_SECRET  # the fixture's managers are enrolled with it
