"""The duty service runs the dispatcher: an alert goes out, and the API shows the trail."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot import settings as settings_module
from bot.sms import outbox
from bot.store.models.sms import SmsOutbox
from bot.duty.app import create_app
from bot.escalation import staff_sms
from bot.escalation.dispatch import register_contact
from bot.escalation.engine import record_escalation
from bot.store.db import transaction
from tests.handoff.conftest import MANAGER, PEER, eventually

TOKEN = "handoff-duty-token"


async def test_duty_service_alerts_and_api_lists_the_events(
    pg_env, fake_twilio, configure, aiohttp_client
):
    configure(DUTY_API_TOKEN=TOKEN, RASA_URL="http://127.0.0.1:1")
    client = await aiohttp_client(create_app(settings_module.settings(), dispatch=True))
    rec = await asyncio.to_thread(record_escalation, "conv-api", "imminent", ["overdose_taken"], "rest")
    await eventually(lambda: fake_twilio.to(MANAGER), timeout=1.0, what="tier 1 (imminent)")
    await asyncio.to_thread(staff_sms.handle_staff_sms, MANAGER, f"ACK {rec.ref}")

    resp = await client.get("/api/escalations", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200
    body = await resp.json()
    items = body["escalations"] if isinstance(body, dict) else body
    item = next(i for i in items if i["ref"] == rec.ref)
    assert item["status"] == "acknowledged" and item["acknowledged_at"]
    kinds = [(e["kind"], e["actor"]) for e in item["events"]]
    assert kinds == [
        ("created", "assistant"), ("alerted", "system:dispatcher"), ("acknowledged", "staff:sam"),
    ]
    assert fake_twilio.to(PEER) == []  # imminent skips peer workers

    one = await client.get(f"/api/escalations/{rec.ref}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert [e["kind"] for e in (await one.json())["events"]] == ["created", "alerted", "acknowledged"]


async def test_replies_written_together_are_each_posted_once_and_marked_sent(
    pg_env, fake_twilio, configure, aiohttp_client
):
    """Many replies at once (SMS_SENDER=duty: the duty service posts the Rasa server's): each
    is posted once, and each row is marked sent with the SID Twilio gave that message."""
    configure(DUTY_API_TOKEN=TOKEN, RASA_URL="http://127.0.0.1:1", SMS_SENDER="duty")
    await aiohttp_client(create_app(settings_module.settings(), dispatch=True))
    numbers = [f"+4477009006{i:02d}" for i in range(12)]

    def write_replies() -> None:
        with transaction() as s:
            pids = [register_contact(s, n) for n in numbers]
        for pid in pids:
            for text in ("You reached the out-of-hours line.", "Would you like a person?"):
                outbox.enqueue(pid, text, "reply", None, 3)

    await asyncio.to_thread(write_replies)
    await eventually(lambda: len(fake_twilio.created) >= 2 * len(numbers), timeout=5.0,
                     what="every reply posted")

    def rows() -> list[tuple]:
        with transaction() as s:
            return s.execute(
                select(SmsOutbox.status, SmsOutbox.twilio_sid).where(SmsOutbox.kind == "reply")
            ).all()

    async def all_marked() -> bool:
        return all(status == "sent" for status, _ in await asyncio.to_thread(rows))

    await eventually(all_marked, timeout=5.0, what="every row marked sent")
    marked = sorted(sid for _, sid in await asyncio.to_thread(rows))
    assert marked == sorted(m["sid"] for m in fake_twilio.created)
    assert sorted(m["To"] for m in fake_twilio.created) == sorted(numbers * 2)
