"""One bed count per sanctuary house: taken when the house accepts a referral (atomically: of
two acceptances of the last bed, one wins and the other is told there is none), given back on
a decline after that or a discharge, and the same count the directory signposts with.
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from bot.directory import beds, loader
from bot.directory.query import find_services
from bot.escalation import coverage, engine, rota, staff_sms
from bot.escalation.engine import record_escalation
from bot.store.db import transaction
from tests.handoff.conftest import VOLUNTEER

HOUSE = "harbour_house"  # the handoff rota's house; Val is its volunteer, on call round the clock


def referred(conversation: str, house: str = HOUSE) -> str:
    rec = record_escalation(conversation, "urgent", ["self_harm"], "rest")
    engine.acknowledge(rec.ref, "staff:pia", "ACK by SMS")
    engine.record_consent(rec.ref, "sanctuary", True, "staff:sam")
    engine.refer(rec.ref, "staff:sam", house)
    return rec.ref


def night():
    return beds.tonight("Europe/London")


def set_beds(n: int, house: str = HOUSE) -> None:
    with transaction() as s:
        beds.set_free(s, house, night(), n, "staff:val")


def free(house: str = HOUSE) -> int | None:
    with transaction() as s:
        return beds.free(s, [house], night()).get(house)


def kinds(ref: str) -> list[str]:
    with transaction() as s:
        return [e.kind for e in engine.load(s, ref, lock=False).events]


def test_two_acceptances_of_the_last_bed_one_wins_the_other_is_told(any_env, monkeypatch):
    first, second = referred("conv-bed-1"), referred("conv-bed-2")
    set_beds(1)
    # Both acceptances have read everything they read before taking the bed, then take it at
    # the same moment: the race a read-then-write count would lose (both "accepted").
    both_ready = threading.Barrier(2, timeout=10)
    real_take = beds.take

    def take_together(*args, **kwargs):
        both_ready.wait()
        return real_take(*args, **kwargs)

    monkeypatch.setattr(beds, "take", take_together)
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda ref: staff_sms.handle_staff_sms(VOLUNTEER, f"ACCEPT {ref}"),
                                (first, second)))
    won = [r for r in replies if r.startswith("Accepted ")]
    told = [r for r in replies if r.startswith("No bed is free at your house tonight")]
    assert len(won) == 1 and len(told) == 1, replies
    assert free() == 0
    accepted = [ref for ref in (first, second) if "referral_accepted" in kinds(ref)]
    assert len(accepted) == 1 and accepted[0] in won[0]
    loser = second if accepted[0] == first else first
    assert loser in told[0]
    with transaction() as s:
        assert engine.load(s, loser, lock=False).status == "referred"  # still theirs to decline


def test_one_referral_accepted_twice_at_once_takes_one_bed(any_env, monkeypatch):
    ref = referred("conv-twice")
    set_beds(2)
    both_ready = threading.Barrier(2)
    real_take = beds.take

    def take_together(*args, **kwargs):
        try:
            # On PostgreSQL the second ACCEPT waits for the escalation's row lock instead.
            both_ready.wait(timeout=1)
        except threading.BrokenBarrierError:
            pass
        return real_take(*args, **kwargs)

    monkeypatch.setattr(beds, "take", take_together)
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _: staff_sms.handle_staff_sms(VOLUNTEER, f"ACCEPT {ref}"),
                                range(2)))
    assert sorted(r.split()[0] for r in replies) == ["Accepted", ref], replies
    assert any("is already accepted" in r for r in replies)
    assert free() == 1
    assert kinds(ref).count("referral_accepted") == 1


def test_a_decline_after_accepting_and_a_discharge_give_the_bed_back(any_env):
    first, second = referred("conv-give-1"), referred("conv-give-2")
    set_beds(2)
    assert staff_sms.handle_staff_sms(VOLUNTEER, f"ACCEPT {first}").startswith("Accepted")
    assert staff_sms.handle_staff_sms(VOLUNTEER, f"ACCEPT {second}").startswith("Accepted")
    assert free() == 0
    # Accepting again takes no second bed.
    assert "already accepted" in staff_sms.handle_staff_sms(VOLUNTEER, f"ACCEPT {first}")
    assert free() == 0

    assert staff_sms.handle_staff_sms(VOLUNTEER, f"DECLINE {first}").startswith("Declined")
    assert free() == 1
    assert staff_sms.handle_staff_sms(VOLUNTEER, f"DISCHARGE {second}").startswith("Discharged")
    assert free() == 2
    assert kinds(second)[-1] == "discharged"
    # Given back once only.
    assert "holds no bed" in staff_sms.handle_staff_sms(VOLUNTEER, f"DISCHARGE {second}")
    assert "holds no bed" in staff_sms.handle_staff_sms(VOLUNTEER, f"DISCHARGE {first}")
    assert free() == 2


def test_a_house_with_no_bed_recorded_cannot_accept(any_env):
    ref = referred("conv-nobed")
    reply = staff_sms.handle_staff_sms(VOLUNTEER, f"ACCEPT {ref}")
    assert reply.startswith("No bed is free at your house tonight") and ref in reply
    assert "referral_accepted" not in kinds(ref) and free() is None


def test_signposting_shows_the_count_referrals_take_from(any_env):
    # The example data: the rota's houses are the directory's, under the same keys.
    assert coverage.house_problems(rota.load()) == []
    with transaction() as s:
        loader.import_directory(loader.DEFAULT_PATH, s)
    set_beds(2, "taunton-haven")

    def beds_shown() -> int | None:
        haven = [m for m in find_services("sanctuary", "Taunton") if m.service.key == "taunton-haven"]
        return haven[0].beds_free

    assert beds_shown() == 2
    ref = referred("conv-taunton", "taunton-haven")
    engine.referral_response(ref, "staff:kemi", "taunton-haven", True)
    assert beds_shown() == 1
    engine.discharge(ref, "staff:kemi", "taunton-haven")
    assert beds_shown() == 2


def test_houses_that_differ_between_the_rota_and_the_directory_are_named(tmp_path):
    text = rota.DEFAULT_PATH.read_text(encoding="utf-8").replace(
        "id: taunton-haven", "id: willow_house")
    path = tmp_path / "rota.yml"
    path.write_text(text)
    assert coverage.house_problems(rota.load(path)) == [
        "rota house 'willow_house' is not in the service directory",
        "directory sanctuary house 'taunton-haven' is not in the rota's sanctuaries",
    ]
