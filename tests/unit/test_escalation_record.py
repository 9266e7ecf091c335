"""record_escalation: the one function the assistant calls when it needs a human."""

from sqlalchemy import select

from bot.escalation import audit
from bot.escalation.engine import flag_for_staff, record_escalation
from bot.store.db import transaction
from bot.store.models import Escalation, EscalationEvent
from tests.helpers import tampering


def test_urgent_message_opens_one_escalation_with_an_audit_entry(db_url):
    rec = record_escalation("conv-a", "urgent", ["suicidal_thoughts"], channel="rest")
    assert rec.created and rec.status == "open" and rec.ref.startswith("E")
    with transaction() as s:
        esc = s.execute(select(Escalation)).scalar_one()
        events = s.execute(select(EscalationEvent)).scalars().all()
    assert esc.level == "urgent" and esc.signals == ["suicidal_thoughts"]
    assert [e.kind for e in events] == ["created"]
    assert events[0].actor == "assistant"


def test_second_risk_message_raises_level_never_lowers_it(db_url):
    first = record_escalation("conv-b", "urgent", ["self_harm"])
    second = record_escalation("conv-b", "imminent", ["overdose_taken"])
    third = record_escalation("conv-b", "support", [])
    assert first.id == second.id == third.id
    assert not second.created
    assert third.level == "imminent"
    with transaction() as s:
        esc = s.get(Escalation, first.id)
        kinds = [e.kind for e in esc.events]
        assert esc.level == "imminent"
        assert esc.signals == ["self_harm", "overdose_taken"]
    assert kinds == ["created", "level_raised"]


def test_audit_chain_verifies_and_catches_a_tampered_row(db_url):
    rec = record_escalation("conv-c", "support", [])
    record_escalation("conv-c", "urgent", ["risk_to_others"])
    with transaction() as s:
        assert audit.verify_all(s) is None
    with tampering() as s:
        ev = s.execute(
            select(EscalationEvent).where(EscalationEvent.escalation_id == rec.id, EscalationEvent.seq == 2)
        ).scalar_one()
        ev.reason = "nothing happened"
    with transaction() as s:
        broken = audit.verify_all(s)
    assert broken is not None and broken.seq == 2 and "changed" in broken.problem


def test_unknown_level_is_refused(db_url):
    import pytest

    with pytest.raises(ValueError, match="unknown escalation level"):
        record_escalation("conv-d", "whenever", [])


def test_flag_for_staff_goes_on_the_live_escalation_or_opens_one_only_when_asked(db_url):
    assert flag_for_staff("conv-e", "delivery_failed", "SMS not delivered") is None
    rec = record_escalation("conv-e", "urgent", ["self_harm"])
    flagged = flag_for_staff("conv-e", "delivery_failed", "SMS not delivered", {"code": 30003})
    assert flagged.id == rec.id
    opened = flag_for_staff("conv-f", "turn_failed", "assistant failed", level="support")
    assert opened is not None and opened.level == "support"
    with transaction() as s:
        kinds = [e.kind for e in s.get(Escalation, rec.id).events]
    assert kinds == ["created", "delivery_failed"]
