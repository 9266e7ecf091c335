"""The block list in the console: a duty manager blocks a sender from their conversation page
with a reason and a duration, sees every block on /duty/blocks and lifts one; everyone else
gets 403; every block and lift is on the escalation's audit trail (and in the API); no page
shows a conversation id or a phone number."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.escalation import audit, blocks
from bot.store import db
from bot.store.models import Escalation

from .conftest import AUTH, sign_in


def ref_of(escalation_id: int) -> str:
    with db.transaction() as s:
        return s.get(Escalation, escalation_id).ref


def trail(ref: str) -> list[tuple]:
    with db.transaction() as s:
        esc = s.execute(select(Escalation).where(Escalation.ref == ref)).scalar_one()
        return [(e.kind, e.actor, e.reason, dict(e.data)) for e in esc.events]


def current(url: str) -> dict:
    return blocks.current_blocks(db.get_engine(url))


async def test_a_duty_manager_blocks_a_sender_with_a_reason_and_lifts_it(client, make_staff,
                                                                          seed, db_url):
    ref = ref_of(seed("support"))
    make_staff("mo", "duty_manager")
    csrf = await sign_in(client, "mo")
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert 'id="block-form"' in page and "Block list" in page  # nav link and section

    resp = await client.post(f"/duty/e/{ref}/block", allow_redirects=False, data={
        "csrf_token": csrf, "reason": "repeated abusive messages to staff", "hours": "72"})
    assert resp.status == 303
    assert resp.headers["Location"] == f"/duty/e/{ref}?notice=sender_blocked#block-h"
    page = await (await client.get(resp.headers["Location"])).text()
    assert "Sender blocked. Risk messages from them still reach staff." in page
    assert 'id="sender-blocked"' in page and "repeated abusive messages to staff" in page
    assert 'id="block-form"' not in page
    assert list(current(db_url)) == ["conv-1"]
    [(kind, actor, reason, data)] = [t for t in trail(ref) if t[0] == "sender_blocked"]
    assert (actor, reason, data["hours"]) == ("staff:mo", "repeated abusive messages to staff", 72)

    listing = await (await client.get("/duty/blocks")).text()
    assert f'href="/duty/e/{ref}"' in listing and "repeated abusive messages to staff" in listing
    assert "conv-1" not in listing and "conv-1" not in page
    block_id = re.search(r'action="/duty/blocks/(\d+)/unblock"', listing).group(1)

    resp = await client.post(f"/duty/blocks/{block_id}/unblock", allow_redirects=False,
                             data={"csrf_token": csrf})
    assert resp.status == 303 and resp.headers["Location"] == "/duty/blocks?notice=sender_unblocked"
    listing = await (await client.get(resp.headers["Location"])).text()
    assert "Block lifted." in listing and 'id="no-blocks"' in listing
    assert "lifted" in listing  # under "Recently ended"
    assert current(db_url) == {}
    assert [t[:2] for t in trail(ref) if t[0] == "sender_unblocked"] == [("sender_unblocked", "staff:mo")]
    with db.transaction() as s:
        assert audit.verify_all(s) is None
    # The API shows the same trail.
    body = await (await client.get(f"/api/escalations/{ref}", headers=AUTH)).json()
    kinds = [e["kind"] for e in body["events"]]
    assert kinds.index("sender_blocked") < kinds.index("sender_unblocked")


async def test_lifting_from_the_conversation_page_returns_there(client, make_staff, seed, db_url):
    ref = ref_of(seed("support"))
    make_staff("mo", "duty_manager")
    csrf = await sign_in(client, "mo")
    block_id = blocks.block(db.get_engine(db_url), ref, "staff:mo", "abusive", 4)
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert f'action="/duty/blocks/{block_id}/unblock"' in page
    resp = await client.post(f"/duty/blocks/{block_id}/unblock", allow_redirects=False,
                             data={"csrf_token": csrf, "back": "conversation"})
    assert resp.headers["Location"] == f"/duty/e/{ref}?notice=sender_unblocked#block-h"
    again = await client.post(f"/duty/blocks/{block_id}/unblock", allow_redirects=False,
                              data={"csrf_token": csrf, "back": "conversation"})
    assert again.headers["Location"] == "/duty/blocks?notice=not_blocked"


@pytest.mark.parametrize("form,notice", [
    ({"reason": "", "hours": "24"}, "Give a reason for the block."),
    ({"hours": "24"}, "Give a reason for the block."),
    ({"reason": "x" * 501, "hours": "24"}, "Keep the reason to 500 characters."),
    ({"reason": "abusive", "hours": "100000"}, "Choose how long the block lasts from the list."),
    ({"reason": "abusive"}, "Choose how long the block lasts from the list."),
])
async def test_a_block_needs_a_reason_and_a_listed_duration(client, make_staff, seed, db_url,
                                                            form, notice):
    ref = ref_of(seed("support"))
    make_staff("mo", "duty_manager")
    csrf = await sign_in(client, "mo")
    resp = await client.post(f"/duty/e/{ref}/block", data={"csrf_token": csrf, **form})
    assert resp.status == 200 and notice in await resp.text()
    assert current(db_url) == {}
    assert [t for t in trail(ref) if t[0] == "sender_blocked"] == []


async def test_blocking_a_blocked_sender_says_so(client, make_staff, seed, db_url):
    ref = ref_of(seed("support"))
    make_staff("mo", "duty_manager")
    csrf = await sign_in(client, "mo")
    for _ in range(2):
        resp = await client.post(f"/duty/e/{ref}/block",
                                 data={"csrf_token": csrf, "reason": "abusive", "hours": "4"})
    assert "This sender is blocked already" in await resp.text()
    assert len([t for t in trail(ref) if t[0] == "sender_blocked"]) == 1


@pytest.mark.parametrize("role,house", [("peer_worker", None), ("admin", None),
                                        ("sanctuary_volunteer", "harbour_house")])
async def test_only_duty_managers_block_or_lift(client, make_staff, seed, db_url, role, house):
    ref = ref_of(seed("support"))
    block_id = blocks.block(db.get_engine(db_url), ref, "staff:mo", "abusive", 4)
    make_staff("staffer", role, house=house)
    csrf = await sign_in(client, "staffer")
    for method, path, data in [
        ("POST", f"/duty/e/{ref}/block", {"reason": "abusive", "hours": "24"}),
        ("GET", "/duty/blocks", None),
        ("POST", f"/duty/blocks/{block_id}/unblock", {}),
    ]:
        resp = await client.request(method, path, allow_redirects=False,
                                    data=None if data is None else {"csrf_token": csrf, **data})
        assert resp.status == 403, (role, method, path)
    assert list(current(db_url)) == ["conv-1"]
    assert [t[0] for t in trail(ref)].count("sender_unblocked") == 0
    if role == "peer_worker":
        # Who reads the transcript sees that the sender is blocked, without the buttons.
        page = await (await client.get(f"/duty/e/{ref}")).text()
        assert 'id="sender-blocked"' in page
        assert "/unblock" not in page and 'id="block-form"' not in page
        assert 'href="/duty/blocks"' not in page
