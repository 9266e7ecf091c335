"""The block list's store (bot/escalation/blocks.py, migration 0015_sender_blocks): a block
needs a reason and a duration from the list, ends at its time or when lifted, and every block
and lift is on the escalation's hash-chained trail. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

import bot.store.registry  # noqa: F401  every table on Base.metadata
from bot.escalation import audit, blocks
from bot.escalation.engine import NotFound, record_escalation, resolve
from bot.store import migrate
from bot.store.db import get_engine, transaction
from bot.store.models import Base, Escalation, utcnow


def _diff(url):
    with get_engine(url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    return [d for d in diff if "sender_blocks" in repr(d)]


def test_the_migration_makes_what_the_model_declares(db_url):
    assert _diff(db_url) == []


def test_the_migration_downgrades_and_upgrades(sqlite_url):
    migrate.downgrade(sqlite_url, "0014_unmet_need")
    assert "sender_blocks" not in inspect(get_engine(sqlite_url)).get_table_names()
    migrate.upgrade(sqlite_url)
    assert "sender_blocks" in inspect(get_engine(sqlite_url)).get_table_names()
    assert _diff(sqlite_url) == []


def _trail(ref: str) -> list[tuple[str, str, str, dict]]:
    with transaction() as s:
        esc = s.execute(select(Escalation).where(Escalation.ref == ref)).scalar_one()
        assert audit.verify_events(esc.events) is None  # the chain still holds
        return [(e.kind, e.actor, e.reason, dict(e.data)) for e in esc.events]


def test_a_block_and_its_lifting_are_on_the_escalations_trail(db_url):
    engine = get_engine(db_url)
    esc = record_escalation("sms-person-1", "support", channel="sms")
    block_id = blocks.block(engine, esc.ref, "staff:mo", "  repeated\x00 abusive\n messages ", 24)
    assert blocks.current_blocks(engine).keys() == {"sms-person-1"}
    found = blocks.for_ref(engine, esc.ref)
    assert (found["reason"], found["created_by"], found["ref"]) == (
        "repeated abusive messages", "staff:mo", esc.ref)
    assert found["expires_at"] - found["created_at"] == dt.timedelta(hours=24)
    assert blocks.unblock(engine, block_id, "staff:ann") == esc.ref
    assert blocks.current_blocks(engine) == {}
    assert blocks.for_ref(engine, esc.ref) is None
    kinds = _trail(esc.ref)
    blocked = [t for t in kinds if t[0] == blocks.BLOCKED_KIND]
    lifted = [t for t in kinds if t[0] == blocks.UNBLOCKED_KIND]
    assert blocked[0][1:3] == ("staff:mo", "repeated abusive messages")
    assert blocked[0][3]["hours"] == 24 and blocked[0][3]["block_id"] == block_id
    assert lifted[0][1] == "staff:ann" and lifted[0][3] == {"block_id": block_id}


@pytest.mark.parametrize("reason,hours,code", [
    ("", 24, "block_reason_needed"),
    ("   \n\t ", 24, "block_reason_needed"),
    (None, 24, "block_reason_needed"),
    ("x" * (blocks.MAX_REASON + 1), 24, "block_reason_too_long"),
    ("abusive", 5, "block_duration"),
    ("abusive", "forever", "block_duration"),
    ("abusive", None, "block_duration"),
])
def test_a_block_needs_a_reason_and_a_duration_from_the_list(sqlite_url, reason, hours, code):
    engine = get_engine(sqlite_url)
    esc = record_escalation("sms-person-2", "support", channel="sms")
    with pytest.raises(blocks.BlockRefused) as refused:
        blocks.block(engine, esc.ref, "staff:mo", reason, hours)
    assert refused.value.code == code
    assert blocks.current_blocks(engine) == {}
    assert not [k for k, *_ in _trail(esc.ref) if k == blocks.BLOCKED_KIND]


def test_one_block_at_a_time_and_an_unknown_escalation_is_not_found(sqlite_url):
    engine = get_engine(sqlite_url)
    esc = record_escalation("sms-person-3", "support", channel="sms")
    blocks.block(engine, esc.ref, "staff:mo", "abusive", 4)
    with pytest.raises(blocks.BlockRefused) as refused:
        blocks.block(engine, esc.ref, "staff:mo", "again", 24)
    assert refused.value.code == "already_blocked"
    with pytest.raises(NotFound):
        blocks.block(engine, "ZZZZZZ", "staff:mo", "abusive", 4)


def test_a_block_made_from_an_earlier_escalation_covers_the_sender(sqlite_url):
    engine = get_engine(sqlite_url)
    first = record_escalation("sms-person-4", "support", channel="sms")
    blocks.block(engine, first.ref, "staff:mo", "abusive", 24)
    resolve(first.ref, "staff:mo", "supported")
    later = record_escalation("sms-person-4", "urgent", channel="sms")
    assert later.ref != first.ref
    assert blocks.for_ref(engine, later.ref)["ref"] == first.ref


def test_a_block_ends_at_its_time(sqlite_url):
    engine = get_engine(sqlite_url)
    esc = record_escalation("sms-person-5", "support", channel="sms")
    made = utcnow() - dt.timedelta(hours=4) + dt.timedelta(seconds=30)
    block_id = blocks.block(engine, esc.ref, "staff:mo", "abusive", 4, now=made)
    assert "sms-person-5" in blocks.current_blocks(engine)
    later = utcnow() + dt.timedelta(seconds=31)
    assert blocks.current_blocks(engine, later) == {}
    assert blocks.for_ref(engine, esc.ref, later) is None
    listed = blocks.listing(engine, later)
    assert listed.current == [] and [b["id"] for b in listed.ended] == [block_id]
    # Ended: there is nothing left to lift, and nothing goes on the trail.
    with pytest.raises(blocks.BlockRefused) as refused:
        blocks.unblock(engine, block_id, "staff:mo", now=later)
    assert refused.value.code == "not_blocked"
    assert [k for k, *_ in _trail(esc.ref) if k == blocks.UNBLOCKED_KIND] == []


def test_lifting_twice_or_an_unknown_block_is_refused(sqlite_url):
    engine = get_engine(sqlite_url)
    esc = record_escalation("sms-person-6", "support", channel="sms")
    block_id = blocks.block(engine, esc.ref, "staff:mo", "abusive", 4)
    blocks.unblock(engine, block_id, "staff:mo")
    for which in (block_id, 999_999):
        with pytest.raises(blocks.BlockRefused):
            blocks.unblock(engine, which, "staff:mo")


def test_the_listing_names_escalations_never_conversation_ids(sqlite_url):
    engine = get_engine(sqlite_url)
    esc = record_escalation("sms-secret-pseudonym", "support", channel="sms")
    blocks.block(engine, esc.ref, "staff:mo", "abusive", 4)
    listed = blocks.listing(engine)
    assert [b["ref"] for b in listed.current] == [esc.ref]
    assert "sms-secret-pseudonym" not in repr(listed)


def test_the_view_reads_at_most_once_a_refresh_and_ends_a_block_at_its_time():
    now = dt.datetime(2026, 12, 8, 1, 0, tzinfo=dt.timezone.utc)
    clock = [0.0]
    reads = []

    def read():
        reads.append(clock[0])
        return {"c-1": now + dt.timedelta(minutes=5)}

    view = blocks.BlockView(read, refresh_s=1.0, clock=lambda: clock[0])
    assert view.known("c-1", now) is None  # nothing read yet
    assert view.lookup("c-1", now) is True
    for step in range(5):
        clock[0] = step * 0.1
        assert view.known("c-1", now) is True and view.known("c-2", now) is False
    assert view.known("c-1", now + dt.timedelta(minutes=5)) is False  # its time, no read
    clock[0] = 1.0
    assert view.known("c-1", now) is None
    assert reads == [0.0]


def test_a_blocked_sender_is_not_offered_the_feedback_survey(sqlite_url):
    """Their answers would only get the emergency numbers back."""
    from bot.feedback import questions, store

    engine = get_engine(sqlite_url)
    esc = record_escalation("sms-person-7", "support", channel="sms")
    resolve(esc.ref, "staff:mo", "supported")
    block_id = blocks.block(engine, esc.ref, "staff:mo", "abusive", 4)
    offered = store.offer("sms-person-7", "sms", "resolved", questions.load())
    assert (offered.survey_id, offered.reason) == (None, "blocked")
    blocks.unblock(engine, block_id, "staff:mo")
    assert store.offer("sms-person-7", "sms", "resolved", questions.load()).reason == "ok"
