"""Migration 0015 on a database with a trail written before it: the old entries keep their
SHA-256 hashes and still verify, new ones are keyed, the first checkpoint seals the old ones,
and rewriting an old entry (which needs no key) is then found."""

from __future__ import annotations

import datetime as dt
import io

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import bot.store.registry  # noqa: F401  every table on Base.metadata
from bot.escalation import audit, checkpoints
from bot.escalation.__main__ import main
from bot.escalation.engine import record_escalation
from bot.store import migrate
from bot.store.db import get_engine, transaction
from bot.store.models import CHAIN_HMAC, CHAIN_SHA256, Base, EscalationEvent
from tests.helpers import tampering

UTC = dt.timezone.utc  # noqa: UP017  (3.10)
BEFORE = "0016_crisis_plan"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def _old_trail(conn, escalation_id: int, ref: str, conversation: str, kinds: list[str]) -> None:
    """An escalation and its trail as the line wrote them before 0015 (SHA-256 chain)."""
    meta = sa.MetaData()
    escalations = sa.Table("escalations", meta, autoload_with=conn)
    events = sa.Table("escalation_events", meta, autoload_with=conn)
    assert "chain_version" not in events.c
    at = dt.datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    conn.execute(escalations.insert().values(
        id=escalation_id, ref=ref, conversation_id=conversation, channel="sms", level="urgent",
        status="open", signals=[], summary={}, created_at=at, updated_at=at))
    prev = audit.GENESIS
    for seq, kind in enumerate(kinds, start=1):
        when = at + dt.timedelta(minutes=seq)
        digest = audit.entry_hash(prev, escalation_id, seq, when, kind, "assistant", "", {})
        conn.execute(events.insert().values(
            escalation_id=escalation_id, seq=seq, at=when, kind=kind, actor="assistant",
            reason="", data={}, prev_hash=prev, hash=digest))
        prev = digest
    if conn.dialect.name == "postgresql":
        for table in ("escalations", "escalation_events"):
            conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT max(id) FROM {table}))")


def _upgrade_with_old_trails(url: str) -> None:
    migrate.downgrade(url, BEFORE)
    with get_engine(url).begin() as conn:
        _old_trail(conn, 1, "EOLD1", "conv-old-1", ["created", "acknowledged"])
        _old_trail(conn, 2, "EOLD2", "conv-old-2", ["created", "acknowledged", "resolved"])
    migrate.upgrade(url)


def test_old_trails_stay_verifiable_and_new_entries_are_keyed(db_url):
    _upgrade_with_old_trails(db_url)
    with transaction() as s:
        versions = s.execute(sa.select(EscalationEvent.chain_version)).scalars().all()
    assert versions == [CHAIN_SHA256] * 5
    code, out = run("verify")
    assert code == 0, out
    assert "5 entries written before keyed hashes are not yet sealed" in out
    # The old, still live escalation goes on with keyed entries.
    record_escalation("conv-old-1", "imminent", ["overdose_taken"])
    with transaction() as s:
        last = s.execute(sa.select(EscalationEvent).order_by(EscalationEvent.id.desc())
                         .limit(1)).scalar_one()
    assert (last.escalation_id, last.seq, last.chain_version) == (1, 3, CHAIN_HMAC)
    checkpoints.write_now("start", "system:duty")
    code, out = run("verify")
    assert code == 0, out
    assert "6 entries across 2 escalations" in out and "not yet sealed" not in out


def test_an_old_entry_rewritten_after_the_upgrade_is_found(db_url):
    _upgrade_with_old_trails(db_url)
    checkpoints.write_now("start", "system:duty")
    # Escalation 2 is all unkeyed: its chain can be rebuilt by anyone, and is.
    with tampering() as s:
        rows = list(s.execute(sa.select(EscalationEvent)
                              .where(EscalationEvent.escalation_id == 2)
                              .order_by(EscalationEvent.seq)).scalars())
        prev = audit.GENESIS
        for ev in rows:
            if ev.kind == "resolved":
                ev.actor = "staff:someone_else"
            ev.prev_hash = prev
            ev.hash = audit.entry_hash(prev, ev.escalation_id, ev.seq, ev.at, ev.kind,
                                       ev.actor, ev.reason, ev.data)
            prev = ev.hash
    code, out = run("verify")
    assert code == 1, out
    assert "checkpoint" in out and "BROKEN" in out


def test_the_migration_matches_the_models_and_goes_down_and_up(db_url):
    def diff():
        with get_engine(db_url).connect() as conn:
            found = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        return [d for d in found if "audit_checkpoints" in repr(d)
                or "escalation_events" in repr(d)]

    assert diff() == []
    migrate.downgrade(db_url, BEFORE)
    with get_engine(db_url).connect() as conn:
        assert "audit_checkpoints" not in sa.inspect(conn).get_table_names()
    migrate.upgrade(db_url)
    assert diff() == []
