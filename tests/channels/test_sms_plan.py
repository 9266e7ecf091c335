"""A person's own plan over real SMS (docs/plan.md): texted in through the signed webhook,
answered by the channel's plan turn without the dialogue hearing a word of it, and sent back
with PLAN through the outbox, in as many texts as it takes."""

from __future__ import annotations

from bot.plan import flow, sections, store
from tests.channels.conftest import PERSON, StubAgent, eventually, person_id


async def test_a_plan_made_and_got_back_by_text(twilio_env, fake_twilio, servers):
    agent = StubAgent()
    server = await servers(agent)

    async def text(body: str, replies: int) -> list[str]:
        before = len(fake_twilio.created)
        status, _, _ = await server.sms(body)
        assert status == 200
        await eventually(lambda: len(fake_twilio.created) >= before + replies,
                         what=f"{replies} text(s) answering {body[:20]!r}")
        return [m["Body"] for m in fake_twilio.created[before:]]

    assert await text("PLAN", 1) == [flow.OFFER]
    assert await text("Yes", 2) == [flow.INTRO, sections.question(0)]
    long_words = "I go quiet and stop eating. " * 20  # 560 characters: several segments
    assert (await text(long_words, 1))[0].endswith(sections.question(1))
    assert await text("done", 1) == [flow.ASK_CONSENT]
    assert await text("no", 1) == [flow.CONSENT_NO]

    before = len(fake_twilio.created)
    await text("plan", 1)

    def sent_back() -> str:
        return "".join(m["Body"] for m in fake_twilio.created[before:])

    await eventually(lambda: sent_back().endswith(flow.PLAN_FOOT), what="the whole plan")
    plan = sent_back()
    assert plan.startswith(flow.SMS_HEAD)
    assert "I go quiet and stop eating." in plan and "116 123" in plan
    assert all(m["To"] == PERSON for m in fake_twilio.created)
    # The dialogue (Rasa) never heard any of it: not in the tracker, not in the transcript.
    assert agent.messages == []
    assert store.consent(person_id()) is False
