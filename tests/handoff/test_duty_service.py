"""The duty service runs the dispatcher: an alert goes out, and the API shows the trail."""

from __future__ import annotations

import asyncio

from bot import settings as settings_module
from bot.duty.app import create_app
from bot.escalation import staff_sms
from bot.escalation.engine import record_escalation
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
