"""``GET /metrics``: Prometheus text format (bearer token, or a duty manager's/admin's session).

What is measured (``prometheus_client`` writes the format):

- ``line_escalations{level,status}``: escalations by level and status now (gauge, from the
  database at scrape time);
- ``line_messages{type}``: messages in Rasa's tracker store, ``user`` and ``bot`` (gauge: the
  store is the count's source of truth, and erasure can lower it);
- ``line_escalation_ack_seconds``: time from an escalation opening to a human acknowledging
  it (histogram over every acknowledged escalation, from the database: escalations are never
  deleted, so its counts only grow, and every replica and restart reports the same);
- ``line_turn_latency_seconds``: from a person's message *arriving* to the assistant's first
  reply (histogram). Arrival is stamped by the turn gate before the message queues for a
  turn, or, for SMS, is the moment the webhook stored it in the inbox
  (``bot/channels/gate.py``, ``mark_arrival``), so the wait people feel under load is in it.

``line_turn_latency_seconds`` is a real Prometheus histogram: its buckets, sum and count only
grow, so ``rate()`` and ``histogram_quantile()`` work. (It used to be recomputed over the last
24 hours at each scrape, so its counts fell as turns aged out, which Prometheus reads as a
counter reset, and it started the clock when the turn began, after the queue.) Each scrape
observes the turns the tracker store gained since the last one (a cursor on the ``events``
table's id), so the count starts at 0 when this process starts, like any Prometheus counter.
Every duty service replica counts every turn: scrape one, or aggregate with ``max``. A row
committed after a row with a higher id was already read (two turns' transactions crossing
within a scrape's instant) is not observed: a metric, not a record, loses one turn then.

Only counts and durations: no references, conversation ids or text.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Optional

from aiohttp import web
from cachetools import TTLCache
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.duty import transcripts
from bot.duty.rundb import run_db
from bot.store.models import Escalation

ACK_BUCKETS = (15, 30, 60, 120, 300, 600, 1800, 3600)
# Up to a minute: with the queue wait in it, a turn under load can take longer than 15 s.
TURN_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
# A reply more than an hour after the message is not that message's turn.
TURN_PAIRING_S = 3600.0
# Rows of the tracker store read per scrape, at most (the rest wait for the next scrape).
SCAN_LIMIT = 50_000
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _json(raw: Optional[str]) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def arrival(data: dict[str, Any], stored_at: float) -> float:
    """When a user event's message arrived: the gate's stamp (``metadata.arrived_at``) when it
    is a plausible time at or before the event, else the event's own timestamp."""
    metadata = data.get("metadata")
    stamp = metadata.get("arrived_at") if isinstance(metadata, dict) else None
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        if stored_at - TURN_PAIRING_S <= stamp <= stored_at:
            return float(stamp)
    return stored_at


class _FromDatabase(Collector):
    """The gauges, and the acknowledgement histogram, read from the database at each scrape."""

    def __init__(self) -> None:
        self.engine: Optional[Engine] = None  # set by LineMetrics.scrape, under its lock

    def collect(self) -> Iterator[Any]:
        if self.engine is None:
            return
        with Session(self.engine, future=True) as session:
            counts = session.execute(
                select(Escalation.level, Escalation.status, func.count(Escalation.id))
                .group_by(Escalation.level, Escalation.status)
                .order_by(Escalation.level, Escalation.status)
            ).all()
            acks = session.execute(
                select(Escalation.created_at, Escalation.acknowledged_at)
                .where(Escalation.acknowledged_at.is_not(None))
            ).all()
        escalations = GaugeMetricFamily(
            "line_escalations", "Escalations by level and status.", labels=["level", "status"]
        )
        for level, status, n in counts:
            escalations.add_metric([level, status], n)
        yield escalations
        seconds = [max(0.0, (_aware(a) - _aware(c)).total_seconds()) for c, a in acks]
        yield _histogram(
            "line_escalation_ack_seconds",
            "Seconds from an escalation opening to a human acknowledging it.",
            seconds, ACK_BUCKETS,
        )
        ev = transcripts.RASA_EVENTS
        with self.engine.connect() as conn:
            by_type = {}
            if transcripts.events_table_exists(conn):
                by_type = dict(conn.execute(
                    select(ev.c.type_name, func.count(ev.c.id))
                    .where(ev.c.type_name.in_(("user", "bot")))
                    .group_by(ev.c.type_name)
                ).all())
        messages = GaugeMetricFamily(
            "line_messages", "Messages in the tracker store, by sender type.", labels=["type"]
        )
        for kind in ("user", "bot"):
            messages.add_metric([kind], by_type.get(kind, 0))
        yield messages


def _histogram(name: str, doc: str, values: Sequence[float], bounds: Sequence[float]):
    buckets = [(str(float(b)), sum(1 for v in values if v <= b)) for b in bounds]
    buckets.append(("+Inf", len(values)))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=sum(values))


class LineMetrics:
    """The duty service's registry, and the cursor that feeds the turn latency histogram."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._database = _FromDatabase()
        self.registry.register(self._database)
        self.turn_latency = Histogram(
            "line_turn_latency_seconds",
            "Seconds from a person's message arriving to the assistant's first reply "
            "(queue wait included).",
            buckets=TURN_BUCKETS, registry=self.registry,
        )
        self._cursor: Optional[int] = None  # last tracker row read; None until the first scrape
        # Messages waiting for their reply, by conversation: bounded in number and in age.
        self._waiting: TTLCache = TTLCache(maxsize=50_000, ttl=TURN_PAIRING_S)
        # Scrapes run in the database threads; two at once must not read the same rows twice.
        self._lock = threading.Lock()

    def scrape(self, engine: Engine) -> bytes:
        with self._lock:
            self._observe_turns(engine)
            self._database.engine = engine
            try:
                return generate_latest(self.registry)
            finally:
                self._database.engine = None

    def _observe_turns(self, engine: Engine) -> None:
        ev = transcripts.RASA_EVENTS
        with engine.connect() as conn:
            if not transcripts.events_table_exists(conn):
                # Rasa has not made its store yet: every row it writes will be new.
                self._cursor = 0
                return
            if self._cursor is None:
                # Counting starts with this process (a counter starts at 0); a message already
                # waiting for its reply is picked up so its turn is not lost.
                self._cursor = conn.execute(select(func.max(ev.c.id))).scalar() or 0
                recent = conn.execute(
                    select(ev.c.sender_id, ev.c.type_name, ev.c.timestamp, ev.c.data)
                    .where(ev.c.type_name.in_(("user", "bot")))
                    .where(ev.c.timestamp >= time.time() - TURN_PAIRING_S)
                    .where(ev.c.id <= self._cursor)
                    .order_by(ev.c.id)
                ).all()
                for row in recent:
                    self._pair(row, observe=False)
                return
            rows = conn.execute(
                select(ev.c.id, ev.c.sender_id, ev.c.type_name, ev.c.timestamp, ev.c.data)
                .where(ev.c.id > self._cursor)
                .where(ev.c.type_name.in_(("user", "bot")))
                .order_by(ev.c.id)
                .limit(SCAN_LIMIT)
            ).all()
        for row in rows:
            self._pair(row, observe=True)
            self._cursor = row.id

    def _pair(self, row: Any, observe: bool) -> None:
        if row.timestamp is None:
            return
        data = _json(row.data)
        if row.type_name == "user":
            self._waiting[row.sender_id] = arrival(data, row.timestamp)
            return
        metadata = data.get("metadata")
        if isinstance(metadata, dict) and metadata.get("sender") == "staff":
            return  # a person's reply, not the assistant's turn
        arrived = self._waiting.pop(row.sender_id, None)
        if arrived is None:
            return  # a second reply in the same turn, or a message the bot started
        if observe:
            self.turn_latency.observe(max(0.0, row.timestamp - arrived))


# The app's LineMetrics (made by create_app): here, beside its class, not in keys.py, which
# this module's imports (rundb) already import.
METRICS_KEY = web.AppKey("line_metrics", LineMetrics)


async def metrics(request: web.Request) -> web.Response:
    body = await run_db(request, _scrape, request.app[METRICS_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def _scrape(engine: Engine, line_metrics: LineMetrics) -> bytes:
    return line_metrics.scrape(engine)
