"""GET /api/escalations and /api/escalations/{id}: shape, order, filters, errors."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from bot.duty import queries
from bot.duty.app import create_app
from bot.store.db import transaction
from bot.store.models import Escalation

from .conftest import AUTH, UNREACHABLE_PG, make_settings

FIELDS = {
    "id", "ref", "level", "status", "channel", "created_at", "acknowledged_at", "resolved_at",
    "waiting_seconds", "signals", "summary", "events",
}


def _parse_time(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text[:-1] + "+00:00")


async def test_detail_by_id_and_by_ref_has_the_design_fields_and_events_oldest_first(client, seed):
    esc_id = seed(
        "urgent", status="acknowledged", age_s=90, ack_after_s=40, signals=["self_harm"],
        trail=["alerted", "acknowledged"],
    )
    resp = await client.get(f"/api/escalations/{esc_id}", headers=AUTH)
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == FIELDS
    assert body["id"] == esc_id and body["level"] == "urgent" and body["status"] == "acknowledged"
    assert body["channel"] == "sms" and body["signals"] == ["self_harm"]
    assert body["summary"]["risk_level"] == "urgent"
    assert body["waiting_seconds"] == 40
    created, acked = _parse_time(body["created_at"]), _parse_time(body["acknowledged_at"])
    assert (acked - created).total_seconds() == pytest.approx(40, abs=0.01)
    assert body["resolved_at"] is None

    events = body["events"]
    assert [e["kind"] for e in events] == ["created", "alerted", "acknowledged"]
    assert [e["seq"] for e in events] == [1, 2, 3]
    times = [_parse_time(e["at"]) for e in events]
    assert times == sorted(times)
    assert all(set(e) == {"seq", "at", "kind", "actor", "reason"} for e in events)
    assert events[0]["actor"] == "assistant" and events[1]["actor"] == "staff:ellen"

    # The same escalation by its reference, typed in any case.
    for key in (body["ref"], body["ref"].lower()):
        again = await client.get(f"/api/escalations/{key}", headers=AUTH)
        assert again.status == 200
        assert (await again.json())["id"] == esc_id


async def test_nothing_identifying_leaves_the_api(client, seed):
    esc_id = seed("urgent", signals=["suicidal_thoughts"])
    with transaction() as s:
        conversation_id = s.get(Escalation, esc_id).conversation_id
    for path in ("/api/escalations", f"/api/escalations/{esc_id}"):
        text = await (await client.get(path, headers=AUTH)).text()
        assert conversation_id not in text
        assert "conversation_id" not in text
        assert '"data"' not in text and "prev_hash" not in text


async def test_list_is_ordered_by_risk_then_waiting_time(client, seed):
    support_old = seed("support", age_s=1000)
    urgent_new = seed("urgent", age_s=100)
    imminent = seed("imminent", age_s=10)
    urgent_older = seed("urgent", age_s=500)
    # Opened earliest but acknowledged after 30 s: it waited least of the urgent ones.
    urgent_acked = seed("urgent", status="acknowledged", age_s=2000, ack_after_s=30)

    resp = await client.get("/api/escalations", headers=AUTH)
    assert resp.status == 200
    body = await resp.json()
    assert resp.headers["X-Result-Limit"] == "100"
    ids = [e["id"] for e in body]
    assert ids == [imminent, urgent_older, urgent_new, urgent_acked, support_old]
    assert all(set(e) == FIELDS for e in body)
    assert all(e["events"][0]["kind"] == "created" for e in body)
    waits = {e["id"]: e["waiting_seconds"] for e in body}
    assert waits[urgent_acked] == 30
    assert 500 <= waits[urgent_older] < 510


async def test_filters(client, seed):
    a = seed("support", age_s=50)
    b = seed("urgent", age_s=40)
    c = seed("urgent", status="acknowledged", age_s=30, ack_after_s=5)
    d = seed("imminent", status="resolved", age_s=20)

    async def ids(query: str) -> list[int]:
        resp = await client.get(f"/api/escalations?{query}", headers=AUTH)
        assert resp.status == 200, await resp.text()
        return [e["id"] for e in (await resp.json())]

    assert await ids("status=open") == [b, a]
    assert await ids("level=urgent") == [b, c]
    assert await ids("status=open,acknowledged&level=urgent") == [b, c]
    assert await ids("level=imminent&level=support") == [d, a]
    assert await ids("status=RESOLVED") == [d]
    assert await ids("status=referred") == []
    assert await ids("limit=1") == [d]


@pytest.mark.parametrize(
    "query, word",
    [
        ("status=bogus", "status"),
        ("status=", "status"),
        ("status=open,nope", "status"),
        ("level=high", "level"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("stauts=open", "stauts"),
    ],
)
async def test_bad_filters_are_400_json(client, query, word):
    resp = await client.get(f"/api/escalations?{query}", headers=AUTH)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request" and word in body["message"]


@pytest.mark.parametrize(
    "key", ["999999", "0", "99999999999999999999", "EZZZZZ", "E-1", "..%2F..", "x" * 40]
)
async def test_unknown_or_malformed_ids_are_404_json(client, seed, key):
    seed("urgent")
    resp = await client.get(f"/api/escalations/{key}", headers=AUTH)
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
async def test_database_down_is_503_json_without_a_traceback(aiohttp_client, tmp_path, kind):
    # A directory cannot be opened as an SQLite database; nothing listens on port 1.
    url = UNREACHABLE_PG if kind == "postgresql" else f"sqlite:///{tmp_path}"
    client = await aiohttp_client(create_app(make_settings(url)))
    for path in ("/api/escalations", "/api/escalations/1"):
        resp = await client.get(path, headers=AUTH)
        assert resp.status == 503
        assert resp.headers["Retry-After"]
        text = await resp.text()
        assert "Traceback" not in text and "psycopg2" not in text and "sqlite3" not in text
        assert (await resp.json())["error"] == "database_unavailable"


async def test_a_bug_is_500_json_and_keeps_the_details_out_of_the_response(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail from deep inside")

    monkeypatch.setattr(queries, "list_escalations", broken)
    resp = await client.get("/api/escalations", headers=AUTH)
    assert resp.status == 500
    text = await resp.text()
    assert "secret detail" not in text and "Traceback" not in text
    assert (await resp.json())["error"] == "internal_error"


async def test_database_work_runs_off_the_event_loop(client, seed, monkeypatch):
    seed("urgent")
    threads = []
    real = queries.list_escalations

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(queries, "list_escalations", spy)
    resp = await client.get("/api/escalations", headers=AUTH)
    assert resp.status == 200
    assert threads and threads[0] is not threading.main_thread()
    assert threads[0].name.startswith("duty-db")


async def test_list_reads_what_the_engine_wrote(client, seed):
    # The API reads the same rows the engine writes, with nothing cached in between.
    seed("support")
    first = len(await (await client.get("/api/escalations", headers=AUTH)).json())
    seed("urgent")
    second = len(await (await client.get("/api/escalations", headers=AUTH)).json())
    with transaction() as s:
        stored = len(s.execute(select(Escalation.id)).all())
    assert (first, second) == (1, 2) == (1, stored)
