"""A generated year of the line for the report: conversations in Rasa's ``events`` table,
escalations with their trail. Used by ``bench/report_bench.py`` (100,000 conversations) and
``tests/report`` (a few hundred, whose figures the tests count again from ``World``).

Deterministic for a seed. No real person's anything: senders are random hex, there is no
message text (the ``user`` events carry only what the report reads: the channel and the risk
guard's level), and the trail's hashes are placeholders (the report does not verify them).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from bot.escalation.engine import OUTCOMES
from bot.escalation.watch import RASA_EVENTS
from bot.store.models import Escalation, EscalationEvent

UTC = dt.timezone.utc
RISKS = ("none", "concern", "urgent", "imminent")


@dataclass
class Conversation:
    sender: str
    channel: str  # SMS, web chat, other
    messages: list[tuple[dt.datetime, str]]  # (when, risk level)

    @property
    def start(self) -> dt.datetime:
        return self.messages[0][0]

    @property
    def risk(self) -> str:
        return max((r for _, r in self.messages), key=RISKS.index)


@dataclass
class Esc:
    conversation: Conversation
    level: str
    risk_at: dt.datetime  # the message the clocks start from
    created_at: dt.datetime
    alerted_at: Optional[dt.datetime]
    top_step: Optional[int]
    exhausted: bool
    acknowledged_at: Optional[dt.datetime]
    taken_at: Optional[dt.datetime]
    referral: Optional[str]  # None, "accepted", "declined", "no answer"
    outcome: Optional[str]


@dataclass
class World:
    conversations: list[Conversation] = field(default_factory=list)
    escalations: list[Esc] = field(default_factory=list)


def _user_event(sender: str, at: dt.datetime, channel: str, risk: str) -> dict:
    input_channel = {"SMS": "sms", "web chat": "socketio", "other": "rest"}[channel]
    # The shape Rasa 3.6 saves (json.dumps of the event's as_dict), cut to what matters here.
    data = {
        "event": "user", "timestamp": at.timestamp(), "metadata": {}, "text": None,
        "parse_data": {"intent": {"name": "greet", "confidence": 0.9}, "entities": [],
                       "risk": {"level": risk, "signals": [] if risk == "none" else ["x"]}},
        "input_channel": input_channel, "message_id": uuid.uuid4().hex,
    }
    return {"sender_id": sender, "type_name": "user", "timestamp": at.timestamp(),
            "data": json.dumps(data)}


def generate(conversations: int, escalations: int, year: int = 2025, seed: int = 26) -> World:
    rng = random.Random(seed)
    world = World()
    first = dt.datetime(year, 1, 1, 1, tzinfo=UTC)  # 01:00 UTC is in the local year too
    span = (dt.datetime(year, 12, 31, 20, tzinfo=UTC) - first).total_seconds()
    repeat_pool: list[tuple[str, str]] = []
    starts: dict[str, list[dt.datetime]] = {}
    for _ in range(conversations):
        start = (first + dt.timedelta(seconds=rng.random() * span)).replace(microsecond=0)
        sender = None
        if repeat_pool and rng.random() < 0.1:
            # A second contact from the same person, at least three hours from any other
            # (closer, the line would see one conversation: figures.SESSION_GAP_S).
            sender, channel = rng.choice(repeat_pool)
            if any(abs((start - s).total_seconds()) < 3 * 3600 for s in starts[sender]):
                sender = None
        if sender is None:
            channel = rng.choices(("SMS", "web chat", "other"), (6, 3, 1))[0]
            sender = ("sms-" + uuid.UUID(int=rng.getrandbits(128)).hex if channel == "SMS"
                      else uuid.UUID(int=rng.getrandbits(128)).hex)
            repeat_pool.append((sender, channel))
        starts.setdefault(sender, []).append(start)
        n = rng.randint(1, 4)
        risk = rng.choices(RISKS, (60, 20, 15, 5))[0]
        peak = rng.randrange(n)
        at = start
        messages = []
        for i in range(n):
            level = risk if i == peak else ("concern" if risk != "none" and rng.random() < 0.3
                                            and RISKS.index(risk) > 1 else "none")
            messages.append((at, level))
            at += dt.timedelta(seconds=rng.randint(30, 600))
        world.conversations.append(Conversation(sender, channel, messages))

    # Escalations: mostly on conversations that showed urgent or imminent risk.
    risky = [c for c in world.conversations if c.risk in ("urgent", "imminent")]
    calm = [c for c in world.conversations if c.risk not in ("urgent", "imminent")]
    rng.shuffle(risky)
    rng.shuffle(calm)
    chosen = (risky + calm)[:escalations]
    seen_live: set[str] = set()
    for conv in chosen:
        if conv.risk in ("urgent", "imminent"):
            risk_at = next(at for at, r in conv.messages if r == conv.risk)
            level = conv.risk
        else:
            risk_at = None
            level = "support"
        created = (risk_at or conv.messages[-1][0]) + dt.timedelta(seconds=rng.randint(1, 4))
        risk_at = risk_at or created
        alerted = created + dt.timedelta(seconds=rng.randint(0, 20)) if rng.random() < 0.95 else None
        top = None
        if alerted is not None:
            top = rng.choices((0, 1, 2, 3), (70, 20, 7, 3))[0]
        exhausted = alerted is not None and top is not None and top >= 2 and rng.random() < 0.5
        acked = None
        if rng.random() < 0.85:
            acked = created + dt.timedelta(seconds=rng.randint(20, 1800))
        taken = None
        if acked is not None and rng.random() < 0.6:
            taken = acked + dt.timedelta(seconds=rng.randint(0, 300))
        referral = None
        if acked is not None and rng.random() < 0.1:
            referral = rng.choice(("accepted", "declined", "no answer"))
        outcome = rng.choice(list(OUTCOMES)) if rng.random() < 0.9 else None
        world.escalations.append(Esc(conv, level, risk_at, created, alerted, top, exhausted,
                                     acked, taken, referral, outcome))
        seen_live.add(conv.sender)
    return world


def _trail(esc: Esc) -> list[tuple[str, dt.datetime, dict]]:
    entries: list[tuple[str, dt.datetime, dict]] = [("created", esc.created_at, {"level": esc.level})]
    if esc.alerted_at is not None:
        for step in range((esc.top_step or 0) + 1):
            entries.append(("alerted", esc.alerted_at + dt.timedelta(seconds=120 * step),
                            {"tier": f"t{step}", "step": step, "staff": ["s1"]}))
        if esc.exhausted:
            entries.append(("ladder_exhausted",
                            esc.alerted_at + dt.timedelta(seconds=120 * ((esc.top_step or 0) + 1)),
                            {"level": esc.level}))
    last = esc.alerted_at or esc.created_at
    if esc.acknowledged_at is not None:
        entries.append(("acknowledged", esc.acknowledged_at, {"from": "alerted"}))
        last = esc.acknowledged_at
    if esc.taken_at is not None:
        entries.append(("taken_over", esc.taken_at, {"staff": "staff:x", "display_name": "Sam"}))
        last = esc.taken_at
        entries.append(("handed_back", last + dt.timedelta(seconds=600), {}))
        last = last + dt.timedelta(seconds=600)
    if esc.referral is not None:
        last = last + dt.timedelta(seconds=60)
        entries.append(("referred", last, {"house": "harbour_house"}))
        if esc.referral != "no answer":
            last = last + dt.timedelta(seconds=60)
            entries.append((f"referral_{esc.referral}", last, {"house": "harbour_house"}))
    if esc.outcome is not None:
        entries.append(("resolved", last + dt.timedelta(seconds=60), {"outcome": esc.outcome}))
    entries.sort(key=lambda e: e[1])
    return entries


def _status(esc: Esc) -> str:
    if esc.outcome is not None:
        return "resolved"
    if esc.referral in ("accepted", "no answer"):
        return "referred"
    if esc.acknowledged_at is not None:
        return "acknowledged"
    return "alerted" if esc.alerted_at is not None else "open"


def load(engine: Engine, world: World, batch: int = 5000) -> None:
    """Write ``world`` into a migrated database (creating Rasa's ``events`` table if needed)."""
    RASA_EVENTS.metadata.create_all(engine)
    with engine.begin() as conn:
        # Rasa 3.6 indexes events by sender; the bench's database should look like a line's.
        # (Plain SQL: an Index object would attach itself to the shared RASA_EVENTS table.)
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_report_events_sender ON events (sender_id)")
    rows: list[dict] = []
    with engine.begin() as conn:
        for conv in world.conversations:
            for at, risk in conv.messages:
                rows.append(_user_event(conv.sender, at, conv.channel, risk))
                if len(rows) >= batch:
                    conn.execute(insert(RASA_EVENTS), rows)
                    rows = []
        if rows:
            conn.execute(insert(RASA_EVENTS), rows)
    with engine.begin() as conn:
        start_id = 1 + (conn.execute(Escalation.__table__.select().with_only_columns(
            Escalation.__table__.c.id).order_by(Escalation.__table__.c.id.desc()).limit(1)
        ).scalar() or 0)
        esc_rows, event_rows = [], []
        for i, esc in enumerate(world.escalations):
            esc_id = start_id + i
            esc_rows.append({
                "id": esc_id, "ref": f"G{esc_id:07d}"[-12:],
                "conversation_id": esc.conversation.sender,
                "channel": esc.conversation.channel, "level": esc.level,
                "status": _status(esc), "signals": [], "summary": {},
                "created_at": esc.created_at, "updated_at": esc.created_at,
                "acknowledged_at": esc.acknowledged_at, "resolved_at": None,
            })
            for seq, (kind, at, data) in enumerate(_trail(esc), start=1):
                event_rows.append({"escalation_id": esc_id, "seq": seq, "at": at, "kind": kind,
                                   "actor": "system:generated", "reason": "", "data": data,
                                   "prev_hash": "0" * 64, "hash": "0" * 64})
            if len(event_rows) >= batch:
                conn.execute(insert(Escalation.__table__), esc_rows)
                conn.execute(insert(EscalationEvent.__table__), event_rows)
                esc_rows, event_rows = [], []
        if esc_rows:
            conn.execute(insert(Escalation.__table__), esc_rows)
        if event_rows:
            conn.execute(insert(EscalationEvent.__table__), event_rows)
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('escalations', 'id'), "
                "(SELECT max(id) FROM escalations))")
