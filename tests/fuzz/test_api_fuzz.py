"""Property-based tests of the duty service's ``/api`` (and ``/metrics``): never a 5xx.

One app per test (pytest-aiohttp, SQLite then PostgreSQL) with a few escalations seeded through
the engine; hypothesis sends it query strings, path ids and headers:

- any query string on ``GET /api/escalations``: 200 with the escalations that match exactly
  when every parameter is a known one with allowed values, otherwise 400 with a JSON error;
- any path id: 200 for an existing id or reference (references in any case), otherwise 404
  with a JSON error;
- any ``Authorization`` header or session cookie, as text or as raw bytes: 401 with a JSON
  error unless the bearer token is right;
- and never a traceback or an error from our code in the logs.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

from hypothesis import strategies as st
from multidict import MultiDict

from bot.duty import queries
from bot.duty.api import LIST_PARAMS, MAX_LIMIT
from tests.duty.conftest import AUTH, TOKEN
from tests.fuzz.conftest import fuzz_property
from tests.fuzz.strategies import any_text

# Look-alikes of what the API accepts: other scripts' digits, superscripts, fullwidth forms,
# the Kelvin sign (which lower-cases to "k"), padding, separators.
# Numbers that are not plain ASCII digits: str.isdigit() says yes to most of these.
DIGIT_LOOKALIKES = ["²", "³⁵", "١٢", "１０", "٣", "߇", "₁", "𝟗", "1²"]
LOOKALIKES = ["\u212a", "İ", " ", "\t", ",", ",,", "+1", "-1", "1e2", "0x10", "1.0", "00",
              "501", "5000000000000000000000", *DIGIT_LOOKALIKES]
tricky = st.one_of(any_text, st.sampled_from(LOOKALIKES))


def words(allowed) -> st.SearchStrategy[str]:
    """A parameter value: allowed words in any case, with padding, commas and look-alikes."""
    piece = st.one_of(
        st.sampled_from(list(allowed)).flatmap(
            lambda w: st.sampled_from([w, w.upper(), w.title(), f" {w} "])
        ),
        tricky,
    )
    return st.lists(piece, min_size=1, max_size=3).map(",".join)


limits = st.one_of(
    st.integers(-5, MAX_LIMIT + 5).map(str), st.sampled_from(DIGIT_LOOKALIKES), tricky
)
query_pairs = st.lists(
    st.one_of(
        st.tuples(st.just("status"), words(queries.STATUSES)),
        st.tuples(st.just("level"), words(queries.RISK_ORDER)),
        st.tuples(st.just("limit"), limits),
        st.tuples(st.sampled_from(["Status", "stauts", "limit ", "", "id", "q"]) | any_text,
                  tricky),
    ),
    max_size=4,
)


def expected_filters(pairs: list[tuple[str, str]]) -> tuple[set, set, int] | None:
    """What the API documents for these parameters: the filters and limit, or None for 400."""
    statuses: set[str] = set()
    levels: set[str] = set()
    limit = 100
    seen_limit = False
    for key, value in pairs:
        if key not in LIST_PARAMS:
            return None
        if key == "limit":
            if seen_limit:
                continue  # the first one counts
            seen_limit = True
            if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_LIMIT):
                return None
            limit = int(value)
            continue
        allowed, into = (
            (queries.STATUSES, statuses) if key == "status" else (queries.RISK_ORDER, levels)
        )
        for word in value.split(","):
            word = word.strip().lower()
            if word not in allowed:
                return None
            into.add(word)
    return statuses, levels, limit


def assert_json_error(status: int, text: str, expected: int) -> None:
    assert status == expected, (status, text)
    body = json.loads(text)
    assert set(body) == {"error", "message"} and body["message"], body
    assert "Traceback" not in text


def seeded(seed) -> None:
    """Four escalations of every level, in several states (ids 1 to 4 on a new database)."""
    seed("imminent", status="open", age_s=30, signals=["overdose_taken"])
    seed("urgent", status="acknowledged", age_s=300, ack_after_s=20, trail=["acknowledged"])
    seed("support", status="resolved", age_s=900, trail=["acknowledged", "resolved"])
    seed("urgent", status="alerted", age_s=60, trail=["alerted"])


async def test_any_query_string_gets_the_matching_escalations_or_a_json_400(client, seed, logs):
    seeded(seed)
    everything = await (await client.get("/api/escalations", headers=AUTH)).json()
    assert len(everything) == 4

    @fuzz_property(60, pairs=query_pairs)
    async def check(pairs):
        resp = await client.get("/api/escalations", params=MultiDict(pairs), headers=AUTH)
        text = await resp.text()
        want = expected_filters(pairs)
        if want is None:
            assert_json_error(resp.status, text, 400)
            assert json.loads(text)["error"] == "bad_request"
            return
        assert resp.status == 200, (resp.status, text)
        statuses, levels, limit = want
        assert resp.headers["X-Result-Limit"] == str(limit)
        got = [e["id"] for e in json.loads(text)]
        matching = [
            e["id"] for e in everything
            if (not statuses or e["status"] in statuses) and (not levels or e["level"] in levels)
        ]
        assert got == matching[:limit]

    await check()
    logs.assert_clean()


async def test_any_path_id_gets_the_escalation_or_a_json_404(client, seed, logs):
    seeded(seed)
    everything = await (await client.get("/api/escalations", headers=AUTH)).json()
    by_key = {str(e["id"]): e["id"] for e in everything}
    by_key.update({e["ref"].upper(): e["id"] for e in everything})
    refs = [e["ref"] for e in everything]

    @fuzz_property(
        50,
        key=st.one_of(
            st.sampled_from(sorted(by_key)),
            st.sampled_from(refs).map(str.lower),
            st.sampled_from(sorted(by_key)).flatmap(
                lambda k: st.sampled_from([f" {k}", f"{k}\n", f"{k}/", f"+{k}", f"0{k}", k * 2])
            ),
            st.integers(-(2**40), 2**40).map(str),
            tricky,
            st.text("0123456789", min_size=10, max_size=30),
        ),
    )
    async def check(key):
        resp = await client.get("/api/escalations/" + quote(key, safe=""), headers=AUTH)
        text = await resp.text()
        wanted = by_key.get(key.upper() if key.isascii() and key.isalnum() else key)
        if key.isascii() and key.isdigit() and key.lstrip("0") in by_key:
            wanted = by_key[key.lstrip("0")]
        if wanted is None:
            assert_json_error(resp.status, text, 404)
        else:
            assert resp.status == 200, (resp.status, text)
            assert json.loads(text)["id"] == wanted

    await check()
    logs.assert_clean()


PROTECTED = ["/api/escalations", "/api/escalations/1", "/api/openapi.json", "/metrics",
             "/api/no-such-thing", "/api"]
header_text = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=60)


def bearer_ok(header: str | None) -> bool:
    """What ``Authorization`` values the API documents as valid: Bearer <DUTY_API_TOKEN>."""
    if header is None:
        return False
    # HTTP strips spaces and tabs around a header value; the rest is the server's to parse.
    scheme, _, given = header.strip(" \t").partition(" ")
    return scheme.lower() == "bearer" and given.strip() == TOKEN


async def test_any_authorization_or_cookie_without_the_token_gets_401(client, seed, logs):
    seeded(seed)

    @fuzz_property(
        60,
        path=st.sampled_from(PROTECTED),
        authorization=st.one_of(
            st.none(),
            st.sampled_from([f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER  {TOKEN} ",
                             f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}",
                             "Bearer", "Bearer ", TOKEN, f"Bearer {TOKEN.upper()}"]),
            st.builds(lambda a, b: f"{a} {b}", st.sampled_from(["Bearer", "bearer"]),
                      header_text),
            header_text,
        ),
        cookie=st.one_of(st.none(), header_text.filter(lambda t: ";" not in t),
                         st.text("abcdef0123456789", min_size=129, max_size=200)),
    )
    async def check(path, authorization, cookie):
        headers = {}
        if authorization is not None:
            headers["Authorization"] = authorization
        if cookie is not None:
            headers["Cookie"] = f"duty_session={quote(cookie)}"
        resp = await client.get(path, headers=headers)
        text = await resp.text()
        assert resp.status < 500, (resp.status, text)
        if not bearer_ok(authorization):
            assert_json_error(resp.status, text, 401)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        elif path in ("/api/no-such-thing", "/api"):
            assert_json_error(resp.status, text, 404)
        else:
            assert resp.status == 200, (resp.status, text)

    await check()
    logs.assert_clean()


async def test_raw_header_bytes_never_give_a_5xx(client, logs):
    """Headers that are not UTF-8 at all (an HTTP client can send any byte but CR and LF)."""
    host, port = client.server.host, client.server.port

    @fuzz_property(
        40,
        name=st.sampled_from([b"Authorization", b"Cookie", b"X-CSRF-Token", b"Accept"]),
        prefix=st.sampled_from([b"Bearer ", b"duty_session=", b""]),
        value=st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
        path=st.sampled_from([b"/api/escalations", b"/metrics", b"/duty", b"/health"]),
    )
    async def check(name, prefix, value, path):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + name + b": "
                         + prefix + value + b"\r\nConnection: close\r\n\r\n")
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 10)
        finally:
            writer.close()
        status = int(status_line.split()[1])
        assert status < 500 or (path == b"/health" and status == 503), status_line

    await check()
    logs.assert_clean()
