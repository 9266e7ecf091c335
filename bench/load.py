"""Simulated conversations through the REST channel and through signed SMS webhooks.

- ``SCRIPTS``: short conversations in the words people use with the line (about a quarter of
  them show risk, urgent or imminent), each turn labelled with the risk it means.
- ``FakeTwilio``: Twilio's Messages resource on loopback HTTP. It records every message it
  accepts (sid, To, Body, arrival time), tells a staff alert from a reply to a person by the
  ``To`` number, lists what it accepted as Twilio does (the outbox's look-up before posting a
  part that may already be there: a list request is not a delivery), and fails a given share
  of requests, creates and lists alike (500, 429, or hang past the sender's time-out). Not the
  tests' scripted fake (``tests/helpers.py``): a run needs failure shares over thousands of
  requests and a look-up by message SID.
- ``run_rest`` / ``run_sms``: N conversations at a time, closed loop (each simulated person
  sends the next message when the whole answer to the last has arrived), for a fixed time.
  Every conversation is a new person (a new sender id or phone number), as on a real night.

An SMS turn is finished when its inbox row is finished and every reply part it wrote to the
outbox has been accepted by the fake Twilio API; ``TurnTracker`` reads that from the line's
database (one query for all open turns every 50 ms) and times the turn at the fake API, so an
SMS turn's latency is what the person waits: webhook posted to last reply accepted.

Nothing here logs message text or a phone number; the figures are times and counts.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, Iterator, Optional

import aiohttp
from aiohttp import web
from sqlalchemy import DateTime, bindparam, create_engine, text
from twilio.request_validator import RequestValidator

from bench.line import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    LINE_NUMBER,
    PUBLIC_BASE,
    PSEUDONYM_KEY,
    STAFF_NUMBERS,
)

WEBHOOK_PATH = "/webhooks/sms/webhook"
INBOX_FINAL = ("done", "failsafe", "failed")
OUTBOX_FINAL = ("sent", "failed", "suppressed_opted_out", "not_sent_local")
REF_RE = re.compile(r"escalation ([A-Z0-9]{4,12})")


# --- conversations ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Turn:
    text: str
    risk: str = "none"  # what the message means: none, urgent or imminent


@dataclass(frozen=True)
class Script:
    name: str
    weight: float
    turns: tuple[Turn, ...]

    @property
    def risky(self) -> bool:
        return any(t.risk != "none" for t in self.turns)


def _t(*texts: str, risk: str = "none") -> tuple[Turn, ...]:
    return tuple(Turn(x, risk) for x in texts)


# At most five turns: a person's first messages then never meet the SMS channel's flood limit
# (five in a burst), which would time the limiter rather than the line. Weights: 24% of the
# conversations show urgent or imminent risk.
SCRIPTS: tuple[Script, ...] = (
    Script("distress_grounding", 16, _t(
        "hello", "honestly i'm not coping, everything feels too much tonight", "calm",
        "thanks, that helped a bit")),
    Script("services_named_town", 12, _t("is anything open near Bridgwater tonight", "thanks")),
    Script("services_asked_place", 10, _t(
        "where can i go instead of A&E", "bridgewater", "thank you")),
    Script("carer_rights", 8, _t(
        "the ward won't tell me anything about my son, what am I allowed to know",
        "honestly looking after him is wearing me down")),
    Script("carer_tonight", 8, _t(
        "my partner is in a really bad way tonight, what should i do to help", "ok thanks")),
    Script("bot_then_human", 8, _t("am i talking to a robot", "can i talk to a real person please")),
    Script("idiom", 7, _t("hi", "thanks, that essay is killing me but i feel better now")),
    Script("out_of_scope", 7, _t("can you book me a table at a restaurant", "ok")),
    Script("urgent_safe", 8, (
        Turn("hi"), Turn("i cant do this anymore i want 2 kms", "urgent"), Turn("yes"))),
    Script("urgent_not_safe", 6, (
        Turn("I keep thinking everyone would be better off without me", "urgent"),
        Turn("no", "imminent"))),
    Script("imminent_overdose", 5, (
        Turn("ive just taken a whole packet of my tablets", "imminent"), Turn("please help"))),
    Script("imminent_height", 5, (
        Turn("im on the bridge and im going to jump", "imminent"), Turn("i dont know"))),
)


def risk_share(scripts: tuple[Script, ...] = SCRIPTS) -> float:
    total = sum(s.weight for s in scripts)
    return sum(s.weight for s in scripts if s.risky) / total


def pick(rng: random.Random, scripts: tuple[Script, ...] = SCRIPTS) -> Script:
    return rng.choices(scripts, weights=[s.weight for s in scripts])[0]


# --- figures ----------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> Optional[float]:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": _r(percentile(values, 50)),
        "p95": _r(percentile(values, 95)),
        "p99": _r(percentile(values, 99)),
        "max": _r(max(values) if values else None),
    }


def _r(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(x, 1)


# --- the fake Twilio API ----------------------------------------------------------------------

@dataclass
class Delivery:
    sid: str
    to: str
    body: str
    at: float  # time.monotonic() when accepted
    date_created: str = ""  # RFC 2822, whole seconds, as Twilio lists it

    @property
    def is_alert(self) -> bool:
        return self.to in STAFF_NUMBERS.values()


@dataclass
class Faults:
    """Share of requests (creates and lists) that fail, each way (0 = healthy)."""

    p500: float = 0.0
    p429: float = 0.0
    p_timeout: float = 0.0
    hang_s: float = 30.0  # longer than the sender's time-out (10 s): the request times out

    @property
    def active(self) -> bool:
        return self.p500 + self.p429 + self.p_timeout > 0


class FakeTwilio:
    """Accepts messages like Twilio (201 + JSON) and records them; fails when told to."""

    def __init__(self, seed: int = 7) -> None:
        self.deliveries: list[Delivery] = []
        self.by_sid: dict[str, Delivery] = {}
        self.faults = Faults()
        # Creates by answer; list requests (look-ups, never deliveries) apart, as "list_*".
        self.counts: dict[str, int] = {"201": 0, "500": 0, "429": 0, "timeout": 0, "401": 0,
                                       "list_200": 0, "list_500": 0, "list_429": 0,
                                       "list_timeout": 0}
        self.url = ""
        self._rng = random.Random(seed)
        self._runner: Optional[web.AppRunner] = None

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self.handle)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", self.list_messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _refused(self, request: web.Request) -> Optional[web.Response]:
        try:
            password = aiohttp.BasicAuth.decode(request.headers.get("Authorization", "")).password
        except ValueError:
            password = None
        if request.match_info["sid"] != ACCOUNT_SID or password != AUTH_TOKEN:
            self.counts["401"] += 1
            return web.json_response({"code": 20003, "message": "auth"}, status=401)
        return None

    async def _fault(self, prefix: str) -> Optional[web.Response]:
        """A failure for this request, by the fault shares; None to answer normally."""
        roll = self._rng.random()
        f = self.faults
        if roll < f.p500:
            self.counts[prefix + "500"] += 1
            return web.json_response({"code": 20500, "message": "fault"}, status=500)
        if roll < f.p500 + f.p429:
            self.counts[prefix + "429"] += 1
            return web.json_response({"code": 20429, "message": "too many"}, status=429)
        if roll < f.p500 + f.p429 + f.p_timeout:
            # The sender gives up first; nothing is accepted (a request lost on the way, not
            # a late acceptance).
            self.counts[prefix + "timeout"] += 1
            await asyncio.sleep(f.hang_s)
            return web.json_response({"code": 20504, "message": "late"}, status=504)
        return None

    async def handle(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        form = await request.post()
        failed = await self._fault("")
        if failed is not None:
            return failed
        sid = "SM" + uuid.uuid4().hex
        d = Delivery(sid, str(form.get("To", "")), str(form.get("Body", "")), time.monotonic(),
                     format_datetime(datetime.now(timezone.utc)))
        self.deliveries.append(d)
        self.by_sid[sid] = d
        self.counts["201"] += 1
        return web.Response(status=201, content_type="application/json",
                            text=json.dumps(self._resource(d)))

    async def list_messages(self, request: web.Request) -> web.Response:
        """Twilio's message list: To/From filters, newest first, one page of PageSize."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        failed = await self._fault("list_")
        if failed is not None:
            return failed
        to, from_ = request.query.get("To"), request.query.get("From")
        size = min(int(request.query.get("PageSize", "50")), 1000)
        page: list[Delivery] = []
        if from_ in (None, LINE_NUMBER):  # every message here is from the line's number
            for d in reversed(self.deliveries):
                if to is None or d.to == to:
                    page.append(d)
                    if len(page) == size:
                        break
        self.counts["list_200"] += 1
        uri = request.path_qs
        return web.json_response({
            "messages": [self._resource(d) for d in page], "first_page_uri": uri,
            "previous_page_uri": None, "uri": uri, "page": 0, "page_size": size, "start": 0,
            "end": max(len(page) - 1, 0),
            # Only the first page is served; a full one says another may exist.
            "next_page_uri": uri + "&PageToken=PA1" if len(page) == size else None,
        })

    @staticmethod
    def _resource(d: Delivery) -> dict[str, Any]:
        return {
            "sid": d.sid, "account_sid": ACCOUNT_SID, "to": d.to, "from": LINE_NUMBER,
            "body": d.body, "status": "queued", "num_segments": "1", "direction": "outbound-api",
            "date_created": d.date_created, "date_updated": d.date_created, "date_sent": None,
            "error_code": None,
        }

    def alerts(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.is_alert]


# --- results ----------------------------------------------------------------------------------

@dataclass
class TurnResult:
    channel: str
    conversation: str  # sender id (REST) or the pseudonym (SMS)
    script: str
    index: int
    risk: str
    sent_at: float  # monotonic
    latency_ms: Optional[float] = None  # REST: round trip; SMS: to the last reply part
    first_reply_ms: Optional[float] = None
    emergency_ms: Optional[float] = None  # to the first reply carrying 999
    first_has_999: Optional[bool] = None
    replies: int = 0
    ack_ms: Optional[float] = None  # SMS: the webhook's answer
    ack_attempts: int = 0
    status: str = "ok"  # ok, failsafe, failed, error, timeout, not_acked
    message_sid: str = ""
    finished_at: Optional[float] = None


@dataclass
class LevelResult:
    channel: str
    concurrency: int
    duration_s: float
    turns: list[TurnResult] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)

    def figures(self) -> dict[str, Any]:
        done = [t for t in self.turns if t.latency_ms is not None]
        # Throughput counts the turns finished inside the window; latency counts every turn.
        in_window = [t for t in done if t.finished_at is not None
                     and t.finished_at - self.started_at <= self.duration_s]
        statuses: dict[str, int] = {}
        for t in self.turns:
            statuses[t.status] = statuses.get(t.status, 0) + 1
        emergency = [t.emergency_ms for t in self.turns
                     if t.risk == "imminent" and t.emergency_ms is not None]
        imminent = [t for t in self.turns if t.risk == "imminent"]
        after_risk = _after_first_risk(self.turns)
        out = {
            "channel": self.channel,
            "concurrency": self.concurrency,
            "duration_s": self.duration_s,
            "turns": len(self.turns),
            "statuses": statuses,
            # Finished turns the bot answered with nothing at all (the person hears nothing).
            "silent_turns": _tally(f"{t.script}#{t.index + 1}" for t in self.turns
                                   if t.status == "ok" and t.replies == 0),
            "throughput_turns_per_s": round(len(in_window) / self.duration_s, 2),
            "latency_ms": summary([t.latency_ms for t in done]),
            "emergency_ms": summary(emergency),
            "imminent_turns": len(imminent),
            "imminent_without_999": sum(1 for t in imminent if t.emergency_ms is None),
            "imminent_999_not_first": sum(1 for t in imminent if t.first_has_999 is False),
            # The line's turn gate puts a conversation's messages first from its first risk
            # message on, for an hour: those turns apart from the rest (what risk-first costs
            # the other conversations, and gains these).
            "latency_ms_by_priority": {
                name: summary([t.latency_ms for t in done if (id(t) in after_risk) == flag])
                for name, flag in (("risk_first", True), ("ordinary", False))
            },
        }
        if self.channel == "sms":
            out["first_reply_ms"] = summary([t.first_reply_ms for t in done
                                             if t.first_reply_ms is not None])
            out["webhook_ack_ms"] = summary([t.ack_ms for t in self.turns
                                             if t.ack_ms is not None])
        return out


def pooled_figures(levels: list[LevelResult]) -> dict[str, Any]:
    """One level measured in several runs (the stock bot's, before and after the line): the
    latency percentiles over every run's turns, the throughput the mean of the runs', and each
    run's own throughput and p95 under ``runs``."""
    if len(levels) == 1:
        return levels[0].figures()
    runs = [lv.figures() for lv in levels]
    first = levels[0]
    pooled = LevelResult(first.channel, first.concurrency, first.duration_s,
                         turns=[t for lv in levels for t in lv.turns])
    out = pooled.figures()
    # Each run counts the turns finished inside its own window.
    out["throughput_turns_per_s"] = round(
        sum(r["throughput_turns_per_s"] for r in runs) / len(runs), 2)
    out["duration_s"] = sum(lv.duration_s for lv in levels)
    out["runs"] = [{"throughput_turns_per_s": r["throughput_turns_per_s"],
                    "latency_ms_p95": r["latency_ms"]["p95"]} for r in runs]
    return out


def _after_first_risk(turns: list[TurnResult]) -> set[int]:
    """``id()`` of each turn sent at or after its conversation's first risk message."""
    first: dict[str, float] = {}
    for t in turns:
        if t.risk != "none":
            first[t.conversation] = min(first.get(t.conversation, t.sent_at), t.sent_at)
    return {id(t) for t in turns
            if t.conversation in first and t.sent_at >= first[t.conversation]}


def _tally(items: Iterator[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


# --- REST -------------------------------------------------------------------------------------

async def _rest_turn(session: aiohttp.ClientSession, url: str, sender: str, script: Script,
                     index: int, timeout_s: float) -> TurnResult:
    turn = script.turns[index]
    result = TurnResult("rest", sender, script.name, index, turn.risk, time.monotonic())
    try:
        async with session.post(f"{url}/webhooks/rest/webhook",
                                json={"sender": sender, "message": turn.text},
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            body = await resp.json(content_type=None) if resp.status == 200 else None
            status = resp.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        result.status = "timeout" if isinstance(exc, asyncio.TimeoutError) else "error"
        return result
    now = time.monotonic()
    if status != 200 or not isinstance(body, list):
        result.status = "error"
        return result
    elapsed = (now - result.sent_at) * 1000
    texts = [m.get("text") or "" for m in body]
    result.latency_ms = result.first_reply_ms = elapsed
    result.replies = len(texts)
    result.finished_at = now
    if any("999" in t for t in texts):
        result.emergency_ms = elapsed  # REST returns the whole answer at once
    result.first_has_999 = bool(texts) and "999" in texts[0]
    return result


async def run_rest(url: str, concurrency: int, duration_s: float, *, seed: int = 1,
                   prefix: str = "bench", timeout_s: float = 60.0,
                   token: str | None = None) -> LevelResult:
    """``concurrency`` people at a time talk to the REST channel for ``duration_s``
    (``token``: the Rasa auth token, which the line's REST channel requires when it is set)."""
    level = LevelResult("rest", concurrency, duration_s)
    counter = itertools.count()
    connector = aiohttp.TCPConnector(limit=0)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        deadline = time.monotonic() + duration_s

        async def person(n: int) -> None:
            rng = random.Random(seed * 1000 + n)
            while time.monotonic() < deadline:
                script = pick(rng)
                sender = f"{prefix}-{next(counter)}-{uuid.uuid4().hex[:6]}"
                for i in range(len(script.turns)):
                    if time.monotonic() >= deadline:
                        return
                    level.turns.append(
                        await _rest_turn(session, url, sender, script, i, timeout_s))

        await asyncio.gather(*(person(n) for n in range(concurrency)))
    level.turns.sort(key=lambda t: t.sent_at)
    return level


# --- SMS --------------------------------------------------------------------------------------

class TurnTracker:
    """Knows when an SMS turn is finished, from the line's database and the fake API."""

    # Two look-ups by index, not a join: PostgreSQL planned the join as a scan of all of
    # sms_outbox (by table or by index) twenty times a second, the costliest statement of a
    # level (pg_stat_statements), which took its CPU from the line being measured.
    INBOX = text(
        "SELECT id, message_sid, status FROM sms_inbox WHERE message_sid IN :sids"
    ).bindparams(bindparam("sids", expanding=True))
    OUTBOX = text(
        "SELECT inbox_id, status, twilio_sid FROM sms_outbox WHERE inbox_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))

    def __init__(self, db_url: str, fake: FakeTwilio, poll_s: float = 0.05) -> None:
        # In a database a minute old, before autovacuum's first ANALYZE, PostgreSQL's planner
        # takes the tables for empty and scans them whole rather than use their indexes.
        postgres = db_url.startswith("postgresql")
        self.engine = create_engine(
            db_url, future=True, pool_pre_ping=True,
            connect_args={"options": "-c enable_seqscan=off"} if postgres else {})
        self.fake = fake
        self.poll_s = poll_s
        self.waiting: dict[str, asyncio.Future] = {}
        self.db_errors = 0
        self._task: Optional[asyncio.Task] = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.engine.dispose()

    def wait(self, message_sid: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.waiting[message_sid] = fut
        return fut

    def _query(self, sids: list[str]) -> list[tuple]:
        with self.engine.connect() as conn:
            inbox = conn.execute(self.INBOX, {"sids": sids}).all()
            parts: dict[int, list[tuple]] = {}
            if inbox:
                for inbox_id, status, twilio_sid in conn.execute(
                        self.OUTBOX, {"ids": [row.id for row in inbox]}):
                    parts.setdefault(inbox_id, []).append((status, twilio_sid))
            # One row per part (None, None for a turn with no parts yet), as a LEFT JOIN gives.
            return [(sid, status, *part) for row_id, sid, status in inbox
                    for part in parts.get(row_id, [(None, None)])]

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            sids = [s for s, f in self.waiting.items() if not f.done()]
            if not sids:
                continue
            try:
                rows = await asyncio.to_thread(self._query, sids)
            except Exception:  # noqa: BLE001  the database may be down on purpose; poll again
                self.db_errors += 1
                await asyncio.sleep(0.5)
                continue
            turns: dict[str, dict[str, Any]] = {}
            for sid, in_status, out_status, twilio_sid in rows:
                t = turns.setdefault(sid, {"status": in_status, "parts": []})
                if out_status is not None:
                    t["parts"].append((out_status, twilio_sid))
            for sid, t in turns.items():
                if t["status"] not in INBOX_FINAL:
                    continue
                if any(st not in OUTBOX_FINAL for st, _ in t["parts"]):
                    continue
                sent = [ts for st, ts in t["parts"] if st == "sent"]
                if any(ts not in self.fake.by_sid for ts in sent):
                    continue
                fut = self.waiting.pop(sid)
                if not fut.done():
                    fut.set_result((t["status"], [self.fake.by_sid[ts] for ts in sent]))


class SmsClient:
    """Posts signed webhooks as Twilio does, retrying with the same MessageSid on failure."""

    def __init__(self, url: str, session: aiohttp.ClientSession,
                 retry_for_s: float = 30.0) -> None:
        self.url = url
        self.session = session
        self.validator = RequestValidator(AUTH_TOKEN)
        self.retry_for_s = retry_for_s

    async def post(self, number: str, body: str, sid: str) -> tuple[Optional[float], int]:
        """(ms to the first 200, attempts); (None, attempts) when never acknowledged."""
        params = {
            "MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": number,
            "To": LINE_NUMBER, "Body": body, "NumMedia": "0", "FromCountry": "GB",
        }
        headers = {"X-Twilio-Signature":
                   self.validator.compute_signature(PUBLIC_BASE + WEBHOOK_PATH, params)}
        give_up = time.monotonic() + self.retry_for_s
        attempts, backoff = 0, 0.25
        while True:
            attempts += 1
            started = time.monotonic()
            try:
                async with self.session.post(self.url + WEBHOOK_PATH, data=params,
                                             headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=15)) as resp:
                    await resp.read()
                    if resp.status == 200:
                        return (time.monotonic() - started) * 1000, attempts
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            if time.monotonic() + backoff > give_up:
                return None, attempts
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


def new_number(n: int) -> str:
    # +44 7800 xxxxxx: a UK mobile shape, never the rota's staff numbers (07700 900xxx).
    return f"+447800{n % 1_000_000:06d}"


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


async def sms_turn(client: SmsClient, tracker: TurnTracker, number: str, pid: str,
                   script: Script, index: int, turn_timeout_s: float) -> TurnResult:
    turn = script.turns[index]
    sid = new_sid()
    result = TurnResult("sms", pid, script.name, index, turn.risk, time.monotonic(),
                        message_sid=sid)
    waiter = tracker.wait(sid)
    ack_ms, result.ack_attempts = await client.post(number, turn.text, sid)
    if ack_ms is None:
        tracker.waiting.pop(sid, None)
        result.status = "not_acked"
        return result
    # The first attempt's latency is what Twilio waited for an answer that came.
    result.ack_ms = ack_ms if result.ack_attempts == 1 else None
    try:
        status, parts = await asyncio.wait_for(waiter, turn_timeout_s)
    except asyncio.TimeoutError:
        tracker.waiting.pop(sid, None)
        result.status = "timeout"
        return result
    result.status = {"done": "ok"}.get(status, status)
    parts = sorted(parts, key=lambda d: d.at)
    result.replies = len(parts)
    if parts:
        result.first_reply_ms = (parts[0].at - result.sent_at) * 1000
        result.latency_ms = (parts[-1].at - result.sent_at) * 1000
        result.finished_at = parts[-1].at
        with_999 = [d for d in parts if "999" in d.body]
        if with_999:
            result.emergency_ms = (with_999[0].at - result.sent_at) * 1000
        result.first_has_999 = "999" in parts[0].body
    return result


async def run_sms(url: str, tracker: TurnTracker, concurrency: int, duration_s: float, *,
                  seed: int = 2, numbers: Optional[Iterator[int]] = None,
                  think_s: tuple[float, float] = (0.0, 0.0), retry_for_s: float = 30.0,
                  turn_timeout_s: float = 60.0, stop: Optional[asyncio.Event] = None,
                  level: Optional[LevelResult] = None) -> LevelResult:
    """``concurrency`` people at a time text the line for ``duration_s`` (or until ``stop``)."""
    from bot.sms.pseudonym import pseudonym

    level = level or LevelResult("sms", concurrency, duration_s)
    numbers = numbers or itertools.count()
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=2)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = SmsClient(url, session, retry_for_s)
        deadline = time.monotonic() + duration_s

        def over() -> bool:
            return time.monotonic() >= deadline or (stop is not None and stop.is_set())

        async def person(n: int) -> None:
            rng = random.Random(seed * 1000 + n)
            while not over():
                script = pick(rng)
                number = new_number(next(numbers))
                pid = pseudonym(number, PSEUDONYM_KEY)
                for i in range(len(script.turns)):
                    if over():
                        return
                    level.turns.append(await sms_turn(client, tracker, number, pid, script, i,
                                                      turn_timeout_s))
                    if think_s[1] > 0:
                        await asyncio.sleep(rng.uniform(*think_s))

        await asyncio.gather(*(person(n) for n in range(concurrency)))
    level.turns.sort(key=lambda t: t.sent_at)
    return level


# --- staff alerts -----------------------------------------------------------------------------

def escalation_refs(db_url: str) -> dict[str, str]:
    """ref -> conversation id, from the line's database."""
    engine = create_engine(db_url, future=True)
    try:
        with engine.connect() as conn:
            return {r: c for r, c in conn.execute(
                text("SELECT ref, conversation_id FROM escalations"))}
    finally:
        engine.dispose()


def alert_latencies(turns: list[TurnResult], fake: FakeTwilio,
                    refs: dict[str, str]) -> dict[str, Any]:
    """Risk message -> first staff alert for that conversation at the fake Twilio API."""
    first_risk: dict[str, TurnResult] = {}
    for t in sorted(turns, key=lambda t: t.sent_at):
        if t.risk in ("urgent", "imminent") and t.status != "not_acked":
            first_risk.setdefault(t.conversation, t)
    alerts_by_conv: dict[str, list[float]] = {}
    for d in fake.alerts():
        m = REF_RE.search(d.body)
        if m and m.group(1) in refs:
            alerts_by_conv.setdefault(refs[m.group(1)], []).append(d.at)
    latencies, missing = [], 0
    for conv, t in first_risk.items():
        after = [at for at in alerts_by_conv.get(conv, []) if at >= t.sent_at]
        if after:
            latencies.append((min(after) - t.sent_at) * 1000)
        else:
            missing += 1
    return {"conversations_with_risk": len(first_risk), "not_alerted": missing,
            **summary(latencies)}


_WHEN = DateTime(timezone=True)  # typed, so that SQLite's text comes back as datetimes


def sms_stages(db_url: str, turns: list[TurnResult]) -> dict[str, Any]:
    """Where an SMS turn's time went, from the line's own timestamps (one clock: this
    machine's): stored -> claimed by the worker (``sms_inbox.received_at`` -> ``started_at``),
    claimed -> finished (the turn, its wait at the turn gate included, -> ``done_at``),
    each reply part written (``sms_outbox.created_at``) -> posted to Twilio (``sent_at``),
    and stored -> the last part posted. The rest of a turn's latency is the webhook's
    answer, the fake API's and this bench's own noticing."""
    sids = [t.message_sid for t in turns if t.message_sid and t.status == "ok"]
    if not sids:
        return {}
    engine = create_engine(db_url, future=True)
    try:
        with engine.connect() as conn:
            inbox = conn.execute(text(
                "SELECT id, received_at, started_at, done_at FROM sms_inbox"
                " WHERE message_sid IN :sids").bindparams(bindparam("sids", expanding=True))
                .columns(received_at=_WHEN, started_at=_WHEN, done_at=_WHEN),
                {"sids": sids}).all()
            parts = conn.execute(text(
                "SELECT inbox_id, created_at, sent_at FROM sms_outbox WHERE inbox_id IN :ids"
                " AND sent_at IS NOT NULL").bindparams(bindparam("ids", expanding=True))
                .columns(created_at=_WHEN, sent_at=_WHEN),
                {"ids": [r.id for r in inbox] or [0]}).all()
    finally:
        engine.dispose()

    def ms(a: Any, b: Any) -> Optional[float]:
        return None if a is None or b is None else (b - a).total_seconds() * 1000

    by_inbox: dict[int, list[tuple]] = {}
    for part in parts:
        by_inbox.setdefault(part.inbox_id, []).append((part.created_at, part.sent_at))
    stages: dict[str, list[float]] = {"to_claim": [], "turn": [], "part_to_twilio": [],
                                      "stored_to_last_part": []}
    for row in inbox:
        for name, value in (("to_claim", ms(row.received_at, row.started_at)),
                            ("turn", ms(row.started_at, row.done_at))):
            if value is not None:
                stages[name].append(value)
        sent = by_inbox.get(row.id, [])
        stages["part_to_twilio"].extend(v for c, s in sent if (v := ms(c, s)) is not None)
        if sent:
            stages["stored_to_last_part"].append(ms(row.received_at, max(s for _, s in sent)))
    return {name: summary(values) for name, values in stages.items()}


def turns_json(turns: list[TurnResult]) -> list[dict[str, Any]]:
    return [asdict(t) for t in turns]
