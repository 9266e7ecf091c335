"""Alerts and the ladder, against the real PostgreSQL and a fake Twilio API over loopback HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from sqlalchemy import select

from bot.sms import outbox
from bot.store.models.sms import SmsOutbox
from bot.sms.pseudonym import pseudonym
from bot.escalation import dispatch, engine
from bot.escalation.dispatch import Dispatcher, claim_jobs
from bot.escalation.engine import record_escalation
from bot.store.db import transaction
from bot.store.models import Escalation
from tests.handoff.conftest import CRISIS, MANAGER, PEER, PERSON, PUBLIC_URL, eventually


def status_of(escalation_id: int) -> str:
    with transaction() as s:
        return s.get(Escalation, escalation_id).status


def kinds(escalation_id: int) -> list[str]:
    with transaction() as s:
        return [e.kind for e in s.get(Escalation, escalation_id).events]


async def test_urgent_alert_reaches_first_tier_within_a_second(pg_env, fake_twilio, handoff):
    await handoff()
    started = time.monotonic()
    rec = await asyncio.to_thread(
        record_escalation, pseudonym(PERSON), "urgent", ["self_harm"], "sms"
    )
    msgs = await eventually(lambda: fake_twilio.to(PEER), timeout=1.0, what="first-tier alert")
    assert msgs[0]["at"] - started < 1.0
    body = msgs[0]["Body"]
    assert rec.ref in body and "URGENT" in body and f"{PUBLIC_URL}/duty/e/{rec.ref}" in body
    assert f"ACK {rec.ref}" in body
    # Never the person's number or conversation id.
    assert PERSON not in body and pseudonym(PERSON) not in body
    assert status_of(rec.id) == "alerted"
    assert "alerted" in kinds(rec.id)
    assert fake_twilio.to(MANAGER) == []  # nobody higher up yet


async def test_unacknowledged_alert_climbs_to_the_next_tier_after_the_timeout(
    pg_env, fake_twilio, handoff, configure
):
    configure(ESCALATION_ACK_TIMEOUT_S="1")
    await handoff()
    rec = await asyncio.to_thread(record_escalation, "conv-ladder", "urgent", [], "rest")
    first = (await eventually(lambda: fake_twilio.to(PEER), what="tier 1"))[0]
    second = (await eventually(lambda: fake_twilio.to(MANAGER), what="tier 2"))[0]
    # About the timeout later (slack for a loaded CI machine), never before it.
    assert 0.9 <= second["at"] - first["at"] < 2.5
    assert "STILL UNACKNOWLEDGED" in second["Body"] and rec.ref in second["Body"]
    third = (await eventually(lambda: fake_twilio.to(CRISIS), what="tier 3"))[0]
    assert 0.9 <= third["at"] - second["at"] < 2.5
    assert len(fake_twilio.to(PEER)) == 1 and len(fake_twilio.to(MANAGER)) == 1


async def test_second_tier_is_alerted_about_five_seconds_later(pg_env, fake_twilio, handoff, configure):
    configure(ESCALATION_ACK_TIMEOUT_S="5")
    await handoff()
    await asyncio.to_thread(record_escalation, "conv-five", "urgent", [], "rest")
    first = (await eventually(lambda: fake_twilio.to(PEER), what="tier 1"))[0]
    second = (await eventually(lambda: fake_twilio.to(MANAGER), timeout=7, what="tier 2"))[0]
    assert 4.9 <= second["at"] - first["at"] < 5.6


async def test_acknowledging_stops_the_ladder(pg_env, fake_twilio, handoff, configure):
    configure(ESCALATION_ACK_TIMEOUT_S="1")
    await handoff()
    rec = await asyncio.to_thread(record_escalation, "conv-ack", "urgent", [], "rest")
    await eventually(lambda: fake_twilio.to(PEER), what="tier 1")
    await asyncio.to_thread(engine.acknowledge, rec.ref, "staff:pia", "acknowledged in console")
    await asyncio.sleep(1.6)
    assert fake_twilio.to(MANAGER) == []
    assert status_of(rec.id) == "acknowledged"


async def test_two_dispatchers_send_each_alert_exactly_once(pg_env, fake_twilio, handoff):
    # Two duty services: two dispatchers and two SMS senders on one database.
    refs = []
    for i in range(12):
        refs.append(record_escalation(f"conv-pair-{i}", "urgent", [], "rest").ref)
    await handoff(dispatchers=2, senders=2)
    await eventually(lambda: len(fake_twilio.to(PEER)) >= 12, what="12 alerts")
    await asyncio.sleep(0.5)  # room for any duplicate to arrive
    bodies = [m["Body"] for m in fake_twilio.to(PEER)]
    assert len(bodies) == 12
    assert sorted(next(r for r in refs if r in b) for b in bodies) == sorted(refs)
    with transaction() as s:
        alerted = [e for e in s.execute(select(Escalation)).scalars() for ev in e.events
                   if ev.kind == "alerted"]
    assert len(alerted) == 12


class DiesAfterClaim(Dispatcher):
    """Claims its jobs, then hangs before processing them, and is then killed."""

    claimed: list[int]

    async def run_once(self):
        self.claimed = await self._db(claim_jobs, self.owner, self.lease)
        await asyncio.Event().wait()


async def test_dispatcher_killed_after_claim_still_alerts_exactly_once(pg_env, fake_twilio, handoff):
    rec = record_escalation("conv-kill", "imminent", [], "rest")
    doomed = DiesAfterClaim(poll_s=0.05, lease_s=1.0)
    await doomed.start()
    await eventually(lambda: getattr(doomed, "claimed", None), what="the claim")
    await doomed.stop()  # killed mid-job: the claim is left behind
    killed_at = time.monotonic()
    await handoff(lease_s=1.0)
    msgs = await eventually(lambda: fake_twilio.to(MANAGER), what="alert after restart")
    # Not before the dead dispatcher's lease ran out, then once.
    assert msgs[0]["at"] - killed_at >= 0.5
    await asyncio.sleep(0.5)
    assert len(fake_twilio.to(MANAGER)) == 1
    assert kinds(rec.id).count("alerted") == 1


async def test_sender_killed_mid_send_delivers_the_alert_exactly_once(pg_env, fake_twilio, handoff):
    rec = record_escalation("conv-kill-2", "imminent", [], "rest")
    # A dispatcher writes the alert's outbox row, but no sender is running yet.
    d = Dispatcher(poll_s=0.05)
    await d.start()
    await eventually(lambda: any(o.action == "alerted" for o in d.outcomes), what="dispatch")
    await d.stop()
    # A sender claims the row (status "sending", leased) and dies before posting it.
    rows = outbox.claim_due("dead-sender", dt.timedelta(seconds=0.5), set())
    assert [r.kind for r in rows] == [dispatch.ALERT_KIND]
    await asyncio.sleep(0.6)
    await handoff()  # the restarted service reclaims the expired lease and posts it
    await eventually(lambda: fake_twilio.to(MANAGER), what="alert after restart")
    await asyncio.sleep(0.5)
    assert len(fake_twilio.to(MANAGER)) == 1
    with transaction() as s:
        row = s.execute(select(SmsOutbox).where(SmsOutbox.kind == dispatch.ALERT_KIND)).scalar_one()
        assert row.status == "sent" and row.twilio_sid
    assert rec.ref in fake_twilio.to(MANAGER)[0]["Body"]


async def test_all_tiers_exhausted_tells_the_person_and_the_duty_manager(
    pg_env, fake_twilio, handoff, configure
):
    configure(ESCALATION_ACK_TIMEOUT_S="1")
    pid = pseudonym(PERSON)
    with transaction() as s:
        dispatch.register_contact(s, PERSON)  # the person texted the line: their contact exists
    rec = record_escalation(pid, "support", ["asked_for_human"], "sms")
    await handoff()
    told = await eventually(lambda: fake_twilio.to(PERSON), timeout=4, what="person told")
    body = told[0]["Body"]
    assert "999" in body and "111" in body and "option 2" in body and "116 123" in body
    # Tier 2 of the support ladder, then the exhausted alert; the sender may deliver the
    # person's message first, so wait for the manager's second one rather than race it.
    manager = await eventually(
        lambda: len(fake_twilio.to(MANAGER)) >= 2 and fake_twilio.to(MANAGER),
        timeout=4, what="duty manager told",
    )
    assert len(manager) == 2
    assert "NOBODY ACKNOWLEDGED" in manager[1]["Body"]
    assert kinds(rec.id)[-2:] == ["ladder_exhausted", "person_told"]
    assert status_of(rec.id) == "alerted"  # still waiting for a human
