"""When a staff phone cannot be reached the ladder moves on at once; when nobody answers at all
the duty manager is reminded until someone does. Real PostgreSQL, fake Twilio API."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from bot.escalation import delivery
from bot.store.models.sms import SmsOutbox
from bot.sms.pseudonym import pseudonym
from bot.escalation import dispatch, engine, rota_store
from bot.escalation.engine import record_escalation
from bot.store.models.handoff import AlertJob
from bot.store.db import get_engine, transaction
from tests.handoff.conftest import CRISIS, MANAGER, PEER, PERSON, ROTA, eventually

OTHER_PEER = "+447700900505"


def kinds(ref: str) -> list[str]:
    with transaction() as s:
        return [e.kind for e in engine.load(s, ref, lock=False).events]


def entries(ref: str, kind: str) -> list[dict]:
    with transaction() as s:
        return [dict(e.data or {}) for e in engine.load(s, ref, lock=False).events
                if e.kind == kind]


async def test_a_number_twilio_refuses_moves_the_alert_to_the_next_tier_at_once(
    pg_env, fake_twilio, handoff, configure
):
    configure(ESCALATION_ACK_TIMEOUT_S="30")  # far longer than the test waits
    fake_twilio.refusals[PEER] = (400, 21610)  # the peer worker's phone has opted out
    await handoff()
    started = time.monotonic()
    rec = await asyncio.to_thread(record_escalation, "conv-refused", "urgent", ["self_harm"], "rest")
    second = await eventually(lambda: fake_twilio.to(MANAGER), timeout=3, what="tier 2 at once")
    assert second[0]["at"] - started < 3.0
    assert "STILL UNACKNOWLEDGED" in second[0]["Body"] and rec.ref in second[0]["Body"]
    assert fake_twilio.to(PEER) == []  # refused, never created
    [refusal] = entries(rec.ref, "alert_undeliverable")
    assert refusal["staff"] == "pia" and refusal["error_code"] == "21610"
    assert refusal["purpose"] == "tier"
    [advanced] = entries(rec.ref, "ladder_advanced")
    assert (advanced["from_step"], advanced["to_step"]) == (0, 1)
    order = kinds(rec.ref)
    assert order.index("alert_undeliverable") < order.index("ladder_advanced")
    with transaction() as s:
        row = s.execute(select(SmsOutbox).where(SmsOutbox.id == refusal["outbox_id"])).scalar_one()
        assert (row.status, row.error_code) == ("failed", "21610")
    await asyncio.sleep(0.5)
    assert fake_twilio.to(CRISIS) == []  # the manager's alert was delivered: wait for them
    assert len(fake_twilio.to(MANAGER)) == 1


async def test_one_refused_number_waits_while_someone_else_in_the_tier_was_reached(
    pg_env, fake_twilio, handoff, configure, tmp_path
):
    rota = tmp_path / "two_peers.yml"
    rota.write_text(
        ROTA.replace(
            '  - {id: sam,',
            '  - {id: pat, name: Pat, role: peer_worker, phone: "07700 900505"}\n  - {id: sam,',
        ).replace("staff: [pia]}", "staff: [pia, pat]}")
    )
    configure(ESCALATION_ACK_TIMEOUT_S="30", ROTA_FILE=str(rota))
    fake_twilio.refusals[PEER] = (400, 21211)
    await handoff()
    rec = await asyncio.to_thread(record_escalation, "conv-half", "urgent", [], "rest")
    await eventually(lambda: fake_twilio.to(OTHER_PEER), what="the reachable peer worker")
    await eventually(lambda: entries(rec.ref, "alert_undeliverable"), what="refusal recorded")
    await asyncio.sleep(0.6)
    assert fake_twilio.to(MANAGER) == []  # Pat has the alert: the tier keeps its timeout
    assert entries(rec.ref, "ladder_advanced") == []


async def test_undelivered_status_callback_for_an_alert_also_moves_the_ladder_on(
    pg_env, fake_twilio, handoff, configure
):
    configure(ESCALATION_ACK_TIMEOUT_S="30")
    await handoff()
    rec = await asyncio.to_thread(record_escalation, "conv-undelivered", "urgent", [], "rest")
    sent = await eventually(lambda: fake_twilio.to(PEER), what="tier 1 accepted by Twilio")

    def marked_sent() -> bool:
        with transaction() as s:
            return s.execute(
                select(SmsOutbox.status).where(SmsOutbox.twilio_sid == sent[0]["sid"])
            ).scalar_one_or_none() == "sent"

    await eventually(marked_sent, what="the outbox row marked sent")
    # Twilio accepted it, then the handset could not be reached.
    for _ in range(2):  # reported twice (Twilio retries callbacks): handled once
        await asyncio.to_thread(delivery.apply_status, sent[0]["sid"], "undelivered", "30003")
    await eventually(lambda: fake_twilio.to(MANAGER), timeout=3, what="tier 2 at once")
    assert len(entries(rec.ref, "alert_undeliverable")) == 1
    assert len(entries(rec.ref, "ladder_advanced")) == 1
    assert entries(rec.ref, "delivery_failed") == []  # not mistaken for the person's SMS


async def test_after_the_ladder_the_duty_manager_is_reminded_until_someone_acknowledges(
    pg_env, fake_twilio, handoff, configure
):
    # Support ladder: peer workers, duty manager; then every 1 s (1 s x 900/900) a reminder.
    configure(ESCALATION_ACK_TIMEOUT_S="1")
    with transaction() as s:
        dispatch.register_contact(s, PERSON)
    rec = record_escalation(pseudonym(PERSON), "support", ["asked_for_human"], "sms")
    await handoff()
    manager = await eventually(lambda: len(fake_twilio.to(MANAGER)) >= 4 and fake_twilio.to(MANAGER),
                               timeout=8, what="tier 2, exhausted, two reminders")
    bodies = [m["Body"] for m in manager]
    assert "NOBODY ACKNOWLEDGED" in bodies[1] and bodies[2].startswith("REMINDER 1: STILL ")
    assert bodies[3].startswith("REMINDER 2: ") and all(rec.ref in b for b in bodies)
    gap = manager[3]["at"] - manager[2]["at"]
    assert 0.8 <= gap < 2.5  # the interval, with slack for a loaded machine
    assert len(fake_twilio.to(PERSON)) == 1  # told once, honestly; not spammed
    reminders = entries(rec.ref, "re_alerted")
    assert [r["repeat"] for r in reminders[:2]] == [1, 2] and reminders[0]["staff"] == ["sam"]

    engine.acknowledge(rec.ref, "staff:sam", "ACK by SMS")
    settled = len(fake_twilio.to(MANAGER))
    await asyncio.sleep(2.0)
    assert len(fake_twilio.to(MANAGER)) <= settled + 1  # at most one already in flight
    with transaction() as s:
        pending = s.execute(select(AlertJob).where(
            AlertJob.escalation_id == rec.id, AlertJob.status == "pending")).scalars().all()
    assert pending == []
    final = len(fake_twilio.to(MANAGER))
    await asyncio.sleep(1.5)
    assert len(fake_twilio.to(MANAGER)) == final


def test_reminder_interval_is_five_minutes_for_risk_and_scales_for_tests():
    assert engine.realert_interval_s("imminent", 0) == 300
    assert engine.realert_interval_s("urgent", 0) == 300
    assert engine.realert_interval_s("support", 0) == 900
    assert engine.realert_interval_s("imminent", 2) == 10
    assert engine.realert_interval_s("support", 2) == 2


# Monday morning: the office is open, so no peer worker or duty manager is on call; the one
# crisis-team clinician is the whole urgent ladder.
MONDAY_MORNING = ROTA.replace(
    'shifts: [{days: daily, from: "00:00", to: "00:00", staff: [pia]}]', "shifts: []"
).replace('shifts: [{days: daily, from: "00:00", to: "00:00", staff: [sam]}]', "shifts: []")


async def test_an_alert_nobody_acknowledges_is_repeated_to_whoever_is_then_on_call(
    pg_env, fake_twilio, handoff, configure, tmp_path
):
    rota = tmp_path / "monday.yml"
    rota.write_text(MONDAY_MORNING)
    # Tier timeout 1 s; reminders every 2.5 s (urgent: 2.5 times the tier timeout).
    configure(ESCALATION_ACK_TIMEOUT_S="1", ROTA_FILE=str(rota))
    await handoff()
    rec = await asyncio.to_thread(record_escalation, "conv-monday", "urgent", ["self_harm"], "rest")
    crisis = await eventually(lambda: len(fake_twilio.to(CRISIS)) >= 3 and fake_twilio.to(CRISIS),
                              timeout=8, what="tier alert, nobody acknowledged, a reminder")
    bodies = [m["Body"] for m in crisis]
    assert "URGENT" in bodies[0] and "NOBODY ACKNOWLEDGED" in bodies[1]
    assert bodies[2].startswith("REMINDER 1: STILL ") and rec.ref in bodies[2]
    assert entries(rec.ref, "re_alerted")[0]["staff"] == ["cal"]

    # A duty manager comes on shift: the next reminder goes to them, read from the rota then.
    await asyncio.to_thread(
        rota_store.import_text, get_engine(),
        ROTA.replace('shifts: [{days: daily, from: "00:00", to: "00:00", staff: [pia]}]', "shifts: []"),
        "rota.yml", "staff:sam")
    manager = await eventually(lambda: fake_twilio.to(MANAGER), timeout=6, what="the new duty manager")
    assert manager[0]["Body"].startswith("REMINDER ") and rec.ref in manager[0]["Body"]
    assert fake_twilio.to(PEER) == []
    assert "re_alert_skipped" not in kinds(rec.ref)
