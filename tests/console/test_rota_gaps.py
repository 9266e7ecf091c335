"""A gap in the rota within 14 days is warned about when the duty service starts (a log line)
and on console pages (a banner), and goes away once the rota is fixed."""

from __future__ import annotations

import asyncio
import logging

from bot.duty import rota_gaps
from bot.duty.app import create_app
from bot.escalation import rota_store
from bot.store import db

from .conftest import make_settings, sign_in
from .test_rota import ROTA

# The peer workers only on Friday and Saturday nights: every other evening the line says its
# out-of-hours team is on duty while the first tier of the support and urgent ladders is empty.
GAPPY = ROTA.replace(
    '      - {days: daily, from: "00:00", to: "00:00", staff: [pia]}',
    '      - {days: [fri, sat], from: "17:00", to: "09:00", staff: [pia]}',
)


async def test_a_gap_within_14_days_is_logged_at_start_up_and_shown_on_console_pages(
    db_url, aiohttp_client, make_staff, tmp_path, caplog, monkeypatch
):
    monkeypatch.setattr(rota_gaps, "STAT_S", 0.05)
    path = tmp_path / "rota.yml"
    path.write_text(GAPPY)
    caplog.set_level(logging.WARNING, logger="bot.duty.rota_gaps")
    client = await aiohttp_client(create_app(make_settings(db_url, ROTA_FILE=str(path))))
    [warning] = [r for r in caplog.records if "ROTA GAP" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "Peer workers (peer_workers; support, urgent ladders)" in warning.getMessage()
    assert "07700" not in warning.getMessage()  # staff are named by tier only

    make_staff("sam", "duty_manager")
    await sign_in(client, "sam")
    for page in ("/duty", "/duty/rota", "/duty/sanctuary"):
        text = await (await client.get(page)).text()
        assert "Rota gap:" in text, page
        assert "nobody on call for Peer workers" in text, page

    # Fixed (an import, or edits on the rota page): the banner goes once the service sees the
    # new version in the database.
    rota_store.import_text(db.get_engine(), ROTA, "fixed.yml", "cli:ops")
    for _ in range(100):
        if "Rota gap:" not in await (await client.get("/duty")).text():
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the banner stayed after the rota was fixed")


async def test_no_warning_and_no_banner_when_the_rota_covers_the_line(
    db_url, aiohttp_client, make_staff, caplog
):
    caplog.set_level(logging.WARNING, logger="bot.duty.rota_gaps")
    client = await aiohttp_client(create_app(make_settings(db_url)))  # the example rota
    assert not [r for r in caplog.records if "ROTA GAP" in r.getMessage()]
    make_staff("pia", "peer_worker")
    await sign_in(client, "pia")
    assert "Rota gap:" not in await (await client.get("/duty")).text()


async def test_the_banner_is_not_shown_to_sanctuary_volunteers_or_before_sign_in(
    db_url, aiohttp_client, make_staff, tmp_path
):
    path = tmp_path / "rota.yml"
    path.write_text(GAPPY)
    client = await aiohttp_client(create_app(make_settings(db_url, ROTA_FILE=str(path))))
    assert "Rota gap:" not in await (await client.get("/login")).text()
    make_staff("val", "sanctuary_volunteer", house="harbour_house")
    await sign_in(client, "val")
    assert "Rota gap:" not in await (await client.get("/duty/sanctuary")).text()
