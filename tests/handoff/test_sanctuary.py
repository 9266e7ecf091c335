"""Sanctuary referral: consent, a house on duty with a free bed, its answer, the person told."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest
from sqlalchemy import select

from bot import settings as settings_module
from bot.sms.pseudonym import pseudonym
from bot.duty import handoff as handoff_module
from bot.duty.app import create_app
from bot.duty.console_db import tonight
from bot.duty.handoff import RelayTakeover
from bot.store.models.duty import SanctuaryBeds
from bot.duty.staff import Principal
from bot.duty.takeover import TakeoverError
from bot.escalation import dispatch, engine, staff_sms
from bot.escalation import rota_store
from bot.escalation.__main__ import verify
from bot.escalation.engine import record_escalation
from bot.store.db import get_engine, transaction
from bot.store.models import Escalation, utcnow
from tests.handoff.conftest import PEER, PERSON, ROTA, VOLUNTEER, eventually

MANAGER_PRINCIPAL = Principal(2, "sam", "Sam", "duty_manager", None, "csrf",
                              dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))


def free_beds(n: int) -> None:
    with transaction() as s:
        s.add(SanctuaryBeds(house="harbour_house", night=tonight("Europe/London"), free_beds=n,
                            updated_by="staff:val", updated_at=utcnow()))


def escalation(ref: str) -> Escalation:
    with transaction() as s:
        esc = s.execute(select(Escalation).where(Escalation.ref == ref)).scalar_one()
        esc.kinds = [e.kind for e in esc.events]
        return esc


@pytest.fixture
def person_on_sms(pg_env):
    with transaction() as s:
        dispatch.register_contact(s, PERSON)
    rec = record_escalation(pseudonym(PERSON), "urgent", ["self_harm"], "sms")
    staff_sms.handle_staff_sms(PEER, f"ACK {rec.ref}")
    return rec


async def test_referral_needs_consent_and_a_free_bed(person_on_sms):
    takeover = RelayTakeover(settings_module.settings())
    await takeover.refresh_rota()  # create_app's context does this before the first request
    assert dict(takeover.referral_houses()) == {"harbour_house": "Harbour House"}
    ref = person_on_sms.ref
    with pytest.raises(TakeoverError, match="not consented"):
        free_beds(1)
        await takeover.refer(ref, MANAGER_PRINCIPAL, "harbour_house")
    engine.record_consent(ref, "sanctuary", True, "staff:sam")
    with transaction() as s:
        s.execute(SanctuaryBeds.__table__.update().values(free_beds=0))
    with pytest.raises(TakeoverError, match="no free bed"):
        await takeover.refer(ref, MANAGER_PRINCIPAL, "harbour_house")
    assert escalation(ref).status == "acknowledged"


@pytest.mark.parametrize("answer", ["ACCEPT", "DECLINE"])
async def test_house_answers_by_sms_and_the_person_is_told(
    person_on_sms, fake_twilio, handoff, answer
):
    ref = person_on_sms.ref
    await handoff()
    free_beds(2)
    engine.record_consent(ref, "sanctuary", True, "staff:sam")
    await RelayTakeover(settings_module.settings()).refer(ref, MANAGER_PRINCIPAL, "harbour_house")
    alert = (await eventually(lambda: fake_twilio.to(VOLUNTEER), what="referral alert"))[0]
    assert ref in alert["Body"] and "/duty/sanctuary" in alert["Body"]
    assert escalation(ref).status == "referred"

    reply = await asyncio.to_thread(staff_sms.handle_and_reply, VOLUNTEER, f"{answer.lower()} {ref}")
    assert reply.startswith(f"{'Accepted' if answer == 'ACCEPT' else 'Declined'} {ref}")
    told = (await eventually(lambda: fake_twilio.to(PERSON), what="person told"))[0]["Body"]
    esc = escalation(ref)
    if answer == "ACCEPT":
        assert "Harbour House can offer you a place tonight" in told
        assert esc.status == "referred"
    else:
        assert "can't offer a place tonight" in told
        assert esc.status == "acknowledged"
    assert esc.kinds[-4:] == [
        "referred", "referral_alerted",
        "referral_accepted" if answer == "ACCEPT" else "referral_declined", "person_told",
    ]
    assert verify().ok


def test_only_the_house_referred_to_can_answer(person_on_sms):
    ref = person_on_sms.ref
    assert "Only sanctuary house volunteers" in staff_sms.handle_staff_sms(PEER, f"ACCEPT {ref}")
    assert "not referred to your house" in staff_sms.handle_staff_sms(VOLUNTEER, f"ACCEPT {ref}")


async def test_houses_are_offered_without_reading_the_rota_on_the_event_loop(
    pg_env, monkeypatch, aiohttp_client
):
    on_loop: list[bool] = []
    # Every read of the rota asks the database for its latest version number first.
    real_latest = rota_store.latest_number

    def spy(session):
        on_loop.append(threading.current_thread() is threading.main_thread())
        return real_latest(session)

    monkeypatch.setattr(rota_store, "latest_number", spy)
    monkeypatch.setattr(handoff_module, "ROTA_REFRESH_S", 0.0)
    cfg = settings_module.settings()
    takeover = RelayTakeover(cfg)
    await aiohttp_client(create_app(cfg, takeover=takeover))  # reads the rota before serving
    # Read by the takeover engine and by the rota gap check (bot/duty/rota_gaps.py): off the loop.
    assert on_loop and not any(on_loop)
    assert dict(takeover.referral_houses()) == {"harbour_house": "Harbour House"}
    # Staff rename the house (a new version of the rota, here imported): the next pages pick it
    # up, read off the loop.
    rota_store.import_text(get_engine(), ROTA.replace("name: Harbour House", "name: Harbour House (Hove)"),
                           "renamed.yml", "cli:ops")
    houses = await eventually(
        lambda: dict(takeover.referral_houses()).get("harbour_house") == "Harbour House (Hove)",
        what="the renamed house")
    assert houses and len(on_loop) >= 2 and not any(on_loop)
