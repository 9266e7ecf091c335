"""The first staff alert leaves when the escalation is committed, not at the dispatcher's poll.

On PostgreSQL ``record_escalation`` sends ``NOTIFY escalation_alerts`` (payload: the job id) in
its transaction; the duty service's ``AlertWakeup`` listens and wakes the dispatcher. These
tests run the real duty service (``create_app(..., dispatch=True)``) with the dispatcher's poll
at 60 s and the SMS sender's at 60 s, so an alert that arrives within a second arrived because
of the notification and the dispatcher's wake-up of the sender, not a poll.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

import psycopg2
import pytest
from sqlalchemy import create_engine, func, select, text

from bot import settings as settings_module
from bot.duty import handoff
from bot.duty.app import create_app
from bot.duty.keys import DispatchTimings
from bot.escalation import engine
from bot.escalation.dispatch import Dispatcher
from bot.escalation.engine import record_escalation
from bot.store.models.handoff import AlertJob
from bot.escalation.wakeup import APPLICATION_NAME, AlertWakeup
from bot.store.db import transaction
from bot.store.models import Escalation
from tests.handoff.conftest import PEER, eventually

LONG_POLL_S = 60.0


@pytest.fixture
async def duty_service(monkeypatch, configure, aiohttp_client):
    """The duty service with every poll on the alert's path at a minute."""
    configure(RASA_URL="http://127.0.0.1:1")
    slow = DispatchTimings(dispatch_poll_s=LONG_POLL_S, sender_poll_s=LONG_POLL_S)

    async def start():
        client = await aiohttp_client(create_app(settings_module.settings(), dispatch=True,
                                                 dispatch_timings=slow))
        app = client.server.app
        # every poll on the alert's path is slow: only the wake-up can deliver in time
        assert app[handoff.DISPATCHER_KEY].poll_s == LONG_POLL_S
        assert app[handoff.SENDER_KEY].poll_s == LONG_POLL_S
        return app[handoff.WAKEUP_KEY], app[handoff.DISPATCHER_KEY]

    return start


async def listening(wakeup: AlertWakeup, other_than: int | None = None) -> int:
    pid = await eventually(lambda: wakeup.backend_pid not in (None, other_than) and wakeup.backend_pid,
                           timeout=5.0, what="the listener to LISTEN")
    await asyncio.sleep(0.3)  # the wake-up on connecting has been served; the dispatcher sleeps
    return pid


def count(model) -> int:
    with transaction() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


async def test_alert_reaches_staff_within_a_second_with_the_poll_at_a_minute(
    pg_env, fake_twilio, duty_service
):
    wakeup, dispatcher = await duty_service()
    assert dispatcher.poll_s == LONG_POLL_S
    await listening(wakeup)
    before = wakeup.notifications

    started = time.monotonic()
    rec = await asyncio.to_thread(record_escalation, "conv-wake", "urgent", ["self_harm"], "rest")
    msgs = await eventually(lambda: fake_twilio.to(PEER), timeout=2.0, what="first-tier alert")

    # What the peer worker on call sees: the alert on their phone, within a second.
    assert msgs[0]["at"] - started < 1.0
    assert rec.ref in msgs[0]["Body"] and msgs[0]["Body"].startswith("URGENT")
    assert wakeup.notifications > before


async def test_notify_payload_is_the_job_id_and_only_for_jobs_due_now(pg_env, configure):
    conn = psycopg2.connect(pg_env.replace("postgresql+psycopg2://", "postgresql://"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("LISTEN escalation_alerts")
        rec = await asyncio.to_thread(record_escalation, "conv-payload", "imminent", [], "sms")
        await eventually(lambda: conn.poll() or conn.notifies, timeout=2.0, what="notification")
        with transaction() as s:
            job_id = s.execute(select(AlertJob.id).where(AlertJob.escalation_id == rec.id)).scalar_one()
        assert [(n.channel, n.payload) for n in conn.notifies] == [("escalation_alerts", str(job_id))]
        conn.notifies.clear()

        # A ladder step due later (after a tier's timeout) is left to the poll: no notification.
        def later() -> None:
            with transaction() as s:
                esc = s.get(Escalation, rec.id)
                engine.schedule_alert(s, esc, "imminent", 1, engine.utcnow() + dt.timedelta(minutes=1))

        await asyncio.to_thread(later)
        await asyncio.sleep(0.3)
        conn.poll()
        assert conn.notifies == []
    finally:
        conn.close()


async def test_a_rolled_back_escalation_wakes_nothing_and_alerts_nobody(
    pg_env, fake_twilio, duty_service
):
    wakeup, _ = await duty_service()
    await listening(wakeup)
    before = wakeup.notifications

    class Abandoned(Exception):
        pass

    def record_then_fail() -> None:
        with pytest.raises(Abandoned):
            with transaction() as s:
                record_escalation("conv-rollback", "imminent", ["overdose_taken"], "rest", session=s)
                raise Abandoned  # e.g. the action's turn failed after recording

    await asyncio.to_thread(record_then_fail)
    await asyncio.sleep(1.0)
    assert wakeup.notifications == before
    assert fake_twilio.created == []
    assert count(Escalation) == 0 and count(AlertJob) == 0

    # The listener was listening all along: a committed escalation is announced and alerted.
    await asyncio.to_thread(record_escalation, "conv-commit", "urgent", [], "rest")
    await eventually(lambda: fake_twilio.to(PEER), timeout=2.0, what="the committed one's alert")
    assert wakeup.notifications == before + 1


async def test_listener_reconnects_after_its_backend_is_killed(
    pg_env, fake_twilio, duty_service, monkeypatch, caplog
):
    # A second's pause before reconnecting: long enough to record an escalation while nobody
    # listens, whose notification is lost.
    monkeypatch.setattr(AlertWakeup, "backoff_s", lambda self, failures: 1.0)
    caplog.set_level(logging.INFO, logger="bot.escalation.wakeup")
    wakeup, _ = await duty_service()
    first = await listening(wakeup)
    admin = create_engine(pg_env, future=True)
    try:
        with admin.connect() as conn:
            names = conn.execute(text("SELECT application_name FROM pg_stat_activity "
                                      "WHERE pid = :pid"), {"pid": first}).scalars().all()
            assert names == [APPLICATION_NAME]
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    finally:
        admin.dispose()
    await eventually(lambda: wakeup.backend_pid is None, timeout=2.0, what="the loss noticed")

    # Announced while nobody listens: picked up by the wake-up on reconnecting, not the poll.
    started = time.monotonic()
    missed = await asyncio.to_thread(record_escalation, "conv-missed", "urgent", [], "rest")
    msgs = await eventually(lambda: fake_twilio.to(PEER), timeout=3.0, what="the missed alert")
    assert missed.ref in msgs[0]["Body"] and msgs[0]["at"] - started < 2.5
    await listening(wakeup, other_than=first)

    # And a later escalation is alerted at once again.
    started = time.monotonic()
    later = await asyncio.to_thread(record_escalation, "conv-later", "urgent", [], "rest")
    msgs = await eventually(lambda: len(fake_twilio.to(PEER)) == 2 and fake_twilio.to(PEER),
                            timeout=2.0, what="the later alert")
    assert later.ref in msgs[1]["Body"] and msgs[1]["at"] - started < 1.0

    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "bot.escalation.wakeup")
    assert "listening connection lost (OperationalError)" in logged
    assert "listening again" in logged
    assert pg_env.rsplit("/", 1)[1] not in logged and "127.0.0.1" not in logged


async def test_on_sqlite_nothing_listens_and_the_dispatcher_polls(
    sqlite_url, fake_twilio, configure, aiohttp_client
):
    configure(RASA_URL="http://127.0.0.1:1")
    client = await aiohttp_client(create_app(settings_module.settings(), dispatch=True))
    wakeup = client.server.app[handoff.WAKEUP_KEY]
    assert not wakeup.enabled and wakeup.backend_pid is None and wakeup._task is None

    started = time.monotonic()
    rec = await asyncio.to_thread(record_escalation, "conv-sqlite", "urgent", [], "rest")
    msgs = await eventually(lambda: fake_twilio.to(PEER), timeout=3.0, what="alert by polling")
    assert rec.ref in msgs[0]["Body"] and msgs[0]["at"] - started < 2.0
    assert wakeup.notifications == 0


async def test_a_backlog_is_worked_through_without_waiting_a_poll_per_batch(sqlite_url, configure):
    dispatcher = Dispatcher(poll_s=LONG_POLL_S)
    await dispatcher.start()
    try:
        await asyncio.sleep(0.2)  # the first pass found nothing; now it sleeps for a minute

        def many() -> None:
            for i in range(2 * dispatcher.batch + 3):
                record_escalation(f"conv-{i}", "urgent", [], "rest")

        await asyncio.to_thread(many)
        dispatcher.wake()  # one wake-up, as one notification would
        await eventually(lambda: len(dispatcher.outcomes) == 2 * dispatcher.batch + 3,
                         timeout=10.0, what="every job of the backlog")
        assert {o.action for o in dispatcher.outcomes} == {"alerted"}
    finally:
        await dispatcher.stop()


async def test_unreachable_server_is_retried_quietly_and_stops_at_once(caplog):
    caplog.set_level(logging.INFO, logger="bot.escalation.wakeup")
    woken: list[float] = []
    wakeup = AlertWakeup("postgresql+psycopg2://postgres@127.0.0.1:1/nowhere",
                         lambda: woken.append(time.monotonic()),
                         backoff_base_s=0.02, backoff_cap_s=0.05)
    await wakeup.start()
    await asyncio.sleep(0.5)
    started = time.monotonic()
    await wakeup.stop()
    assert time.monotonic() - started < 1.0
    assert woken == [] and wakeup.connections == 0
    messages = [r.getMessage() for r in caplog.records if r.name == "bot.escalation.wakeup"]
    # Many attempts, one line, with the exception's type only (never the address or database).
    assert messages == ["alert wake-up: cannot listen (OperationalError); retrying, the "
                        "dispatcher polls meanwhile"]
