"""A burst of web chat escalations pages staff once as a suspected flood; every escalation
stays in the queue (real PostgreSQL, real dispatcher, fake Twilio over loopback HTTP)."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from bot.escalation.engine import record_escalation
from bot.escalation.flood import FLOOD_THRESHOLD
from bot.store.db import transaction
from bot.store.models import Escalation
from tests.handoff.conftest import PEER, eventually


def live(refs: list[str]) -> dict[str, tuple[str, list[str]]]:
    with transaction() as s:
        rows = s.execute(select(Escalation).where(Escalation.ref.in_(refs))).scalars().all()
        return {e.ref: (e.status, [ev.kind for ev in e.events]) for e in rows}


async def test_ten_web_chats_in_a_burst_page_staff_once_as_a_flood(pg_env, fake_twilio, handoff):
    await handoff()
    refs = []
    for _ in range(10):  # ten new sessions in a few seconds, each with a risk message
        rec = await asyncio.to_thread(record_escalation, uuid.uuid4().hex, "urgent",
                                      ["suicidal_ideation"], "socketio")
        refs.append(rec.ref)
    floods = await eventually(
        lambda: [m for m in fake_twilio.to(PEER) if "SUSPECTED FLOOD" in m["Body"]],
        what="the flood alert")
    await asyncio.sleep(1.0)  # time for any further alert to (wrongly) go out
    pages = fake_twilio.to(PEER)
    # The ones before the burst was clear were alerted as usual; then one flood alert.
    assert len(floods) == 1
    assert len(pages) == FLOOD_THRESHOLD
    assert refs[FLOOD_THRESHOLD - 1] in floods[0]["Body"]
    # Every escalation is in the queue; the held ones say why they were not alerted.
    state = live(refs)
    assert len(state) == 10
    assert all(status in ("open", "alerted") for status, _ in state.values())
    for ref in refs[FLOOD_THRESHOLD:]:
        assert "flood_held" in state[ref][1]


async def test_other_channels_are_never_grouped(pg_env, fake_twilio, handoff):
    await handoff()
    for n in range(FLOOD_THRESHOLD + 2):
        await asyncio.to_thread(record_escalation, f"sms-conv-{n}", "urgent", [], "sms")
    pages = await eventually(
        lambda: (lambda got: got if len(got) >= FLOOD_THRESHOLD + 2 else None)(
            fake_twilio.to(PEER)), what="one alert each")
    assert not any("SUSPECTED FLOOD" in m["Body"] for m in pages)
