"""Finished SMS queue rows are deleted after the retention period; nothing in flight ever is."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot.channels import retention
from bot.channels.__main__ import main as channels_cli
from bot.store.models.sms import (
    INBOX_DONE,
    INBOX_PROCESSING,
    INBOX_RECEIVED,
    OUT_FAILED,
    OUT_PENDING,
    OUT_SENT,
    SmsInbox,
    SmsOutbox,
)
from bot.store.db import transaction
from bot.store.models import utcnow

OLD = dt.timedelta(days=40)
RECENT = dt.timedelta(days=2)


def _seed() -> None:
    now = utcnow()
    with transaction() as s:
        for n, (status, age) in enumerate([
            (INBOX_DONE, OLD),  # purged
            (INBOX_DONE, RECENT),  # kept: inside the retention period
            (INBOX_RECEIVED, OLD),  # kept: never answered yet
            (INBOX_PROCESSING, OLD),  # kept: a turn under way
        ]):
            finished = status == INBOX_DONE
            s.add(SmsInbox(message_sid=f"SM{n:032d}", pseudonym="p" * 16, body=None,
                           status=status, received_at=now - age,
                           done_at=now - age if finished else None))
        for status, age in [(OUT_SENT, OLD), (OUT_FAILED, OLD), (OUT_SENT, RECENT),
                            (OUT_PENDING, OLD)]:
            s.add(SmsOutbox(pseudonym="p" * 16, body="reply", status=status,
                            created_at=now - age, updated_at=now - age))


def _left() -> tuple[list[tuple], list[str]]:
    with transaction() as s:
        inbox_rows = s.execute(select(SmsInbox.status, SmsInbox.received_at)).all()
        outbox_rows = s.execute(select(SmsOutbox.status)).scalars().all()
    return inbox_rows, sorted(outbox_rows)


def test_purge_deletes_only_finished_rows_past_retention(db_url):
    _seed()
    purged = retention.purge(30)
    assert (purged.inbox, purged.outbox) == (1, 2)
    inbox_rows, outbox_statuses = _left()
    assert sorted(r.status for r in inbox_rows) == sorted(
        [INBOX_DONE, INBOX_RECEIVED, INBOX_PROCESSING])
    # The message nobody has answered yet survives however old it is.
    assert outbox_statuses == sorted([OUT_SENT, OUT_PENDING])
    # A second purge finds nothing more.
    assert retention.purge(30) == retention.Purged(0, 0)


def test_purge_refuses_a_non_positive_retention(sqlite_url):
    with pytest.raises(ValueError):
        retention.purge(0)


def test_cli_purges_with_the_given_retention(sqlite_url, capsys):
    _seed()
    assert channels_cli(["purge", "--days", "1"]) == 0
    out = capsys.readouterr().out
    # With one day, the two-day-old finished rows go too.
    assert "purged 2 inbox and 3 outbox rows" in out
    assert channels_cli(["purge", "--days", "0"]) == 2


def test_cli_reports_an_unreachable_database_without_a_traceback(monkeypatch, tmp_path, capsys):
    from bot import settings as settings_module

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'missing' / 'no.db'}")
    settings_module.reset()
    try:
        assert channels_cli(["purge"]) == 1
    finally:
        settings_module.reset()
    err = capsys.readouterr().err
    assert "purge failed" in err and "Traceback" not in err


async def test_the_running_channel_purges_on_its_own(twilio_env, servers, monkeypatch):
    from tests.channels.conftest import eventually

    # The first purge is normally a few minutes after start-up; here, at once.
    _seed()
    await servers(purge_first_after_s=0.0)

    def purged() -> bool:
        # The in-flight rows are the worker's to answer (and it does); what matters here is
        # that the old finished ones went and the recent ones stayed.
        cutoff = utcnow() - dt.timedelta(days=30)
        with transaction() as s:
            old_done = s.execute(select(SmsInbox.id).where(
                SmsInbox.status == INBOX_DONE, SmsInbox.done_at < cutoff)).all()
            old_out = s.execute(select(SmsOutbox.id).where(
                SmsOutbox.status.in_([OUT_SENT, OUT_FAILED]),
                SmsOutbox.updated_at < cutoff)).all()
            kept = set(s.execute(select(SmsInbox.message_sid)).scalars())
        # Kept: the two-day-old row, and the 40-day-old messages the worker has just
        # answered (their retention counts from now).
        return not old_done and not old_out and kept == {f"SM{n:032d}" for n in (1, 2, 3)}

    await eventually(purged, timeout=5, what="the worker's purge")
