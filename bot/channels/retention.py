"""How long the SMS channel keeps its queue rows, and the purge that enforces it.

The inbox and outbox are queues, not records: the conversation lives in the tracker store and
every escalation step in the audit trail. A finished row is kept ``SMS_RETENTION_DAYS``
(default 30) so that staff can still trace a delivery problem, then deleted. Rows still in
flight (received, processing, pending, sending) are never purged, however old: that would lose
a message. Opt-outs are kept (they are the record of a person's choice), and so are the
contacts of people who opted out (the line must keep refusing to text them).

The Rasa server's inbox worker runs ``purge`` about once an hour; ``python -m bot.channels
purge`` runs it by hand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete

from bot.store.models.sms import (
    INBOX_DONE,
    INBOX_FAILED,
    INBOX_FAILSAFE,
    INBOX_KEYWORD,
    OUT_FAILED,
    OUT_NOT_SENT_LOCAL,
    OUT_SENT,
    OUT_SUPPRESSED,
    SmsInbox,
    SmsOutbox,
)
from bot.store.db import transaction
from bot.store.models import utcnow

FINISHED_INBOX = (INBOX_DONE, INBOX_FAILSAFE, INBOX_FAILED, INBOX_KEYWORD)
FINISHED_OUTBOX = (OUT_SENT, OUT_FAILED, OUT_NOT_SENT_LOCAL, OUT_SUPPRESSED)
# Deleting in slices keeps each transaction (and SQLite's write lock) short, so the webhook
# never waits long behind a purge.
BATCH = 500


@dataclass(frozen=True)
class Purged:
    inbox: int
    outbox: int


def _purge_table(table, when_column, statuses, cutoff: dt.datetime) -> int:
    total = 0
    while True:
        with transaction() as s:
            ids = s.execute(
                table.__table__.select()
                .with_only_columns(table.id)
                .where(table.status.in_(statuses), when_column < cutoff)
                .limit(BATCH)
            ).scalars().all()
            if not ids:
                return total
            s.execute(delete(table).where(table.id.in_(ids)))
        total += len(ids)


def purge(retention_days: float, now: dt.datetime | None = None) -> Purged:
    """Delete rows finished more than ``retention_days`` ago; return the counts.

    Counted from when a row was finished (inbox ``done_at``, outbox ``updated_at``), not
    received: a message answered late after an outage keeps its full retention period.
    """
    if retention_days <= 0:
        raise ValueError("retention must be a positive number of days")
    cutoff = (now or utcnow()) - dt.timedelta(days=retention_days)
    return Purged(
        inbox=_purge_table(SmsInbox, SmsInbox.done_at, FINISHED_INBOX, cutoff),
        outbox=_purge_table(SmsOutbox, SmsOutbox.updated_at, FINISHED_OUTBOX, cutoff),
    )
