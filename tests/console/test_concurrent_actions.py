"""Two members of staff acting on one conversation at once, while the line writes to the same
escalation's trail: every action succeeds and the trail stays one unbroken chain.

Before appends were serialised per escalation, two of these reading the same last entry gave
a 500 (``UNIQUE constraint failed: escalation_events.escalation_id, escalation_events.seq``).
"""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.duty.app import create_app
from bot.escalation import audit
from bot.escalation.engine import flag_for_staff
from bot.store import db
from bot.store.models import Escalation, EscalationEvent
from tests.console.conftest import make_settings, sign_in

ROUNDS = 6


async def test_two_staff_and_the_line_writing_one_trail_at_once_all_succeed(
    db_url, aiohttp_client, make_staff, seed
):
    esc_id = seed("urgent", status="alerted", signals=["self_harm"])
    with db.transaction() as s:
        esc = s.get(Escalation, esc_id)
        ref, conversation = esc.ref, esc.conversation_id
    make_staff("ellen", "duty_manager")
    make_staff("frank", "peer_worker")
    server = TestServer(create_app(make_settings(db_url)))
    ellen, frank = await aiohttp_client(server), await aiohttp_client(server)
    csrf = await sign_in(ellen, "ellen")
    await sign_in(frank, "frank")

    async def open_page(client) -> int:
        resp = await client.get(f"/duty/e/{ref}")
        await resp.read()
        return resp.status

    async def acknowledge() -> int:
        resp = await ellen.post(f"/duty/e/{ref}/acknowledge", data={"csrf_token": csrf},
                                allow_redirects=False)
        await resp.read()
        return resp.status

    def delivery_failed(i: int) -> None:
        # What the SMS sender records when a message to the person is not delivered.
        flag_for_staff(conversation, "delivery_failed", "SMS not delivered",
                       data={"attempt": i})

    results = await asyncio.gather(
        *[open_page(c) for _ in range(ROUNDS) for c in (ellen, frank)],
        acknowledge(),
        *[asyncio.to_thread(delivery_failed, i) for i in range(ROUNDS)],
        return_exceptions=True,
    )
    pages, ack, flags = results[:2 * ROUNDS], results[2 * ROUNDS], results[2 * ROUNDS + 1:]
    assert pages == [200] * (2 * ROUNDS)
    assert ack == 303
    assert flags == [None] * ROUNDS

    with db.transaction() as s:
        events = s.execute(
            select(EscalationEvent).where(EscalationEvent.escalation_id == esc_id)
            .order_by(EscalationEvent.seq)
        ).scalars().all()
        assert audit.verify_all(s) is None
        assert s.get(Escalation, esc_id).status == "acknowledged"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    kinds = [e.kind for e in events]
    assert kinds.count("transcript_viewed") == 2 * ROUNDS
    assert kinds.count("acknowledged") == 1
    assert kinds.count("delivery_failed") == ROUNDS
    assert len(events) == 1 + 2 * ROUNDS + 1 + ROUNDS  # created, and nothing lost or doubled
