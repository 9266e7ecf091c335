"""A person's NO to sharing (issue #5, consent) holds in the console.

Declined: a notice first, the summary cut to what safety needs, and what they said before the
refusal held back behind "Read what they said anyway" (a reason, CSRF, an audit entry). What
comes after the refusal, and everything once a human took over, stays visible, on the page
and in the live transcript's JSON.
"""

from __future__ import annotations

import json
import re
import time

from sqlalchemy import select

from bot.duty import console_db, transcripts
from bot.escalation import engine as escalation_engine
from bot.store import db
from bot.store.models import Escalation

from .conftest import sign_in

NOTICE = "They asked the assistant not to pass on what they said. Ask them what they'd like to share."
BEFORE = "I am in Bridgwater and my dad hurts me"
AFTER = "can someone just talk to me"
_AFTER_ATTR = re.compile(r'id="transcript" data-ref="(\w+)" data-after="(\d+)"')


def open_escalation(conversation_id: str = "conv-consent") -> str:
    """An urgent escalation with a full "tell it once" summary, as the assistant writes it."""
    rec = escalation_engine.record_escalation(
        conversation_id, "urgent", ["self_harm"], channel="sms",
        summary={"risk_level": "urgent", "signals": ["self_harm"],
                 "suggested": ["Samaritans 116 123"], "places": ["Bridgwater"],
                 "needs": ["crisis_house"], "audience": "carer", "consent": {}},
    )
    return rec.ref


def add_message(conversation_id: str, text: str, offset_s: float, who: str = "user",
                risk: str | None = None, meta: dict | None = None) -> None:
    """A tracker row stored ``offset_s`` seconds from now (negative: before now)."""
    data: dict = {"text": text}
    if risk:
        data["parse_data"] = {"risk": {"level": risk}}
    if meta:
        data["metadata"] = meta
    engine = db.get_engine()
    transcripts.RASA_EVENTS.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(transcripts.RASA_EVENTS.insert().values(
            sender_id=conversation_id, type_name=who, timestamp=time.time() + offset_s,
            data=json.dumps(data)))


def refuse(ref: str) -> None:
    escalation_engine.record_consent(ref, "share_summary", False, "assistant")


def trail(ref: str) -> list[tuple[str, str, str, dict]]:
    with db.transaction() as s:
        esc = s.execute(select(Escalation).where(Escalation.ref == ref)).scalar_one()
        return [(e.kind, e.actor, e.reason, dict(e.data)) for e in esc.events]


def overrides(ref: str) -> list[tuple[str, str, str, dict]]:
    return [e for e in trail(ref) if e[0] == console_db.OVERRIDE_KIND]


async def test_a_refusal_shows_the_notice_and_holds_back_details_and_earlier_messages(
    client, make_staff, db_url
):
    ref = open_escalation()
    add_message("conv-consent", BEFORE, -60, risk="urgent")
    add_message("conv-consent", "May I pass on what you've told me?", -59, who="bot")
    refuse(ref)
    add_message("conv-consent", AFTER, 5, risk="concern")
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")

    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert NOTICE in page
    assert page.index(NOTICE) < page.index("Tell it once")
    # What safety needs stays: the level and the signals, and the answer itself.
    assert "self_harm" in page and "consent NOT given" in page
    for detail in ("Bridgwater", "crisis_house", "carer", "Samaritans 116 123"):
        assert detail not in page, detail
    assert "withheld at their request" in page
    # Before the refusal: held back, with the risk the guard read; after it: shown.
    assert BEFORE not in page and "pass on what you" not in page
    assert AFTER in page
    assert "2 earlier messages held back" in page
    assert "read it as urgent" not in page and "read at least one of them as urgent" in page
    assert 'action="/duty/e/' + ref + '/read-anyway"' in page
    # The live transcript starts after every row read, held back or not.
    assert int(_AFTER_ATTR.search(page).group(2)) > 0


async def test_reading_anyway_needs_csrf_and_a_reason_and_is_audited_first(
    client, make_staff, db_url
):
    ref = open_escalation()
    add_message("conv-consent", BEFORE, -60)
    refuse(ref)
    make_staff("ellen", "peer_worker")
    make_staff("sam", "peer_worker")
    csrf = await sign_in(client, "ellen")

    resp = await client.post(f"/duty/e/{ref}/read-anyway", data={"reason": "risk to life"},
                             allow_redirects=False)
    assert resp.status == 403
    resp = await client.post(f"/duty/e/{ref}/read-anyway",
                             data={"reason": "   ", "csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].endswith("?notice=reason_needed")
    assert overrides(ref) == []
    assert BEFORE not in await (await client.get(f"/duty/e/{ref}")).text()

    resp = await client.post(f"/duty/e/{ref}/read-anyway",
                             data={"reason": "risk to life", "csrf_token": csrf},
                             allow_redirects=False)
    assert resp.status == 303
    kind, actor, reason, data = overrides(ref)[0]
    assert (actor, reason) == ("staff:ellen", "risk to life")
    assert BEFORE not in json.dumps(data)
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert BEFORE in page and "held back" not in page
    assert "on the audit trail" in page

    # Another member of staff has given no reason: still held back for them.
    client.session.cookie_jar.clear()
    await sign_in(client, "sam")
    assert BEFORE not in await (await client.get(f"/duty/e/{ref}")).text()


async def test_live_transcript_json_does_not_leak_what_is_held_back(client, make_staff, db_url):
    ref = open_escalation()
    add_message("conv-consent", BEFORE, -60)
    refuse(ref)
    add_message("conv-consent", AFTER, 5)
    make_staff("ellen", "peer_worker")
    csrf = await sign_in(client, "ellen")

    body = await (await client.get(f"/duty/e/{ref}/messages.json?after=0")).json()
    assert [m["text"] for m in body["messages"]] == [AFTER]
    assert body["after"] > 0

    await client.post(f"/duty/e/{ref}/read-anyway",
                      data={"reason": "risk to life", "csrf_token": csrf})
    body = await (await client.get(f"/duty/e/{ref}/messages.json?after=0")).json()
    assert [m["text"] for m in body["messages"]] == [BEFORE, AFTER]


async def test_everything_after_a_take_over_is_shown(client, make_staff, db_url):
    ref = open_escalation()
    add_message("conv-consent", BEFORE, -60)
    escalation_engine.take_over(ref, "staff:ellen", "Ellen")
    add_message("conv-consent", "Hi, I'm Ellen", 1, who="bot",
                meta={"sender": "staff", "sender_name": "Ellen"})
    add_message("conv-consent", "I don't want you to tell anyone", 2)
    # The refusal is recorded after the take-over (staff asked): the live conversation
    # between them stays visible, what came before the take-over is held back.
    time.sleep(0.01)
    escalation_engine.record_consent(ref, "share_summary", False, "staff:ellen")
    add_message("conv-consent", AFTER, 5)
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")

    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert NOTICE in page
    assert BEFORE not in page and "1 earlier message held back" in page
    for text in ("Hi, I&#39;m Ellen", "I don&#39;t want you to tell anyone", AFTER):
        assert text in page, text
    body = await (await client.get(f"/duty/e/{ref}/messages.json?after=0")).json()
    assert BEFORE not in [m["text"] for m in body["messages"]]
    assert len(body["messages"]) == 3


async def test_no_answer_yet_or_yes_shows_everything(client, make_staff, db_url):
    no_answer = open_escalation("conv-a")
    add_message("conv-a", BEFORE, -60)
    said_yes = open_escalation("conv-b")
    add_message("conv-b", BEFORE, -60)
    escalation_engine.record_consent(said_yes, "share_summary", True, "assistant")
    make_staff("ellen", "peer_worker")
    csrf = await sign_in(client, "ellen")
    for ref in (no_answer, said_yes):
        page = await (await client.get(f"/duty/e/{ref}")).text()
        assert NOTICE not in page and "held back" not in page
        assert BEFORE in page and "Bridgwater" in page and "crisis_house" in page
    # Nothing to override without a refusal: refused, and nothing written.
    resp = await client.post(f"/duty/e/{no_answer}/read-anyway",
                             data={"reason": "curious", "csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].endswith("?notice=not_refused")
    assert overrides(no_answer) == []
