"""Records an investigation can trust (issue 28, part 4): a keyed chain, signed checkpoints,
append-only tables on PostgreSQL. Every way of rewriting the trail the issue names (change,
delete, reorder, truncate, rebuild without the key) is done here as someone with the
database owner's rights would (``tests.helpers.tampering``), and ``verify`` must find it.
"""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from sqlalchemy import delete, func, select, text, update

from bot import settings as settings_module
from bot.escalation import audit, checkpoints
from bot.escalation.__main__ import main, verify
from bot.escalation.engine import flag_for_staff, record_escalation
from bot.store.db import transaction
from bot.store.models import (
    CHAIN_HMAC,
    CHAIN_SHA256,
    AuditCheckpoint,
    EscalationEvent,
)
from tests.helpers import tampering


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def trails():
    """Two escalations: a (2 entries), then b (3 entries, the last written)."""
    a = record_escalation("conv-a", "urgent", ["self_harm"])
    record_escalation("conv-a", "imminent", ["overdose_taken"])
    b = record_escalation("conv-b", "support", [])
    flag_for_staff("conv-b", "delivery_failed", "SMS not delivered", {"code": 30003})
    flag_for_staff("conv-b", "turn_failed", "assistant failed")
    return a, b


def anchor(reason: str = "hourly") -> dict:
    return checkpoints.write_now(reason, "system:test")


def entries(escalation_id: int) -> list[EscalationEvent]:
    with transaction() as s:
        return list(s.execute(select(EscalationEvent)
                              .where(EscalationEvent.escalation_id == escalation_id)
                              .order_by(EscalationEvent.seq)).scalars())


def broken() -> str:
    code, out = run("verify")
    assert code == 1, out
    return out


def test_new_entries_are_keyed_and_verify_only_with_the_key(db_url):
    a, _ = trails()
    first = entries(a.id)[0]
    assert first.chain_version == CHAIN_HMAC
    # Not the unkeyed hash anyone could recompute, and not what another key gives.
    fields = (first.prev_hash, first.escalation_id, first.seq, first.at, first.kind,
              first.actor, first.reason, first.data)
    assert first.hash != audit.entry_hash(*fields)
    assert first.hash != audit.keyed_hash("another-key", *fields)
    assert verify().ok
    report = verify(key="another-key")
    assert not report.ok and report.problem == audit.CHANGED


def test_an_intact_trail_with_checkpoints_verifies(db_url):
    trails()
    anchor("start")
    record_escalation("conv-c", "urgent", [])  # after the checkpoint: keyed, not yet anchored
    code, out = run("verify")
    assert code == 0, out
    assert "intact: 6 entries across 3 escalations" in out
    assert "checkpoints intact: 1" in out and "anchors 5 entries; 1 written since" in out


def test_a_changed_entry_is_found(db_url):
    _, b = trails()
    anchor()
    with tampering() as s:
        s.execute(update(EscalationEvent).where(EscalationEvent.escalation_id == b.id,
                                                EscalationEvent.seq == 2)
                  .values(data={"code": 1}))
    assert f"escalation {b.ref} (id {b.id}), entry seq 2: entry was changed" in broken()


def test_a_deleted_entry_is_found(db_url):
    a, _ = trails()
    anchor()
    with tampering() as s:
        s.execute(delete(EscalationEvent).where(EscalationEvent.escalation_id == a.id,
                                                EscalationEvent.seq == 1))
    assert f"escalation {a.ref} (id {a.id}), entry seq 1: entry missing" in broken()


def test_reordered_entries_are_found(db_url):
    _, b = trails()
    anchor()
    with tampering() as s:
        # Swap seq 2 and 3 (through a free number: seq is unique per escalation).
        rows = {ev.seq: ev.id for ev in s.execute(
            select(EscalationEvent).where(EscalationEvent.escalation_id == b.id)).scalars()}
        for entry_id, seq in ((rows[2], 99), (rows[3], 2), (rows[2], 3)):
            s.execute(update(EscalationEvent).where(EscalationEvent.id == entry_id)
                      .values(seq=seq))
    assert f"escalation {b.ref} (id {b.id}), entry seq 2: does not follow" in broken()


def test_the_end_of_the_latest_trail_cut_off_is_found(db_url):
    # The whole trail's last entry: a chain alone cannot tell; the checkpoint names it.
    _, b = trails()
    cp = anchor()
    with tampering() as s:
        s.execute(delete(EscalationEvent).where(EscalationEvent.escalation_id == b.id,
                                                EscalationEvent.seq == 3))
    out = broken()
    assert f"(id {cp['head_id']}) is gone: entries were removed from the end" in out


def test_the_end_of_an_earlier_trail_cut_off_is_found(db_url):
    a, _ = trails()
    anchor()
    with tampering() as s:
        s.execute(delete(EscalationEvent).where(EscalationEvent.escalation_id == a.id,
                                                EscalationEvent.seq == 2))
    assert "1 of the 5 entries checkpoint #1" in broken()


def test_a_trail_rebuilt_with_another_key_is_found(db_url):
    _, b = trails()
    anchor()
    _rebuild(b.id, lambda prev, ev: audit.keyed_hash("attacker-key", prev, *_fields(ev)),
             CHAIN_HMAC, reason="nothing happened")
    assert f"escalation {b.ref} (id {b.id}), entry seq 1: entry was changed" in broken()


def test_a_trail_rebuilt_as_unkeyed_sha256_is_found(db_url):
    # The old, unkeyed hash anyone can compute: only entries from before the upgrade may have
    # it, and the checkpoints sealed which those are.
    _, b = trails()
    anchor()
    _rebuild(b.id, lambda prev, ev: audit.entry_hash(prev, *_fields(ev)), CHAIN_SHA256,
             reason="nothing happened")
    assert "has an unkeyed hash but was written after keyed entries" in broken()


def test_a_whole_line_rebuilt_unkeyed_is_found_by_the_checkpoint(db_url):
    a, b = trails()
    anchor()
    for esc in (a, b):
        _rebuild(esc.id, lambda prev, ev: audit.entry_hash(prev, *_fields(ev)), CHAIN_SHA256)
    assert "checkpoint" in broken()


def test_a_changed_checkpoint_is_found(db_url):
    trails()
    anchor()
    anchor()
    with tampering() as s:
        s.execute(update(AuditCheckpoint).where(AuditCheckpoint.id == 1).values(entries=4))
    assert "checkpoint #1" in broken() and "changed after it was signed" in broken()


def test_a_checkpoint_removed_from_the_middle_is_found(db_url):
    trails()
    for _ in range(3):
        anchor()
    with tampering() as s:
        s.execute(delete(AuditCheckpoint).where(AuditCheckpoint.id == 2))
    assert "checkpoint #3" in broken() and "a checkpoint was removed" in broken()


def test_a_truncation_re_anchored_with_a_forged_checkpoint_is_found(db_url):
    _, b = trails()
    cp = anchor()
    with tampering() as s:
        s.execute(delete(EscalationEvent).where(EscalationEvent.escalation_id == b.id,
                                                EscalationEvent.seq == 3))
        forged = checkpoints.write(s, "hourly", "system:duty", key="attacker-key")
    assert forged.prev_signature == cp["signature"]
    assert "changed after it was signed, or forged" in broken()


def test_the_wrong_key_is_told_apart_from_tampering(db_url, monkeypatch):
    trails()
    anchor()
    monkeypatch.setenv("AUDIT_KEY", "not-the-key-the-line-writes-with")
    settings_module.reset()
    code, out = run("verify")
    assert code == 2, out
    assert "could not check the audit trail" in out and "AUDIT_KEY" in out


def test_verify_reads_and_changes_nothing(db_url):
    trails()
    anchor()
    before = _counts()
    run("verify")
    assert _counts() == before


def test_postgresql_refuses_update_delete_and_truncate(pg_url):
    a, _ = trails()
    anchor()
    statements = [
        update(EscalationEvent).where(EscalationEvent.escalation_id == a.id).values(reason="x"),
        delete(EscalationEvent).where(EscalationEvent.escalation_id == a.id),
        text("TRUNCATE escalation_events CASCADE"),
        update(AuditCheckpoint).values(entries=0),
        delete(AuditCheckpoint),
        text("TRUNCATE audit_checkpoints"),
    ]
    for statement in statements:
        with pytest.raises(sa.exc.ProgrammingError, match="append-only"):
            with transaction() as s:
                s.execute(statement)
    assert _counts() == (5, 1)
    assert run("verify")[0] == 0


def test_checkpoints_are_one_chain_even_with_two_writers(db_url):
    trails()
    first = anchor()
    second = anchor()
    assert second["prev_signature"] == first["signature"]
    with pytest.raises(sa.exc.IntegrityError):
        with transaction() as s:  # a second checkpoint after the first: refused
            cp = checkpoints.write(s, "hourly", "system:other")
            s.add(AuditCheckpoint(**{**{c: getattr(cp, c) for c in checkpoints.SIGNED},
                                     "signature": cp.signature}))
            s.flush()


async def test_the_duty_service_writes_a_checkpoint_at_start_and_then_each_poll(db_url):
    from tests.helpers import eventually

    trails()
    writer = checkpoints.CheckpointWriter(poll_s=0.05)
    await writer.start()
    try:
        await eventually(lambda: len(writer.written) >= 2, what="two checkpoints")
    finally:
        await writer.stop()
    with transaction() as s:
        reasons = list(s.execute(select(AuditCheckpoint.reason).order_by(AuditCheckpoint.id))
                       .scalars())
    assert reasons[0] == "start" and set(reasons[1:]) == {"hourly"}
    assert writer.written[0]["entries"] == 5
    assert run("verify")[0] == 0


async def test_a_failed_checkpoint_is_retried_within_a_minute_not_an_hour(db_url):
    from tests.helpers import eventually

    trails()
    calls = []

    async def flaky(fn, *args):
        calls.append(fn)
        if len(calls) == 1:  # the database is down, or the lock timed out
            raise sa.exc.OperationalError("LOCK TABLE", {}, Exception("lock timeout"))
        return fn(*args)

    writer = checkpoints.CheckpointWriter(poll_s=3600, retry_s=0.05, run_db=flaky)
    await writer.start()
    try:
        await eventually(lambda: writer.written, what="the checkpoint after the failure")
    finally:
        await writer.stop()
    assert len(calls) == 2 and writer.written[0]["reason"] == "start"


def test_the_checkpoint_command(db_url):
    trails()
    code, out = run("checkpoint", "--by", "cli:ops")
    assert code == 0 and "checkpoint #1: 5 entries" in out
    with transaction() as s:
        cp = s.execute(select(AuditCheckpoint)).scalar_one()
    assert (cp.reason, cp.actor) == ("manual", "cli:ops")


# --- helpers ----------------------------------------------------------------------------------


def _fields(ev: EscalationEvent):
    return (ev.escalation_id, ev.seq, ev.at, ev.kind, ev.actor, ev.reason, ev.data)


def _rebuild(escalation_id: int, hasher, version: int, **changes) -> None:
    """Rewrite a whole trail with ``changes`` to its first entry, every hash recomputed."""
    with tampering() as s:
        rows = list(s.execute(select(EscalationEvent)
                              .where(EscalationEvent.escalation_id == escalation_id)
                              .order_by(EscalationEvent.seq)).scalars())
        prev = audit.GENESIS
        for n, ev in enumerate(rows):
            if n == 0:
                for name, value in changes.items():
                    setattr(ev, name, value)
            ev.prev_hash = prev
            ev.chain_version = version
            ev.hash = hasher(prev, ev)
            prev = ev.hash


def _counts() -> tuple[int, int]:
    with transaction() as s:
        return (s.execute(select(func.count(EscalationEvent.id))).scalar_one(),
                s.execute(select(func.count(AuditCheckpoint.id))).scalar_one())

