"""The SMS benchmark's breakdown of where a turn's time went inside the line, read from the
line's own timestamps: a slow level says whether messages waited for the worker, for the
turn, or for Twilio."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import create_engine, select, update

from bench import load
from bot.channels import inbox
from bot.sms import outbox
from bot.store.models.sms import SmsInbox, SmsOutbox

LEASE = dt.timedelta(seconds=30)
T0 = dt.datetime(2026, 12, 4, 21, 0, tzinfo=dt.timezone.utc)


def at(ms: float) -> dt.datetime:
    return T0 + dt.timedelta(milliseconds=ms)


def test_stages_are_read_from_the_lines_timestamps(db_url):
    sids = ["SMone", "SMtwo", "SMlost"]
    inbox.receive_many([(sid, f"+44780000000{i}", "hello", 0) for i, sid in enumerate(sids)])
    rows = {r.message_sid: r for r in inbox.claim("worker", LEASE, set(), lambda _p: True, 8)}
    # One message: stored at 0, claimed at 100, its turn over at 600, two parts written at
    # 300 and 500 and posted at 350 and 700. The other: 0, 200, 400; one part 380 -> 400.
    # The third never finished (a timed-out turn in the bench): not counted.
    timeline = {"SMone": (0, 100, 600, [(300, 350), (500, 700)]),
                "SMtwo": (0, 200, 400, [(380, 400)])}
    part_ids = {}
    for sid, (_, _, _, parts) in timeline.items():
        for _ in parts:
            outbox.enqueue(rows[sid].pseudonym, "This is an automated line.", "reply",
                           rows[sid].id, 3)
    engine = create_engine(db_url, future=True)
    with engine.begin() as conn:
        for sid in timeline:
            part_ids[sid] = conn.execute(select(SmsOutbox.id).where(
                SmsOutbox.inbox_id == rows[sid].id).order_by(SmsOutbox.id)).scalars().all()
        for sid, (stored, claimed, done, parts) in timeline.items():
            conn.execute(update(SmsInbox).where(SmsInbox.id == rows[sid].id).values(
                received_at=at(stored), started_at=at(claimed), done_at=at(done)))
            for part_id, (written, posted) in zip(part_ids[sid], parts, strict=True):
                conn.execute(update(SmsOutbox).where(SmsOutbox.id == part_id).values(
                    status="sent", created_at=at(written), sent_at=at(posted)))
    engine.dispose()
    turns = [load.TurnResult("sms", "p", "s", 0, "none", 0.0, message_sid=sid) for sid in sids]
    turns[2].status = "timeout"

    stages = load.sms_stages(db_url, turns)

    assert stages["to_claim"]["n"] == 2 and stages["to_claim"]["max"] == 200.0
    assert stages["turn"]["p50"] == 200.0 and stages["turn"]["max"] == 500.0
    assert sorted([stages["part_to_twilio"]["p50"], stages["part_to_twilio"]["max"]]) == [
        50.0, 200.0]
    assert stages["part_to_twilio"]["n"] == 3
    assert stages["stored_to_last_part"]["max"] == 700.0
    assert stages["stored_to_last_part"]["n"] == 2


def test_no_finished_turn_gives_no_stages(db_url):
    turns = [load.TurnResult("sms", "p", "s", 0, "none", 0.0, message_sid="SMx",
                             status="timeout")]
    assert load.sms_stages(db_url, turns) == {}
