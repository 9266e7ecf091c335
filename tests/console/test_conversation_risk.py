"""The console's conversation view shows the conversation's memory of risk."""

from __future__ import annotations

from .conftest import sign_in
from .test_console import add_rasa_events, ref_of


def slot(name, value):
    return ("slot", {"event": "slot", "name": name, "value": value})


async def test_the_conversation_view_shows_an_emergency_still_on(client, make_staff, seed, db_url):
    ref = ref_of(seed("urgent"))  # conversation conv-1
    add_rasa_events(db_url, "conv-1", [
        ("user", {"text": "i want to die", "parse_data": {"risk": {"level": "urgent"}}}),
        slot("risk_level", "urgent"),
        ("user", {"text": "i bought some rope", "parse_data": {"risk": {"level": "imminent"}}}),
        slot("risk_level", "imminent"),
        slot("risk_emergency", True),
        slot("place", "Bridgwater"),
    ])
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert '<dd id="conversation-risk">imminent: emergency still on' in page


async def test_a_stood_down_emergency_still_shows_that_imminent_risk_was_shown(
        client, make_staff, seed, db_url):
    ref = ref_of(seed("imminent"))
    add_rasa_events(db_url, "conv-1", [
        slot("risk_level", "imminent"), slot("risk_emergency", True),
        slot("risk_emergency", False),
    ])
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert '<dd id="conversation-risk">imminent: stood down</dd>' in page


async def test_no_memory_yet_shows_nothing(client, make_staff, seed):
    ref = ref_of(seed("support"))
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert "conversation-risk" not in page
