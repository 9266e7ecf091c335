"""The rota page: who may see and change it, edits that take effect at once (for the page and
for the dispatcher), edits refused with the rota unchanged, the audit trail of edits, and
staff phone numbers that never appear in full.

The rota is in the database (``bot/escalation/rota_store.py``); ``rota_file`` is ROTA_FILE,
imported as the first version into each test's empty database. ``rota_text()`` is the
current version's text, where these tests once read the file the console rewrote."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from sqlalchemy import select

from bot.duty import rota_edit
from bot.duty.app import create_app
from bot.store.models.duty import RotaChange
from bot.escalation import rota_store
from bot.escalation.dispatch import RotaSource
from bot.store import db

from .conftest import make_settings, sign_in

ROTA = """\
# Test rota: everyone on call round the clock, so the tests do not depend on the time.
timezone: Europe/London

staff:
  # Numbers in Ofcom's drama range.
  - {id: pia, name: Pia, role: peer_worker, phone: "07700 900501"}
  - {id: quinn, name: Quinn, role: peer_worker, phone: "07700 900505"}
  - {id: sam, name: Sam, role: duty_manager, phone: "07700 900502"}
  - {id: cal, name: Cal, role: crisis_team, phone: "07700 900503"}
  - {id: val, name: Val, role: sanctuary_volunteer, phone: "07700 900504"}

tiers:
  - id: peer_workers
    name: Peer workers
    shifts:
      - {days: daily, from: "00:00", to: "00:00", staff: [pia]}
  - id: duty_manager
    name: Duty manager
    shifts:
      - {days: daily, from: "00:00", to: "00:00", staff: [sam]}
  - id: crisis_team
    name: Crisis team
    shifts:
      # The last tier: always staffed.
      - {days: daily, from: "00:00", to: "00:00", staff: [cal]}

ladders:
  support: [peer_workers, duty_manager]
  urgent: [peer_workers, duty_manager, crisis_team]
  imminent: [duty_manager, crisis_team]

sanctuaries:
  - id: harbour_house
    name: Harbour House
    area: Brighton and Hove
    volunteers: [val]
    shifts:
      - {days: [fri, sat], from: "20:00", to: "08:00", staff: [val]}
"""
NUMBERS = ("900501", "900502", "900503", "900504", "900505")
_VERSION = re.compile(r'name="version" value="([0-9a-f]{64})"')


@pytest.fixture
def rota_file(tmp_path):
    folder = tmp_path / "rota"
    folder.mkdir()
    path = folder / "rota.yml"
    path.write_text(ROTA)
    return path


@pytest.fixture
async def client(db_url, aiohttp_client, rota_file):
    return await aiohttp_client(create_app(make_settings(db_url, ROTA_FILE=str(rota_file))))


async def open_rota(client) -> tuple[str, str]:
    resp = await client.get("/duty/rota")
    assert resp.status == 200
    page = await resp.text()
    match = _VERSION.search(page)
    return page, match.group(1) if match else ""


def on_call_now(page: str, team: str) -> str:
    row = re.search(rf'<tr data-team="{team}">.*?<td class="on-call">(.*?)</td>', page, re.S)
    return row.group(1).strip()


def rota_text(seed=None) -> str:
    """The current rota's text in the database (``seed`` imported first into an empty one)."""
    return rota_store.current(db.get_engine(), seed).text


def changes() -> list[RotaChange]:
    with db.transaction() as s:
        return list(s.execute(select(RotaChange).order_by(RotaChange.seq)).scalars())


@pytest.mark.parametrize("role, house, sees, edits", [
    ("peer_worker", None, True, False),
    ("sanctuary_volunteer", "harbour_house", False, False),
    ("duty_manager", None, True, True),
    ("admin", None, True, True),
])
async def test_who_may_see_and_change_the_rota(client, make_staff, rota_file, role, house, sees, edits):
    make_staff("staffer", role, house=house)
    csrf = await sign_in(client, "staffer")
    resp = await client.get("/duty/rota", allow_redirects=False)
    assert resp.status == (200 if sees else 403)
    if sees:
        page = await resp.text()
        assert on_call_now(page, "peer_workers") == "Pia"
        assert ("Add a shift to Peer workers" in page) is edits
        assert ('action="/duty/rota/remove"' in page) is edits
    before = rota_text(rota_file)
    version = rota_edit.version_of(before)
    resp = await client.post("/duty/rota/add", allow_redirects=False, data={
        "csrf_token": csrf, "version": version, "team": "peer_workers", "days": ["mon"],
        "from": "09:00", "to": "17:00", "staff": ["quinn"]})
    if edits:
        assert resp.status == 303 and resp.headers["Location"].startswith("/duty/rota?notice=")
        assert rota_text() != before
    else:
        assert resp.status == 403
        assert rota_text() == before and changes() == []


async def test_an_edit_without_the_csrf_token_is_refused(client, make_staff, rota_file):
    make_staff("sam", "duty_manager")
    await sign_in(client, "sam")
    before = rota_text(rota_file)
    resp = await client.post("/duty/rota/remove", allow_redirects=False, data={
        "version": rota_edit.version_of(before), "team": "peer_workers", "index": "0"})
    assert resp.status == 403
    assert rota_text() == before


async def test_changing_a_shift_changes_who_is_on_call_now_for_the_page_and_the_dispatcher(
    client, make_staff, rota_file
):
    dispatcher_rota = RotaSource(str(rota_file))
    now = dt.datetime.now(dt.timezone.utc)
    assert [p.id for p in dispatcher_rota.get().on_call("peer_workers", now)] == ["pia"]
    make_staff("sam", "duty_manager")
    csrf = await sign_in(client, "sam")
    page, version = await open_rota(client)
    assert on_call_now(page, "peer_workers") == "Pia"

    resp = await client.post("/duty/rota/change", data={
        "csrf_token": csrf, "version": version, "team": "peer_workers", "index": "0",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "00:00", "to": "00:00",
        "staff": ["quinn"]})
    assert resp.status == 200  # after the redirect
    page = await resp.text()
    assert "Shift changed." in page
    assert on_call_now(page, "peer_workers") == "Quinn"
    # The dispatcher's view of the rota (the latest version, checked at each read) agrees.
    assert [p.id for p in dispatcher_rota.get().on_call("peer_workers", now)] == ["quinn"]

    text = rota_text()
    assert rota_file.read_text() == ROTA  # the file is only where the first version came from
    # Only that shift changed; the comments that explain the rota are kept.
    assert '- {days: daily, from: "00:00", to: "00:00", staff: [quinn]}' in text
    assert "# The last tier: always staffed." in text and "# Numbers in Ofcom's drama range." in text
    assert text.replace("staff: [quinn]", "staff: [pia]", 1) == ROTA

    [entry] = changes()
    assert entry.actor == "staff:sam" and entry.action == "change" and entry.team == "peer_workers"
    assert "pia" in entry.summary and "quinn" in entry.summary
    assert entry.data["before"]["staff"] == ["pia"] and entry.data["after"]["staff"] == ["quinn"]
    assert entry.file_after == rota_edit.version_of(text)
    assert not any(n in entry.summary + str(entry.data) for n in NUMBERS)
    assert rota_edit.verify_changes(db.get_engine()) is None
    # The page lists the change.
    assert "staff:sam" in page and "changed a shift of peer_workers" in page


async def test_adding_and_removing_shifts(client, make_staff, rota_file):
    make_staff("sam", "duty_manager")
    csrf = await sign_in(client, "sam")
    _, version = await open_rota(client)
    resp = await client.post("/duty/rota/add", data={
        "csrf_token": csrf, "version": version, "team": "harbour_house", "days": ["sun", "mon"],
        "from": "20:00", "to": "08:00", "staff": ["val"]})
    assert resp.status == 200
    assert '- {days: [mon, sun], from: "20:00", to: "08:00", staff: [val]}' in rota_text()
    _, version = await open_rota(client)
    resp = await client.post("/duty/rota/remove", data={
        "csrf_token": csrf, "version": version, "team": "crisis_team", "index": "0"})
    page = await resp.text()
    assert resp.status == 200 and "Shift removed." in page
    # The crisis team's only shift is gone: nobody in that tier now.
    assert on_call_now(page, "crisis_team") == "Nobody"
    assert [c.action for c in changes()] == ["add", "remove"]
    assert changes()[1].data["after"] is None
    assert rota_edit.verify_changes(db.get_engine()) is None


async def test_a_gap_in_a_ladder_is_shown(client, make_staff, rota_file):
    make_staff("sam", "duty_manager")
    csrf = await sign_in(client, "sam")
    _, version = await open_rota(client)
    await client.post("/duty/rota/change", data={
        "csrf_token": csrf, "version": version, "team": "duty_manager", "index": "0",
        "days": ["mon"], "from": "09:00", "to": "17:00", "staff": ["sam"]})
    _, version = await open_rota(client)
    resp = await client.post("/duty/rota/remove", data={
        "csrf_token": csrf, "version": version, "team": "crisis_team", "index": "0"})
    page = await resp.text()
    gaps = re.search(r'<ul id="gaps">(.*?)</ul>', page, re.S).group(1)
    assert "nobody on call Mon 00:00-09:00" in gaps


@pytest.mark.parametrize("fields, problem", [
    ({"from": "25:00"}, "field 'from' must be a time HH:MM"),
    ({"staff": ["zoe"]}, "'zoe' is not in the staff list"),
    ({"days": []}, "choose at least one day"),
    ({"staff": []}, "choose at least one person"),
    ({"team": "night_owls"}, "there is no tier or house 'night_owls'"),
])
async def test_an_invalid_edit_is_refused_and_the_file_is_unchanged(
    client, make_staff, rota_file, fields, problem
):
    make_staff("sam", "duty_manager")
    csrf = await sign_in(client, "sam")
    _, version = await open_rota(client)
    before = rota_text()
    form = {"csrf_token": csrf, "version": version, "team": "peer_workers", "index": "0",
            "days": ["mon"], "from": "18:00", "to": "02:00", "staff": ["pia"], **fields}
    resp = await client.post("/duty/rota/change", data=form, allow_redirects=False)
    assert resp.status == 400
    page = html.unescape(await resp.text())
    assert problem in page and 'role="alert"' in page
    assert rota_text() == before
    assert sorted(p.name for p in rota_file.parent.iterdir()) == ["rota.yml"]  # no temp file left
    assert changes() == []


async def test_a_volunteer_outside_the_house_cannot_be_put_on_its_shift(client, make_staff, rota_file):
    make_staff("sam", "duty_manager")
    csrf = await sign_in(client, "sam")
    _, version = await open_rota(client)
    before = rota_text()
    resp = await client.post("/duty/rota/add", data={
        "csrf_token": csrf, "version": version, "team": "harbour_house", "days": ["mon"],
        "from": "20:00", "to": "08:00", "staff": ["pia"]})
    assert resp.status == 400
    assert "not one of this house's volunteers" in html.unescape(await resp.text())
    assert rota_text() == before


async def test_an_edit_made_from_a_stale_page_is_refused(client, make_staff, rota_file):
    make_staff("sam", "duty_manager")
    csrf = await sign_in(client, "sam")
    _, version = await open_rota(client)
    # Someone else changes the rota (an import, or another console) after the page opened.
    rota_store.import_text(db.get_engine(), ROTA.replace("staff: [sam]", "staff: [sam, cal]"),
                           "by-hand.yml", "cli:ops")
    before = rota_text()
    resp = await client.post("/duty/rota/remove", data={
        "csrf_token": csrf, "version": version, "team": "peer_workers", "index": "0"})
    assert resp.status == 409
    assert "changed by someone else" in await resp.text()
    # Only the import is on the trail: the refused edit left nothing.
    assert rota_text() == before and [c.action for c in changes()] == ["import"]


async def test_phone_numbers_are_masked(client, make_staff):
    make_staff("sam", "duty_manager")
    await sign_in(client, "sam")
    page, _ = await open_rota(client)
    for number in NUMBERS:
        assert number not in page
    assert "+44 •••••••501" in page and "Pia" in page


async def test_an_invalid_rota_file_is_reported_not_edited(db_url, aiohttp_client, make_staff, rota_file):
    # A database with no rota yet, and ROTA_FILE invalid: nothing to import, show or edit.
    rota_file.write_text(ROTA.replace('"20:00"', "20:00"))
    client = await aiohttp_client(create_app(make_settings(db_url, ROTA_FILE=str(rota_file))))
    make_staff("sam", "duty_manager")
    await sign_in(client, "sam")
    resp = await client.get("/duty/rota")
    page = await resp.text()
    assert resp.status == 200
    assert "is not valid" in page and "put times in quotes" in page
    assert 'action="/duty/rota/add"' not in page
    assert rota_store.versions(db.get_engine()) == []


def test_the_trail_of_rota_edits_detects_a_changed_entry(db_url, rota_file):
    engine = db.get_engine(db_url)
    for staff in (["quinn"], ["pia", "quinn"]):
        version = rota_edit.version_of(rota_text(rota_file))
        rota_edit.apply_edit(engine, str(rota_file), rota_edit.Edit(
            "add", "peer_workers", None, rota_edit.ShiftInput(("sat",), "10:00", "12:00", tuple(staff))),
            version, "staff:sam")
    assert rota_edit.verify_changes(engine) is None
    with db.transaction() as s:
        first = s.execute(select(RotaChange).where(RotaChange.seq == 1)).scalar_one()
        first.actor = "staff:someone-else"
    assert rota_edit.verify_changes(engine) == 1


def test_the_migration_matches_the_model(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import bot.store.registry  # noqa: F401  every table on Base.metadata
    from bot.store.models import Base

    with db.get_engine(db_url).connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert [d for d in diff if "rota_changes" in repr(d)] == []


def test_mask_phone():
    assert rota_edit.mask_phone("+447700900123") == "+44 •••••••123"
    assert rota_edit.mask_phone("+15551234567") == "+ ••••••••567"


def test_verify_rota_command(db_url, rota_file, capsys):
    from bot.duty.__main__ import main as duty_main

    engine = db.get_engine(db_url)
    rota_edit.apply_edit(engine, str(rota_file), rota_edit.Edit(
        "remove", "harbour_house", 0), rota_edit.version_of(rota_file.read_text()), "staff:sam")
    assert duty_main(["verify-rota"]) == 0
    assert "rota trail intact" in capsys.readouterr().out
    with db.transaction() as s:
        s.execute(select(RotaChange)).scalar_one().summary = "nothing happened"
    assert duty_main(["verify-rota"]) == 1
    assert "BROKEN at entry seq 1" in capsys.readouterr().out
