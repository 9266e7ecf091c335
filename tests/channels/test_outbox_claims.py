"""Who sends which outbox part, and when the sender next needs to look.

The Rasa server's sender sends the replies it writes, the duty service's sender the staff
alerts it writes; each takes the other's parts only once they have waited, so a reply still
goes out when the server that wrote it is down.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from bot.sms import outbox
from bot.store.models.sms import SmsOutbox
from bot.store.db import transaction
from bot.store.models import utcnow

LEASE = dt.timedelta(seconds=30)
DUTY = ("alert", "to_person")


def _age(row_id: int, seconds: float) -> None:
    with transaction() as s:
        s.execute(update(SmsOutbox).where(SmsOutbox.id == row_id).values(
            next_attempt_at=utcnow() - dt.timedelta(seconds=seconds)))


def _bodies(rows) -> list[str]:
    return [r.body for r in rows]


def test_each_sender_takes_its_own_parts_at_once_and_the_others_only_late(db_url):
    [reply] = outbox.enqueue("person-1", "You're not alone tonight.", "reply", None, 3)
    [alert] = outbox.enqueue("staff-1", "Someone needs a call back.", "alert", None, 3)
    # The duty service's sender: its alert now, the server's fresh reply not yet.
    assert _bodies(outbox.claim_due("duty", LEASE, set(), kinds=DUTY, others_after_s=3.0)) \
        == ["Someone needs a call back."]
    # The reply has waited past the backup time: its own sender is down. The duty takes it.
    _age(reply, 5)
    assert _bodies(outbox.claim_due("duty", LEASE, set(), kinds=DUTY, others_after_s=3.0)) \
        == ["You're not alone tonight."]
    # Each part was claimed once: nothing is left for either sender.
    assert outbox.claim_due("server", LEASE, set(), kinds=("reply",), others_after_s=3.0) == []
    _age(alert, 5)
    assert outbox.claim_due("duty", LEASE, set(), kinds=DUTY, others_after_s=3.0) == []


def test_without_kinds_a_sender_takes_everything_at_once(db_url):
    outbox.enqueue("person-1", "first", "reply", None, 3)
    outbox.enqueue("staff-1", "second", "alert", None, 3)
    assert _bodies(outbox.claim_due("any", LEASE, set())) == ["first", "second"]


def test_the_next_look_is_when_the_first_waiting_part_is_due_not_a_blocked_one(db_url):
    first, second = (outbox.enqueue("person-1", text, "reply", None, 3)[0]
                     for text in ("part one", "part two"))
    # Part one failed and waits 20 s for its retry; part two is "due" but cannot overtake.
    with transaction() as s:
        s.execute(update(SmsOutbox).where(SmsOutbox.id == first).values(
            next_attempt_at=utcnow() + dt.timedelta(seconds=20), attempts=1))
    assert outbox.claim_due("any", LEASE, set(), per_conversation=6) == []
    due = outbox.next_due_in()
    assert due is not None and 15 < due <= 20
    assert second > first


def test_another_process_s_part_counts_from_when_the_backup_would_take_it(db_url):
    outbox.enqueue("person-1", "a reply", "reply", None, 3)
    due = outbox.next_due_in(DUTY, 3.0)
    assert due is not None and 2 < due <= 3.0
    assert outbox.next_due_in(("reply",), 3.0) == 0.0
    assert outbox.next_due_in() == 0.0
