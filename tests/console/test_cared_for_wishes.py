"""What a carer says the person they care for wants shared (docs/carers.md): staff see it as
the carer's report, apart from consent, never as that person's own consent."""

from __future__ import annotations

from bot.escalation import engine as escalation_engine

from .conftest import sign_in

REPORTED = "Reported by the carer, not consent from the person they care for"


def carer_escalation(conversation_id: str) -> str:
    """An urgent escalation for a carer's report, as action_record_escalation writes it."""
    return escalation_engine.record_escalation(
        conversation_id, "urgent", ["suicidal_ideation", "third_party_risk"], channel="socketio",
        summary={"risk_level": "urgent", "signals": ["suicidal_ideation", "third_party_risk"],
                 "suggested": ["999 if in danger"], "places": [], "needs": [],
                 "audience": "carers", "consent": {},
                 "contact": "the carer writing: the risk is to someone they care for"},
    ).ref


async def test_the_carers_report_of_the_persons_wishes_is_shown_apart_from_consent(
    client, make_staff, db_url
):
    ref = carer_escalation("conv-carer-wishes")
    escalation_engine.record_consent(ref, "share_summary", True, "assistant")
    escalation_engine.record_cared_for_wishes(ref, True, "assistant")
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")

    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert REPORTED in page
    assert "told them they are happy for services to share information" in page
    assert "Check with that person before sharing anything about their care." in page
    # The carer's own consent is shown as consent; the wishes are not part of it.
    consent_row = page[page.index("<dt>consent</dt>"):]
    consent_row = consent_row[:consent_row.index("</dd>")]
    assert "share_summary: True" in consent_row and "share_with_carer" not in consent_row
    assert "the risk is to someone they care for" in page
    assert "cared_for_wishes_reported" in page  # on the audit trail


async def test_no_agreement_reported_is_said_plainly(client, make_staff, db_url):
    ref = carer_escalation("conv-carer-none")
    escalation_engine.record_cared_for_wishes(ref, False, "assistant")
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert REPORTED in page
    assert "does not report that the person they care for has agreed" in page


async def test_when_the_carer_refused_sharing_their_report_is_withheld_too(
    client, make_staff, db_url
):
    ref = carer_escalation("conv-carer-refused")
    escalation_engine.record_cared_for_wishes(ref, True, "assistant")
    escalation_engine.record_consent(ref, "share_summary", False, "assistant")
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert REPORTED not in page and "happy for services to share" not in page
    assert "third_party_risk" in page  # what safety needs stays


async def test_an_escalation_without_a_carers_report_shows_no_such_note(client, make_staff, db_url):
    ref = escalation_engine.record_escalation("conv-plain", "urgent", ["self_harm"]).ref
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    assert REPORTED not in await (await client.get(f"/duty/e/{ref}")).text()
