"""The person's own plan in the console (docs/plan.md): shown beside the summary only when
they said yes to sharing it, every view on the escalation's audit trail before it is read;
after a no, or a yes taken back with PLAN PRIVATE, nothing of it is shown."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.escalation import engine as escalation_engine
from bot.plan import flow, reading, store
from bot.store import db
from bot.store.models import Escalation

from .conftest import sign_in

PERSON = "sms-plan-person"
WORDS = "Jo stays with me and I go to her flat"


def build(consent: str | None) -> None:
    """A plan made as the person makes it (bot/plan/store.handle), answering the sharing
    question with ``consent`` (None: not answered)."""
    store.handle(PERSON, "PLAN", "sms")
    store.handle(PERSON, "yes", "sms")
    store.handle(PERSON, "I stop sleeping", "sms")
    store.handle(PERSON, "done", "sms")
    if consent is not None:
        store.handle(PERSON, consent, "sms")


def escalate() -> str:
    return escalation_engine.record_escalation(
        PERSON, "urgent", ["self_harm"], channel="sms",
        summary={"risk_level": "urgent", "signals": ["self_harm"]}).ref


def plan_views(ref: str) -> list[tuple[str, str, dict]]:
    with db.transaction() as s:
        esc = s.execute(select(Escalation).where(Escalation.ref == ref)).scalar_one()
        return [(e.actor, e.reason, dict(e.data)) for e in esc.events if e.kind == reading.KIND]


async def test_with_consent_the_plan_is_beside_the_summary_and_every_view_is_audited(
    client, make_staff, db_url
):
    build("yes")
    ref = escalate()
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert page.index("Tell it once") < page.index("Their own plan") < page.index("Actions")
    assert "Warning signs" in page and "I stop sleeping" in page
    assert "116 123" in page and "recorded in the audit trail" in page
    [(actor, why, data)] = plan_views(ref)
    assert actor == "staff:ellen" and why == reading.REASON
    assert "sleeping" not in json.dumps(data) + why  # the trail never holds the words
    await client.get(f"/duty/e/{ref}")
    assert len(plan_views(ref)) == 2  # every view, not the first only


async def test_without_consent_nothing_of_the_plan_is_shown_or_decrypted(
    client, make_staff, db_url, monkeypatch
):
    build("no")
    ref = escalate()
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    opened: list[str] = []
    real = reading.crypto.open_sealed
    monkeypatch.setattr(reading.crypto, "open_sealed", lambda t: (opened.append(t), real(t))[1])
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert "chose to keep it private" in page and "I stop sleeping" not in page
    assert plan_views(ref) == [] and opened == []


async def test_not_asked_yet_is_not_shown(client, make_staff, db_url):
    build(None)
    ref = escalate()
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert "have not said whether staff may see it" in page and "I stop sleeping" not in page


async def test_consent_taken_back_with_a_word_hides_it_at_the_next_view(client, make_staff, db_url):
    build("yes")
    ref = escalate()
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    assert "I stop sleeping" in await (await client.get(f"/duty/e/{ref}")).text()
    outcome = store.handle(PERSON, "PLAN PRIVATE", "sms")
    assert outcome.replies[0].text == flow.SHARE_OFF
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert "I stop sleeping" not in page and "chose to keep it private" in page
    assert len(plan_views(ref)) == 1
    store.handle(PERSON, "plan share", "sms")
    assert "I stop sleeping" in await (await client.get(f"/duty/e/{ref}")).text()


async def test_no_plan_says_so_and_a_deleted_plan_is_gone_from_the_console(client, make_staff, db_url):
    ref = escalate()
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    assert "No plan of their own saved" in await (await client.get(f"/duty/e/{ref}")).text()
    build("yes")
    store.handle(PERSON, "plan delete", "sms")
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert "No plan of their own saved" in page and "I stop sleeping" not in page
