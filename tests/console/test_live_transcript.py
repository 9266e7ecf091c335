"""The live transcript: while a conversation page is open, new messages come from
``/duty/e/{ref}/messages.json`` without a reload; the opening is audited, not every poll;
replies sent from the page's script get JSON back instead of a redirect (a reload)."""

from __future__ import annotations

import re

import pytest

from bot.duty import console_db
from bot.duty.takeover import TakeoverError
from bot.store import db

from .conftest import sign_in
from .test_console import add_rasa_events, ref_of

_AFTER = re.compile(r'id="transcript" data-ref="(\w+)" data-after="(\d+)"')


def viewed(ref: str) -> int:
    return console_db.audit_count(db.get_engine(), ref, "transcript_viewed")


async def open_page(client, ref: str) -> int:
    resp = await client.get(f"/duty/e/{ref}")
    assert resp.status == 200
    page = await resp.text()
    assert '<script src="/static/console.js' in page
    return int(_AFTER.search(page).group(2))


async def test_new_messages_appear_after_the_last_one_shown(client, make_staff, seed, db_url):
    ref = ref_of(seed("urgent"))  # conversation "conv-1"
    add_rasa_events(db_url, "conv-1", [
        ("user", {"text": "my brother said he wants to end it",
                  "parse_data": {"risk": {"level": "urgent"}}}),
        ("bot", {"text": "If he is in danger now, call 999."}),
    ])
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    after = await open_page(client, ref)
    assert after > 0 and viewed(ref) == 1

    resp = await client.get(f"/duty/e/{ref}/messages.json?after={after}")
    assert resp.status == 200
    body = await resp.json()
    assert body["messages"] == [] and body["after"] == after and body["status"] == "open"

    add_rasa_events(db_url, "conv-1", [
        ("user", {"text": "he is at home with me now", "parse_data": {"risk": {"level": "concern"}}}),
        ("action", {"name": "action_listen"}),
        ("bot", {"text": "Hi, I'm Sam", "metadata": {"sender": "staff", "sender_name": "Sam"}}),
    ])
    body = await (await client.get(f"/duty/e/{ref}/messages.json?after={after}")).json()
    assert [(m["who"], m["text"]) for m in body["messages"]] == [
        ("person", "he is at home with me now"), ("staff", "Hi, I'm Sam")]
    assert body["messages"][0]["risk"] == "concern"
    assert body["messages"][1]["staff_name"] == "Sam"
    # Another conversation's message (add_rasa_events adds one each time) never appears.
    assert all("not theirs" not in m["text"] for m in body["messages"])
    cursor = body["after"]
    assert cursor > after
    body = await (await client.get(f"/duty/e/{ref}/messages.json?after={cursor}")).json()
    assert body["messages"] == []
    # The page was opened once; the polls did not add to the audit trail.
    assert viewed(ref) == 1


async def test_a_poll_without_an_opening_records_one(client, make_staff, seed, db_url):
    ref = ref_of(seed("urgent"))
    add_rasa_events(db_url, "conv-1", [("user", {"text": "hello"})])
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    # A script asking for everything from the start is reading the transcript: recorded once.
    body = await (await client.get(f"/duty/e/{ref}/messages.json?after=0")).json()
    assert [m["text"] for m in body["messages"]] == ["hello"]
    assert viewed(ref) == 1
    await client.get(f"/duty/e/{ref}/messages.json?after=0")
    assert viewed(ref) == 1


@pytest.mark.parametrize("role, house", [("sanctuary_volunteer", "harbour_house"), ("admin", None)])
async def test_roles_without_transcripts_get_403(client, make_staff, seed, role, house):
    ref = ref_of(seed("urgent"))
    make_staff("sam", role, house=house)
    await sign_in(client, "sam")
    resp = await client.get(f"/duty/e/{ref}/messages.json?after=0")
    assert resp.status == 403
    assert viewed(ref) == 0


async def test_bad_requests(client, make_staff, seed):
    ref = ref_of(seed("urgent"))
    assert (await client.get(f"/duty/e/{ref}/messages.json?after=0")).status == 401
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    assert (await client.get(f"/duty/e/{ref}/messages.json?after=-1")).status == 400
    assert (await client.get(f"/duty/e/{ref}/messages.json?after=x")).status == 400
    resp = await client.get("/duty/e/EZZZZZ/messages.json?after=0")
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"


async def test_a_reply_sent_by_the_page_script_gets_json_not_a_reload(
    takeover_client, takeover, make_staff, seed
):
    ref = ref_of(seed("urgent", status="active"))
    make_staff("ellen", "peer_worker")
    csrf = await sign_in(takeover_client, "ellen")
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
    resp = await takeover_client.post(f"/duty/e/{ref}/reply", data={"text": "I'm here with you"},
                                      headers=headers, allow_redirects=False)
    assert resp.status == 200
    assert await resp.json() == {"ok": True, "notice": "Reply sent."}
    assert takeover.calls == [("reply", ref, "ellen", "I'm here with you")]

    async def refuse(ref, staff, text):
        raise TakeoverError(f"{ref} is taken over by someone else.")

    takeover.reply = refuse
    resp = await takeover_client.post(f"/duty/e/{ref}/reply", data={"text": "hello"},
                                      headers=headers, allow_redirects=False)
    assert resp.status == 409
    assert await resp.json() == {"ok": False, "notice": f"{ref} is taken over by someone else."}
    # Without the CSRF token the script's POST is refused like any other.
    resp = await takeover_client.post(f"/duty/e/{ref}/reply", data={"text": "hello"},
                                      headers={"Accept": "application/json"}, allow_redirects=False)
    assert resp.status == 403
