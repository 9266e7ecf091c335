"""The SMS benchmark's stopwatch: a turn is over when the line has finished the person's
message and Twilio (the fake) has every reply part it wrote, not before."""

from __future__ import annotations

import asyncio
import datetime as dt

from bench import load
from bot.channels import inbox
from bot.sms import outbox

LEASE = dt.timedelta(seconds=30)


def deliver(fake: load.FakeTwilio, sid: str, to: str, body: str) -> load.Delivery:
    d = load.Delivery(sid, to, body, 1.0)
    fake.deliveries.append(d)
    fake.by_sid[sid] = d
    return d


async def test_a_turn_is_finished_only_when_its_message_is_and_every_part_reached_twilio(db_url):
    fake = load.FakeTwilio()
    tracker = load.TurnTracker(db_url, fake, poll_s=0.01)
    asked, waiting = "SMasked", "SMwaiting"
    done, pending = tracker.wait(asked), tracker.wait(waiting)
    await asyncio.to_thread(inbox.receive_many, [(asked, "+447800000001", "hello", 0),
                                                 (waiting, "+447800000002", "hi", 0)])
    rows = {r.message_sid: r for r in await asyncio.to_thread(
        inbox.claim, "worker", LEASE, set(), lambda _p: True, 8)}
    row = rows[asked]
    for text in ("This is an automated line.", "Would you like to talk to someone?"):
        await asyncio.to_thread(outbox.enqueue, row.pseudonym, text, "reply", row.id, 3)
    tracker.start()
    try:
        parts, _ = await asyncio.to_thread(outbox.claim_due_and_wait, "sender", LEASE, set(),
                                           8, 6, None, 3.0)
        first, second = sorted(parts, key=lambda p: p.id)
        await asyncio.to_thread(outbox.mark_sent, first.id, "SMpart1", "queued", 1)
        delivered = [deliver(fake, "SMpart1", "+447800000001", first.body)]
        await asyncio.to_thread(inbox.finish, row.id, "worker", "done")
        await asyncio.sleep(0.1)
        assert not done.done()  # the second part is not out yet

        await asyncio.to_thread(outbox.mark_sent, second.id, "SMpart2", "queued", 1)
        await asyncio.sleep(0.1)
        assert not done.done()  # marked sent, but Twilio has not been seen to accept it
        delivered.append(deliver(fake, "SMpart2", "+447800000001", second.body))
        status, got = await asyncio.wait_for(done, 2.0)
        assert status == "done" and got == delivered
        assert not pending.done()  # still running: no reply, row not finished

        await asyncio.to_thread(inbox.finish, rows[waiting].id, "worker", "failsafe")
        status, got = await asyncio.wait_for(pending, 2.0)
        assert (status, got) == ("failsafe", [])
    finally:
        await tracker.stop()
