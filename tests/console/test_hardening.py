"""The console's lesser gaps (issue 23, item 11): guessable passwords, a display name that
defaulted to the username, ``?notice=`` text in pages, no HSTS, versions in ``Server``, and
``/health`` in detail to anyone."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from bot.duty import staff
from bot.duty.__main__ import main as duty_main
from bot.duty.app import create_app
from bot.duty.console_db import OUTCOMES
from bot.store.models.duty import Staff
from bot.store import db
from tests.console.conftest import PASSWORD, sign_in
from tests.duty.conftest import AUTH, make_settings

PHISH = "Your session expired. Sign in again at https://duty-console.example.net"


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("ellen", "aaaaaaaaaaaa", "too easy to guess"),
        ("ellen.smith", "ellen.smith2024", "must not contain the username"),
        ("ellen", "password1234", "too easy to guess"),
        ("ellen", "Liverpool2026", "too easy to guess"),
    ],
)
def test_guessable_passwords_are_refused_with_a_reason(db_url, username, password, reason):
    with pytest.raises(staff.AccountError, match=reason):
        staff.create_staff(db.get_engine(db_url), username, password, "peer_worker",
                           display_name="Ellen")
    with db.transaction() as s:
        assert s.execute(select(Staff)).first() is None


def test_add_staff_refuses_a_weak_password_and_says_why(db_url, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("aaaaaaaaaaaa\n"))
    assert duty_main(["add-staff", "--username", "ellen", "--display-name", "Ellen",
                      "--role", "peer_worker", "--password-stdin"]) == 2
    err = capsys.readouterr().err
    assert "too easy to guess" in err and "aaaaaaaaaaaa" not in err


def test_a_display_name_is_required_and_never_the_username(db_url, monkeypatch, capsys):
    with pytest.raises(staff.AccountError, match="display name"):
        staff.create_staff(db.get_engine(db_url), "ellen.smith2", PASSWORD, "peer_worker")
    with pytest.raises(staff.AccountError, match="display name"):
        staff.create_staff(db.get_engine(db_url), "ellen.smith2", PASSWORD, "peer_worker",
                           display_name="   ")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    with pytest.raises(SystemExit):
        duty_main(["add-staff", "--username", "ellen.smith2", "--role", "peer_worker",
                   "--password-stdin"])
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert duty_main(["add-staff", "--username", "ellen.smith2", "--display-name", "Ellen",
                      "--role", "peer_worker", "--password-stdin"]) == 0
    with db.transaction() as s:
        assert s.execute(select(Staff.display_name)).scalar_one() == "Ellen"


async def test_notice_shows_only_fixed_codes(client, make_staff):
    for path in ("/login", "/duty"):
        if path == "/duty":
            make_staff("ellen", "duty_manager")
            await sign_in(client, "ellen")
        page = await (await client.get(path, params={"notice": PHISH})).text()
        assert "duty-console.example.net" not in page and "session expired" not in page
    page = await (await client.get("/duty/sanctuary", params={"notice": "beds_updated"})).text()
    assert "Free beds updated." in page


async def test_a_refused_step_comes_back_as_a_code(client, make_staff, seed):
    make_staff("ellen", "duty_manager")
    csrf = await sign_in(client, "ellen")
    esc_id = seed("urgent", status="active")
    ref = (await (await client.get(f"/api/escalations/{esc_id}", headers=AUTH)).json())["ref"]
    form = {"csrf_token": csrf, "outcome": next(iter(OUTCOMES))}
    resp = await client.post(f"/duty/e/{ref}/resolve", data=form, allow_redirects=False)
    assert resp.status == 303
    location = resp.headers["Location"]
    code = location.split("notice=", 1)[1]
    assert code.replace("_", "").isalnum(), location
    page = await (await client.get(location)).text()
    assert f"Hand {ref} back to the assistant before resolving it." in page


async def test_hsts_when_the_console_is_public_over_https(db_url, aiohttp_client):
    https = await aiohttp_client(create_app(make_settings(db_url, DUTY_PUBLIC_URL="https://duty.example.org")))
    for path in ("/login", "/", "/health", "/nowhere"):
        resp = await https.get(path, allow_redirects=False)
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        assert int(resp.headers["Strict-Transport-Security"].split("=")[1].split(";")[0]) >= 31536000
    plain = await aiohttp_client(create_app(make_settings(db_url)))
    assert "Strict-Transport-Security" not in (await plain.get("/login")).headers


async def test_the_server_header_names_no_versions(client):
    for path in ("/login", "/health", "/static/console.css", "/nowhere"):
        server = (await client.get(path)).headers.get("Server", "")
        assert not any(ch.isdigit() for ch in server), server
        assert "aiohttp" not in server.lower() and "python" not in server.lower()


async def test_health_is_bare_to_the_public_and_detailed_to_staff(client, make_staff):
    public = await client.get("/health")
    assert public.status == 200
    assert await public.json() == {"status": "degraded"}  # Rasa and actions are unreachable here
    wrong = await client.get("/health", headers={"Authorization": "Bearer not-the-token"})
    assert await wrong.json() == {"status": "degraded"}
    detailed = await (await client.get("/health", headers=AUTH)).json()
    assert detailed["database"]["ok"] is True and detailed["rasa"]["error"] == "unreachable"
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    assert "database" in await (await client.get("/health")).json()
