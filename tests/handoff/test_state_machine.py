"""The escalation state machine: legal steps, refused steps, the trail, the ladder's jobs."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from bot.escalation import audit, engine
from bot.escalation.__main__ import verify
from bot.escalation.engine import TransitionError, record_escalation
from bot.store.models.handoff import JOB_CANCELLED, JOB_PENDING, AlertJob
from bot.store.db import transaction
from bot.store.models import Escalation, EscalationEvent
from tests.helpers import tampering


def jobs(escalation_id: int) -> list[tuple[str, int, str]]:
    with transaction() as s:
        rows = s.execute(
            select(AlertJob).where(AlertJob.escalation_id == escalation_id).order_by(AlertJob.id)
        ).scalars()
        return [(j.level, j.step, j.status) for j in rows]


def kinds(escalation_id: int) -> list[str]:
    with transaction() as s:
        return [e.kind for e in s.get(Escalation, escalation_id).events]


def test_opening_an_escalation_owes_its_first_alert_in_the_same_transaction(any_env):
    rec = record_escalation("conv-1", "urgent", ["self_harm"], channel="sms")
    assert jobs(rec.id) == [("urgent", 0, JOB_PENDING)]
    # A second risk message adds to the live escalation and owes no second alert.
    record_escalation("conv-1", "urgent", ["suicidal_thoughts"], channel="sms")
    assert jobs(rec.id) == [("urgent", 0, JOB_PENDING)]


def test_a_rolled_back_escalation_leaves_no_alert_behind(any_env):
    with pytest.raises(RuntimeError):
        with transaction() as s:
            record_escalation("conv-rb", "urgent", [], session=s)
            raise RuntimeError("the turn failed")
    with transaction() as s:
        assert s.execute(select(AlertJob)).first() is None


def test_raising_the_level_restarts_the_ladder_at_the_higher_levels_first_tier(any_env):
    rec = record_escalation("conv-2", "support", [])
    record_escalation("conv-2", "imminent", ["overdose_taken"])
    assert jobs(rec.id) == [("support", 0, JOB_CANCELLED), ("imminent", 0, JOB_PENDING)]


def test_whole_journey_is_audited_and_the_chain_verifies(any_env):
    rec = record_escalation("conv-3", "urgent", ["self_harm"], channel="webchat")
    engine.acknowledge(rec.ref, "staff:pia", reason="ACK by SMS")
    assert jobs(rec.id) == [("urgent", 0, JOB_CANCELLED)]  # the ladder stops
    engine.take_over(rec.ref.lower(), "staff:pia", "Pia")
    engine.hand_back(rec.id, "staff:pia")
    engine.record_consent(rec.ref, "sanctuary", True, "staff:pia")
    engine.refer(rec.ref, "staff:pia", "harbour_house")
    engine.resolve(rec.ref, "staff:sam", "sanctuary_stay")
    assert kinds(rec.id) == [
        "created", "acknowledged", "taken_over", "handed_back", "consent_recorded", "referred",
        "resolved",
    ]
    with transaction() as s:
        esc = s.get(Escalation, rec.id)
        assert esc.status == "resolved" and esc.acknowledged_at and esc.resolved_at
        assert esc.summary["consent"] == {"sanctuary": True}
        events = {e.kind: e for e in esc.events}
        assert events["taken_over"].actor == "staff:pia"
        assert events["taken_over"].data == {"staff": "staff:pia", "display_name": "Pia"}
        assert events["referred"].data["house"] == "harbour_house"
        assert audit.verify_all(s) is None
    assert verify().ok


def test_tampering_with_any_entry_of_a_journey_is_caught(any_env):
    rec = record_escalation("conv-4", "imminent", ["overdose_taken"])
    engine.take_over(rec.ref, "staff:sam", "Sam")  # acknowledges on the way
    engine.hand_back(rec.ref, "staff:sam")
    engine.resolve(rec.ref, "staff:sam", "emergency_services")
    assert verify().ok
    with tampering() as s:
        s.execute(
            update(EscalationEvent)
            .where(EscalationEvent.escalation_id == rec.id, EscalationEvent.kind == "taken_over")
            .values(actor="staff:someone_else")
        )
    report = verify()
    assert not report.ok and report.broken_ref == rec.ref
    assert report.broken_seq == kinds(rec.id).index("taken_over") + 1
    assert report.problem == "entry was changed after it was written"


@pytest.mark.parametrize(
    "steps, refused, message",
    [
        ([], lambda r: engine.hand_back(r, "staff:x"), "Cannot hand back"),
        ([], lambda r: engine.refer(r, "staff:x", "harbour_house"), "Cannot refer"),
        (["ack"], lambda r: engine.acknowledge(r, "staff:y"), "it is acknowledged"),
        (["take"], lambda r: engine.take_over(r, "staff:y", "Yan"), "Cannot take over"),
        (["take"], lambda r: engine.resolve(r, "staff:x", "supported"), "Hand"),
        (["ack"], lambda r: engine.refer(r, "staff:x", "harbour_house"), "not consented"),
        (["ack"], lambda r: engine.resolve(r, "staff:x", "because I said so"), "outcome"),
        (["resolve"], lambda r: engine.acknowledge(r, "staff:x"), "it is resolved"),
        (["resolve"], lambda r: engine.take_over(r, "staff:x", "X"), "it is resolved"),
        (["resolve"], lambda r: engine.resolve(r, "staff:x", "supported"), "it is resolved"),
    ],
)
def test_illegal_transitions_are_refused_and_leave_no_trace(any_env, steps, refused, message):
    rec = record_escalation("conv-5", "urgent", [])
    for step in steps:
        if step == "ack":
            engine.acknowledge(rec.ref, "staff:x")
        elif step == "take":
            engine.take_over(rec.ref, "staff:x", "Xan")
        elif step == "resolve":
            engine.resolve(rec.ref, "staff:x", "duplicate")
    before = kinds(rec.id)
    with pytest.raises(TransitionError, match=message):
        refused(rec.ref)
    assert kinds(rec.id) == before


def test_unknown_reference_is_a_clear_error(any_env):
    with pytest.raises(engine.NotFound, match="No escalation EZZZZZ"):
        engine.acknowledge("EZZZZZ", "staff:x")


def test_migration_0005_matches_the_model(any_env):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import bot.store.registry  # noqa: F401  every table on Base.metadata
    from bot.store.db import get_engine
    from bot.store.models import Base

    with get_engine(any_env).connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert [d for d in diff if "escalation_alerts" in repr(d)] == []


def test_migration_0006_matches_the_models_and_downgrades(any_env):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import bot.store.registry  # noqa: F401  every table on Base.metadata
    from bot.store import migrate
    from bot.store.db import get_engine
    from bot.store.models import Base

    tables = ("escalation_alert_sms", "escalation_watch")

    def diff():
        with get_engine(any_env).connect() as conn:
            found = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        return [d for d in found if any(t in repr(d) for t in tables)]

    assert diff() == []
    migrate.downgrade(any_env, "0005_handoff")
    with get_engine(any_env).connect() as conn:
        assert not set(get_engine(any_env).dialect.get_table_names(conn)) & set(tables)
    migrate.upgrade(any_env)
    assert diff() == []
