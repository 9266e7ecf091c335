"""An honest wait (issue 27, part 3): what a person waiting for a human is told, and when.

The words (one SMS, no promise, the numbers, the offers) and the database work behind them on
SQLite and PostgreSQL: the estimate from the queue, the rota and recent acknowledgements;
when an update is due; and that nothing is claimed once the escalation is taken over,
acknowledged or resolved, including when that happens between the watcher's read and its
claim. The relay and the watcher's loop are tested in ``tests/handoff/test_wait_updates.py``.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, update

from bot.escalation import engine, wait
from bot.escalation import rota as rota_module
from bot.escalation.engine import record_escalation
from bot.sms.segments import GSM7, encoding_of
from bot.store import db
from bot.store.models import Escalation, EscalationEvent, utcnow

ROTA = """
timezone: Europe/London
staff:
  - {id: pia, name: Pia, role: peer_worker, phone: "07700 900501"}
  - {id: sam, name: Sam, role: duty_manager, phone: "07700 900502"}
  - {id: cal, name: Cal, role: crisis_team, phone: "07700 900503"}
tiers:
  - id: peer_workers
    name: Peer workers
    shifts: [{days: daily, from: "00:00", to: "00:00", staff: [pia]}]
  - id: duty_manager
    name: Duty manager
    shifts: [{days: daily, from: "00:00", to: "00:00", staff: [sam]}]
  - id: crisis_team
    name: Crisis team
    shifts: [{days: daily, from: "00:00", to: "00:00", staff: [cal]}]
ladders:
  support: [peer_workers, duty_manager]
  urgent: [peer_workers, duty_manager, crisis_team]
  imminent: [duty_manager, crisis_team]
"""
# The same teams with nobody on shift at all (a gap in the rota).
NOBODY = re.sub(r"shifts: \[.*\]", "shifts: []", ROTA)
STAFFED = rota_module.loads(ROTA)[0]
EMPTY = rota_module.loads(NOBODY)[0]

PROMISES = ("i promise", "will be with you", "guarantee", "definitely", "right away",
            "in a moment", "shortly")


def every_estimate() -> list[wait.WaitEstimate]:
    """One of each wording, with the largest numbers a busy night could give."""
    return [
        wait.WaitEstimate(ahead=9999, on_call=99, samples=50, median_s=300, waited_s=0),
        wait.WaitEstimate(ahead=9999, on_call=1, samples=50, median_s=3600, waited_s=0),
        wait.WaitEstimate(ahead=9999, on_call=99, samples=50, median_s=60, waited_s=86_400),
        wait.WaitEstimate(ahead=9999, on_call=99, samples=4, median_s=300, waited_s=0),
        wait.WaitEstimate(ahead=9999, on_call=0, samples=50, median_s=300, waited_s=0),
        wait.WaitEstimate(ahead=9999, on_call=99, samples=50, median_s=300, waited_s=0,
                          unreached=True),
    ]


def test_each_wording_is_reached():
    assert [e.wording for e in every_estimate()] == [
        wait.ESTIMATE, wait.ESTIMATE, wait.LONGER, wait.UNKNOWN, wait.NOBODY, wait.UNREACHED]


@pytest.mark.parametrize("has_plan", [False, True])
@pytest.mark.parametrize("est", every_estimate(), ids=lambda e: e.wording)
def test_every_update_is_one_sms_honest_and_gives_the_numbers(est, has_plan):
    text = wait.wait_text(est, has_plan)
    assert encoding_of(text) == GSM7 and len(text) <= 306, (len(text), text)
    assert "\u2014" not in text and "\u2013" not in text and "\u2019" not in text
    assert text.startswith("Automated update:")  # never mistaken for a person
    for number in ("999", "116 123", "111 option 2"):
        assert number in text
    assert "Reply CALM" in text
    assert ("PLAN" in text) is has_plan
    lowered = text.lower()
    assert not any(p in lowered for p in PROMISES), text
    if est.wording == wait.ESTIMATE:
        assert "estimate, not a promise" in text
    else:
        assert "estimate" not in text  # no number dressed up as one


def test_an_estimate_is_the_median_per_round_of_the_queue_less_the_time_waited():
    # 3 people before this one and 2 staff: two rounds of about 4 minutes; 1 minute waited.
    est = wait.WaitEstimate(ahead=3, on_call=2, samples=6, median_s=240, waited_s=60)
    assert est.minutes == 7
    assert "about 7 min until a person joins" in wait.wait_text(est)
    assert "Waiting before you: 3. Team on call now: 2." in wait.wait_text(est)
    slow = wait.WaitEstimate(ahead=0, on_call=1, samples=6, median_s=2 * 3600, waited_s=0)
    assert "is over an hour until" in wait.wait_text(slow)


def test_without_enough_history_or_anybody_on_call_it_says_it_does_not_know():
    few = wait.WaitEstimate(ahead=1, on_call=2, samples=wait.MIN_SAMPLES - 1, median_s=60,
                            waited_s=0)
    assert few.minutes is None
    assert "I don't know yet how long it will be" in wait.wait_text(few)
    assert "Waiting before you: 1. Team on call now: 2." in wait.wait_text(few)
    nobody = wait.WaitEstimate(ahead=0, on_call=0, samples=50, median_s=60, waited_s=0)
    text = wait.wait_text(nobody)
    assert "nobody from our team is on call right now" in text
    assert "I don't know when a person can join" in text


# --- the database work ---------------------------------------------------------------------


def _trail(escalation_id: int, kind: str = wait.UPDATE_KIND) -> list[dict]:
    with db.transaction() as s:
        return [dict(e.data) for e in s.execute(
            select(EscalationEvent).where(EscalationEvent.escalation_id == escalation_id,
                                          EscalationEvent.kind == kind)
            .order_by(EscalationEvent.seq)).scalars()]


def _age(escalation_id: int, seconds: float) -> None:
    """Make an escalation ``seconds`` older (as if opened that long ago)."""
    with db.transaction() as s:
        s.execute(update(Escalation).where(Escalation.id == escalation_id)
                  .values(created_at=utcnow() - dt.timedelta(seconds=seconds)))


def _acknowledged_history(level: str, minutes: list[float]) -> None:
    """Past escalations of ``level``, each acknowledged ``minutes`` after it was opened."""
    now = utcnow()
    for i, m in enumerate(minutes):
        rec = record_escalation(f"past-{level}-{i}", level, [], "sms")
        engine.acknowledge(rec.ref, "staff:pia")
        opened = now - dt.timedelta(hours=1 + i)
        with db.transaction() as s:
            s.execute(update(Escalation).where(Escalation.id == rec.id).values(
                created_at=opened, acknowledged_at=opened + dt.timedelta(minutes=m)))


def test_no_history_gives_no_estimate_but_the_queue_and_the_rota(db_url):
    first = record_escalation("conv-a", "support", ["asked_for_human"], "sms")
    second = record_escalation("conv-b", "support", ["asked_for_human"], "sms")
    with db.transaction() as s:
        est = wait.estimate(s, s.get(Escalation, second.id), STAFFED)
    assert (est.ahead, est.on_call, est.samples, est.median_s) == (1, 2, 0, None)
    assert est.wording == wait.UNKNOWN
    with db.transaction() as s:
        assert wait.estimate(s, s.get(Escalation, first.id), STAFFED).ahead == 0


def test_recent_acknowledgements_of_the_same_level_make_the_estimate(db_url):
    _acknowledged_history("support", [2, 4, 6, 8, 30])  # median 6 minutes
    _acknowledged_history("urgent", [1, 1, 1, 1, 1])  # another level: not counted
    rec = record_escalation("conv-a", "support", ["asked_for_human"], "sms")
    with db.transaction() as s:
        est = wait.estimate(s, s.get(Escalation, rec.id), STAFFED)
    assert (est.samples, est.median_s, est.ahead, est.on_call) == (5, 360.0, 0, 2)
    assert est.wording == wait.ESTIMATE and est.minutes == 6


def test_nobody_on_call_and_an_exhausted_ladder_are_said_plainly(db_url):
    _acknowledged_history("support", [2, 4, 6, 8, 30])
    rec = record_escalation("conv-a", "support", ["asked_for_human"], "sms")
    with db.transaction() as s:
        assert wait.estimate(s, s.get(Escalation, rec.id), EMPTY).wording == wait.NOBODY
        from bot.escalation import audit

        audit.append(s, s.get(Escalation, rec.id), "ladder_exhausted", "system:dispatcher",
                     reason="test", data={})
    with db.transaction() as s:
        assert wait.estimate(s, s.get(Escalation, rec.id), STAFFED).wording == wait.UNREACHED


def test_updates_fall_due_at_the_interval_and_stop_at_the_most(db_url):
    rec = record_escalation("conv-a", "support", ["asked_for_human"], "sms")
    assert wait.due(utcnow(), interval_s=180) == []  # just asked: the first reply said enough
    _age(rec.id, 200)
    [waiting] = wait.due(utcnow(), interval_s=180)
    assert (waiting.escalation_id, waiting.conversation_id, waiting.sent) == (rec.id, "conv-a", 0)

    claimed = wait.claim_update(rec.id, STAFFED, interval_s=180)
    assert claimed is not None and claimed.number == 1 and claimed.ref == rec.ref
    assert claimed.channel == "sms" and "I don't know yet" in claimed.text
    # On the trail: the numbers and the offers, never the text.
    [entry] = _trail(rec.id)
    assert entry["number"] == 1 and entry["wording"] == wait.UNKNOWN
    assert entry["on_call"] == 2 and entry["ahead"] == 0 and entry["offers"] == ["calm"]
    assert "text" not in entry and claimed.text not in str(entry)
    # Not again before the interval, whoever asks.
    assert wait.due(utcnow(), interval_s=180) == []
    assert wait.claim_update(rec.id, STAFFED, interval_s=180) is None
    # With no interval at all, the most updates there will ever be is the limit.
    for n in range(2, 4):
        assert wait.claim_update(rec.id, STAFFED, interval_s=0, max_updates=3).number == n
    assert wait.claim_update(rec.id, STAFFED, interval_s=0, max_updates=3) is None
    assert wait.due(utcnow(), interval_s=0, max_updates=3) == []


def test_a_plan_is_offered_only_to_a_person_who_has_one(db_url):
    rec = record_escalation("conv-a", "support", ["asked_for_human"], "sms")
    claimed = wait.claim_update(rec.id, STAFFED, interval_s=0, has_plan=True)
    assert "PLAN for your plan" in claimed.text and _trail(rec.id)[0]["offers"] == ["calm", "plan"]


def test_old_escalations_are_not_texted_after_an_outage(db_url):
    rec = record_escalation("conv-a", "support", ["asked_for_human"], "sms")
    _age(rec.id, wait.WINDOW_S + 60)
    assert wait.due(utcnow(), interval_s=180) == []


@pytest.mark.parametrize("step", ["take_over", "acknowledge", "resolve"])
def test_nothing_is_claimed_once_a_human_has_it_even_after_the_read(db_url, step):
    """The watcher read the escalation as waiting; staff act before its claim: no update."""
    rec = record_escalation("conv-a", "urgent", ["self_harm"], "sms")
    _age(rec.id, 600)
    [waiting] = wait.due(utcnow(), interval_s=180)
    if step == "take_over":
        engine.take_over(rec.ref, "staff:pia", "Pia")
    elif step == "acknowledge":
        engine.acknowledge(rec.ref, "staff:pia")
    else:
        engine.resolve(rec.ref, "staff:pia", "supported")
    assert wait.claim_update(waiting.escalation_id, STAFFED, interval_s=180) is None
    assert wait.due(utcnow(), interval_s=180) == []
    assert _trail(rec.id) == []


def test_two_duty_services_claim_one_update(db_url):
    rec = record_escalation("conv-a", "support", ["asked_for_human"], "sms")
    _age(rec.id, 600)
    results: list = []
    barrier = threading.Barrier(2)

    def claim() -> None:
        barrier.wait()
        results.append(wait.claim_update(rec.id, STAFFED, interval_s=180))

    threads = [threading.Thread(target=claim, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(r is not None for r in results) == [False, True]
    assert len(_trail(rec.id)) == 1


def test_an_update_that_did_not_go_is_noted_and_the_next_comes_at_the_interval(db_url):
    rec = record_escalation("conv-a", "support", ["asked_for_human"], "sms")
    claimed = wait.claim_update(rec.id, STAFFED, interval_s=0)
    wait.record_unsent(rec.id, claimed.number, "paused")
    assert _trail(rec.id, wait.UNSENT_KIND) == [{"number": 1, "code": "paused"}]
    assert wait.claim_update(rec.id, STAFFED, interval_s=180) is None


# --- the estimate in the first reply (utter_human_requested, slot wait_estimate) ----------


def _human_requested() -> list[dict]:
    domain = Path(__file__).resolve().parents[2] / "domain.yml"
    return yaml.safe_load(domain.read_text())["responses"]["utter_human_requested"]


@pytest.mark.parametrize("est", every_estimate() + [
    wait.WaitEstimate(ahead=99999, on_call=9, samples=50, median_s=0, waited_s=0)],
    ids=lambda e: e.wording)
def test_the_first_reply_with_any_estimate_is_one_sms_and_no_promise(est):
    sentence = wait.first_sentence(est)
    assert len(sentence) <= wait.FIRST_MAX
    [usual] = [v for v in _human_requested() if v.get("condition")]
    [with_estimate] = [v for v in _human_requested() if not v.get("condition")]
    # Rasa picks the usual words while the slot is unset (None), the estimate otherwise.
    assert usual["condition"] == [{"type": "slot", "name": "wait_estimate", "value": None}]
    assert "It may take a few minutes" in usual["text"]
    text = with_estimate["text"].format(wait_estimate=sentence)
    assert encoding_of(text) == GSM7 and len(text) <= 306, (len(text), text)
    for needed in ("999", "116 123", "111, option 2", "I'll tell you when a person has joined"):
        assert needed in text
    assert not any(p in text.lower() for p in PROMISES)
    assert ("estimate, not a promise" in sentence) is (est.wording == wait.ESTIMATE)


def test_first_reply_reads_the_live_queue_and_says_nothing_once_picked_up(db_url, tmp_path):
    from bot.escalation.rota_store import RotaSource

    rota_file = tmp_path / "rota.yml"
    rota_file.write_text(ROTA)
    source = RotaSource(str(rota_file))
    record_escalation("conv-a", "support", ["asked_for_human"], "sms")
    rec = record_escalation("conv-b", "support", ["asked_for_human"], "sms")
    assert wait.first_reply(rec.ref, source) == (
        "I don't know yet how long it may take. Waiting before you: 1. On call now: 2.")
    engine.acknowledge(rec.ref, "staff:pia")
    assert wait.first_reply(rec.ref, source) is None
