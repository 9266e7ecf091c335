"""The console's behaviour: queue order, audited transcript views, acknowledge and resolve,
takeover hooks, sanctuary referrals and beds, metrics, accounts."""

from __future__ import annotations

import io
import json
import re
import time

from sqlalchemy import select

from bot.duty import accounts, console_db, transcripts, twofactor
from bot.duty.app import create_app
from bot.duty.__main__ import main as duty_main
from bot.store.models.duty import SanctuaryBeds, Staff
from bot.escalation import audit
from bot.store import db
from bot.store.models import Escalation, EscalationEvent

from .conftest import AUTH, login_csrf, make_settings, sign_in


def ref_of(escalation_id: int) -> str:
    with db.transaction() as s:
        return s.get(Escalation, escalation_id).ref


def trail(ref: str) -> list[EscalationEvent]:
    with db.transaction() as s:
        esc = s.execute(select(Escalation).where(Escalation.ref == ref)).scalar_one()
        return [(e.kind, e.actor, e.reason, dict(e.data)) for e in esc.events]


async def test_queue_is_ordered_by_risk_then_wait_and_shows_channel_and_status(client, make_staff, seed):
    old_support = seed("support", age_s=3000)
    new_imminent = seed("imminent", age_s=10)
    urgent_short = seed("urgent", age_s=60)
    urgent_long = seed("urgent", age_s=600, status="alerted")
    seed("urgent", age_s=9000, status="resolved")
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    rows = (await (await client.get("/duty/queue.json")).json())["escalations"]
    assert [r["ref"] for r in rows] == [
        ref_of(i) for i in (new_imminent, urgent_long, urgent_short, old_support)
    ]
    assert rows[1]["status"] == "alerted" and rows[1]["channel"] == "sms"
    # The queue carries no summary, signals or conversation id.
    assert set(rows[0]) == {"ref", "level", "status", "channel", "created_at", "acknowledged_at",
                            "waiting_seconds"}
    page = await (await client.get("/duty")).text()
    assert page.index(ref_of(new_imminent)) < page.index(ref_of(old_support))


def add_rasa_events(db_url: str, sender_id: str, rows: list[tuple[str, dict]]) -> None:
    engine = db.get_engine(db_url)
    transcripts.RASA_EVENTS.metadata.create_all(engine)
    now = time.time()
    with engine.begin() as conn:
        for i, (kind, data) in enumerate(rows):
            conn.execute(transcripts.RASA_EVENTS.insert().values(
                sender_id=sender_id, type_name=kind, timestamp=now + i, data=json.dumps(data)))
        conn.execute(transcripts.RASA_EVENTS.insert().values(
            sender_id="someone-else", type_name="user", timestamp=now,
            data=json.dumps({"text": "not theirs"})))


async def test_opening_a_transcript_is_audited_every_time(client, make_staff, seed, db_url):
    esc_id = seed("urgent", signals=["self_harm"])
    ref = ref_of(esc_id)
    add_rasa_events(db_url, "conv-1", [
        ("user", {"text": "my son <b>said</b> he wants to end it",
                  "parse_data": {"risk": {"level": "urgent", "signals": ["suicidal_ideation"]}}}),
        ("action", {"name": "utter_emergency"}),
        ("bot", {"text": "Call 999 if he is in danger now."}),
        ("bot", {"text": "Hi, I'm Sam", "metadata": {"sender": "staff", "sender_name": "Sam"}}),
    ])
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    for _ in range(2):
        resp = await client.get(f"/duty/e/{ref.lower()}")
        assert resp.status == 200
    page = await resp.text()
    assert "my son &lt;b&gt;said&lt;/b&gt; he wants to end it" in page  # escaped, never HTML
    assert "Call 999 if he is in danger now." in page and "Sam (staff)" in page
    assert "not theirs" not in page
    assert "Samaritans 116 123" in page  # the "tell it once" summary
    views = [t for t in trail(ref) if t[0] == "transcript_viewed"]
    assert len(views) == 2 and {v[1] for v in views} == {"staff:ellen"}
    with db.transaction() as s:
        assert audit.verify_all(s) is None


async def test_transcript_page_without_a_tracker_store_still_opens(client, make_staff, seed):
    ref = ref_of(seed("support"))
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    resp = await client.get(f"/duty/e/{ref}")
    assert resp.status == 200 and "No conversations are stored yet" in await resp.text()
    assert (await client.get("/duty/e/ENOPE")).status == 404


async def test_resolving_a_conversation_a_person_holds_is_refused(client, make_staff, seed):
    # Resolving it would leave the assistant paused with nobody holding the conversation.
    ref = ref_of(seed("urgent", status="active"))
    make_staff("ellen", "duty_manager")
    csrf = await sign_in(client, "ellen")
    resp = await client.post(f"/duty/e/{ref}/resolve", data={"csrf_token": csrf, "outcome": "supported"})
    assert "Hand " + ref + " back to the assistant before resolving it" in await resp.text()
    with db.transaction() as s:
        assert s.execute(select(Escalation.status).where(Escalation.ref == ref)).scalar_one() == "active"


async def test_acknowledge_and_resolve_write_the_audit_trail(client, make_staff, seed):
    ref = ref_of(seed("imminent", status="alerted"))
    make_staff("ellen", "duty_manager")
    csrf = await sign_in(client, "ellen")
    resp = await client.post(f"/duty/e/{ref}/acknowledge", data={"csrf_token": csrf},
                             allow_redirects=False)
    assert resp.status == 303 and "acknowledged" in resp.headers["Location"]
    again = await client.post(f"/duty/e/{ref}/acknowledge", data={"csrf_token": csrf})
    # A fixed notice (issue 23: no text from the URL); the page shows the status itself.
    assert "That step is not possible now" in await again.text()
    bad = await client.post(f"/duty/e/{ref}/resolve", data={"csrf_token": csrf, "outcome": "made-up"})
    assert "Choose an outcome" in await bad.text()
    await client.post(f"/duty/e/{ref}/resolve", data={"csrf_token": csrf, "outcome": "signposted"})
    with db.transaction() as s:
        esc = s.execute(select(Escalation).where(Escalation.ref == ref)).scalar_one()
        assert esc.status == "resolved"
        assert esc.acknowledged_at is not None and esc.resolved_at is not None
    kinds = [(k, a, d) for k, a, _, d in trail(ref) if k in ("acknowledged", "resolved")]
    assert kinds == [
        ("acknowledged", "staff:ellen", {"from": "alerted", "alerts_cancelled": 1}),
        ("resolved", "staff:ellen", {"outcome": "signposted", "from": "acknowledged"}),
    ]
    with db.transaction() as s:
        assert audit.verify_all(s) is None
    # The API shows the same trail.
    body = await (await client.get(f"/api/escalations/{ref}", headers=AUTH)).json()
    kinds = [e["kind"] for e in body["events"] if e["kind"] != "transcript_viewed"]
    assert kinds[-2:] == ["acknowledged", "resolved"]


async def test_takeover_buttons_only_with_an_engine(client, takeover_client, takeover, make_staff, seed):
    ref = ref_of(seed("urgent"))
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    page = await (await client.get(f"/duty/e/{ref}")).text()
    assert "Take over" not in page and "Refer to a sanctuary house" not in page
    csrf = await sign_in(takeover_client, "ellen")
    page = await (await takeover_client.get(f"/duty/e/{ref}")).text()
    assert "Take over" in page and "Harbour House" in page
    for path, data in [("takeover", {}), ("reply", {"text": "Hi, I'm Ellen"}), ("handback", {}),
                       ("refer", {"house": "harbour_house"}), ("refer", {"house": "nowhere"}),
                       ("reply", {"text": ""})]:
        resp = await takeover_client.post(f"/duty/e/{ref}/{path}", data={"csrf_token": csrf, **data},
                                          allow_redirects=False)
        assert resp.status == 303
    assert takeover.calls == [
        ("take_over", ref, "ellen"), ("reply", ref, "ellen", "Hi, I'm Ellen"),
        ("hand_back", ref, "ellen"), ("refer", ref, "ellen", "harbour_house"),
    ]


def refer(esc_id: int, house: str) -> None:
    with db.transaction() as s:
        esc = s.get(Escalation, esc_id)
        esc.status = "referred"
        audit.append(s, esc, "referred", "staff:ellen", reason="referred", data={"house": house})


async def test_volunteers_see_only_their_house_and_set_its_beds(client, make_staff, seed, db_url):
    mine, theirs = seed("urgent"), seed("support")
    refer(mine, "harbour_house")
    refer(theirs, "other_house")
    make_staff("vol", "sanctuary_volunteer", house="harbour_house")
    csrf = await sign_in(client, "vol")
    page = await (await client.get("/duty/sanctuary")).text()
    assert ref_of(mine) in page and ref_of(theirs) not in page
    resp = await client.post("/duty/sanctuary/beds", data={"csrf_token": csrf, "free_beds": "2"},
                             allow_redirects=False)
    assert resp.status == 303
    resp = await client.post("/duty/sanctuary/beds",
                             data={"csrf_token": csrf, "house": "other_house", "free_beds": "9"})
    assert resp.status == 403
    with db.transaction() as s:
        rows = s.execute(select(SanctuaryBeds)).scalars().all()
        assert [(r.house, r.free_beds, r.updated_by) for r in rows] == [("harbour_house", 2, "staff:vol")]
    # A duty manager sees every house's referrals.
    make_staff("boss", "duty_manager")
    client.session.cookie_jar.clear()
    await sign_in(client, "boss")
    page = await (await client.get("/duty/sanctuary")).text()
    assert ref_of(mine) in page and ref_of(theirs) in page


async def test_metrics(client, seed, db_url):
    seed("urgent", status="acknowledged", ack_after_s=45)
    seed("imminent")
    # Turn latency counts from this process's first scrape on (tests/console/test_metrics.py).
    assert (await client.get("/metrics", headers=AUTH)).status == 200
    add_rasa_events(db_url, "conv-x", [("user", {"text": "hi"}), ("bot", {"text": "hello"})])
    text = await (await client.get("/metrics", headers=AUTH)).text()
    assert 'line_escalations{level="urgent",status="acknowledged"} 1.0' in text
    assert 'line_escalations{level="imminent",status="open"} 1.0' in text
    assert 'line_escalation_ack_seconds_bucket{le="60.0"} 1.0' in text
    assert 'line_escalation_ack_seconds_bucket{le="30.0"} 0.0' in text
    assert 'line_messages{type="user"} 2.0' in text  # conv-x and someone-else
    assert "line_turn_latency_seconds_count 1.0" in text
    assert "hi" not in text.replace("histogram", "")


def test_add_staff_command(db_url, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert duty_main(["add-staff", "--username", "Ellen", "--display-name", "Ellen",
                      "--role", "peer_worker", "--password-stdin"]) == 0
    with db.transaction() as s:
        row = s.execute(select(Staff)).scalar_one()
        assert row.username == "ellen" and row.password_hash.startswith("$argon2id$")
        assert "a long enough password" not in row.password_hash
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert duty_main(["add-staff", "--username", "vol", "--display-name", "Vol",
                      "--role", "sanctuary_volunteer", "--password-stdin"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert duty_main(["add-staff", "--username", "sam", "--display-name", "Sam",
                      "--role", "peer_worker", "--password-stdin"]) == 2
    assert "a long enough password" not in capsys.readouterr().out


async def test_demo_account_signs_in(client, db_url, aiohttp_client):
    demo = accounts.ensure_demo_account(make_settings(db_url))
    assert demo is not None and demo.password in demo.message()
    # A duty manager: the second factor is set up at the first sign-in, as for any manager.
    token = await login_csrf(client)
    resp = await client.post("/login", data={"username": demo.username, "password": demo.password,
                                             "csrf_token": token}, allow_redirects=False)
    assert resp.headers["Location"] == "/login/next"
    page = await (await client.get("/login/next")).text()
    secret = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    step = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    done = await client.post("/login/enrol", data={"csrf_token": step,
                                                   "code": twofactor.code_at(secret, time.time())})
    assert done.status == 200 and "recovery codes" in await done.text()
    assert (await client.get("/duty", allow_redirects=False)).status == 200
    # Run again: a new password, the old one no longer works; the second factor stays.
    again = accounts.ensure_demo_account(make_settings(db_url))
    assert again.password != demo.password
    fresh = await aiohttp_client(create_app(make_settings(db_url)))
    token = await login_csrf(fresh)
    resp = await fresh.post("/login", data={"username": demo.username, "password": again.password,
                                            "csrf_token": token}, allow_redirects=False)
    assert resp.headers["Location"] == "/login/next"
    assert 'action="/login/code"' in await (await fresh.get("/login/next")).text()
    deployed = make_settings(db_url, DUTY_PUBLIC_URL="https://duty.example.org")
    assert accounts.ensure_demo_account(deployed) is None


def test_tonight_is_the_date_the_night_started():
    import datetime as dt

    late = dt.datetime(2026, 11, 22, 2, 30, tzinfo=dt.timezone.utc)
    assert console_db.tonight("Europe/London", late) == dt.date(2026, 11, 21)
    evening = dt.datetime(2026, 11, 22, 20, 0, tzinfo=dt.timezone.utc)
    assert console_db.tonight("Europe/London", evening) == dt.date(2026, 11, 22)
