"""GET /api/escalations withholds the summary's detail when the person refused sharing."""

from __future__ import annotations

from bot.escalation import engine as escalation_engine

from .conftest import AUTH

FULL = {"risk_level": "urgent", "signals": ["self_harm"], "suggested": ["Samaritans 116 123"],
        "places": ["Bridgwater"], "needs": ["crisis_house"], "audience": "carer", "consent": {}}


def _open(conversation_id: str) -> str:
    return escalation_engine.record_escalation(
        conversation_id, "urgent", ["self_harm"], channel="sms", summary=dict(FULL)).ref


async def test_a_refusal_withholds_the_detail_but_keeps_the_keys_and_the_trail(client):
    refused, agreed, unasked = _open("conv-no"), _open("conv-yes"), _open("conv-none")
    escalation_engine.record_consent(refused, "share_summary", False, "assistant")
    escalation_engine.record_consent(agreed, "share_summary", True, "assistant")

    body = await (await client.get(f"/api/escalations/{refused}", headers=AUTH)).json()
    summary = body["summary"]
    assert summary["withheld"] is True
    assert summary["risk_level"] == "urgent" and summary["signals"] == ["self_harm"]
    assert summary["consent"] == {"share_summary": False}
    assert "NOT given" in summary["sharing"]
    assert (summary["suggested"], summary["places"], summary["needs"], summary["audience"]) == (
        [], [], [], None)
    # The DESIGN.md fields are all there, the trail included.
    assert body["level"] == "urgent" and body["signals"] == ["self_harm"]
    assert [e["kind"] for e in body["events"]] == ["created", "consent_recorded"]

    rows = {r["ref"]: r for r in await (await client.get("/api/escalations", headers=AUTH)).json()}
    assert rows[refused]["summary"] == summary
    for ref in (agreed, unasked):
        shown = rows[ref]["summary"]
        assert "withheld" not in shown
        assert shown["places"] == ["Bridgwater"] and shown["needs"] == ["crisis_house"]
        assert shown["audience"] == "carer" and shown["suggested"] == ["Samaritans 116 123"]
