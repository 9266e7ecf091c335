"""A generated year of the line for the report: conversations in Rasa's ``events`` table
(their messages and slot events, carers among them), escalations with their trail, unmet
needs, and feedback surveys with their answers (and free text the report must never show).
Used by ``bench/report_bench.py`` (100,000 conversations) and ``tests/report`` (a few
hundred, whose figures the tests count again from ``World``).

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
from sqlalchemy.orm import Session

from bot.directory.unmet import PLACE_NOT_GIVEN, PLACE_UNKNOWN
from bot.escalation.engine import OUTCOMES
from bot.escalation.watch import RASA_EVENTS
from bot.store.models import Escalation, EscalationEvent
from bot.store.models.directory import UnmetNeed
from bot.store.models.feedback import FeedbackAnswer, FeedbackComment, FeedbackSurvey

UTC = dt.timezone.utc
RISKS = ("none", "concern", "urgent", "imminent")


@dataclass
class Conversation:
    sender: str
    channel: str  # SMS, web chat, other
    messages: list[tuple[dt.datetime, str]]  # (when, risk level)
    # How the person showed they are a carer: a carers' intent on a message ("intent"), the
    # audience slot set to carers by an action ("slot"), or not at all (None).
    carer_by: Optional[str] = None

    @property
    def carer(self) -> bool:
        return self.carer_by is not None

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
class Unmet:
    conversation: Conversation
    at: dt.datetime
    need: str
    place: str  # a directory place key, or bot.directory.unmet's "not given" / "not in ..."


@dataclass
class Survey:
    conversation: Conversation
    offered_at: dt.datetime
    set_name: str
    # (question id, criterion, choice number or None when skipped, word or None)
    answers: list[tuple[str, str, Optional[int], Optional[str]]]
    comment: Optional[str] = None


@dataclass
class World:
    conversations: list[Conversation] = field(default_factory=list)
    escalations: list[Esc] = field(default_factory=list)
    unmet: list[Unmet] = field(default_factory=list)
    surveys: list[Survey] = field(default_factory=list)


# Places of data/services/somerset.yml (and one key no longer in it), and the needs that
# depend on a place: what an unmet request is made of.
UNMET_PLACES = ("bridgwater", "taunton", "yeovil", "frome", "minehead", "somerset",
                "old-district", PLACE_UNKNOWN, PLACE_NOT_GIVEN)
UNMET_NEEDS = ("sanctuary", "housing", "money", "advocacy", "peer_support", "carers",
               "pharmacy")
# The shipped questions (data/feedback/questions.yml): set -> (id, criterion, choices).
QUESTIONS = {
    "default": (("listened", "listened", ("yes", "partly", "no")),
                ("valued", "valued", ("yes", "partly", "no")),
                ("connected", "connected", ("yes", "partly", "no", "didn't need it"))),
    "carers": (("carer_listened", "listened", ("yes", "partly", "no")),
               ("carer_engaged", "engaged", ("yes", "partly", "no")),
               ("carer_connected", "connected", ("yes", "partly", "no", "didn't need it"))),
}
SECRET_COMMENT = "Kestrel-Quartz-Private-Words"


def _user_event(sender: str, at: dt.datetime, channel: str, risk: str,
                intent: str = "greet") -> dict:
    input_channel = {"SMS": "sms", "web chat": "socketio", "other": "rest"}[channel]
    # The shape Rasa 3.6 saves (json.dumps of the event's as_dict), cut to what matters here.
    # The ranking names a carers' intent on every message: only the top intent counts.
    data = {
        "event": "user", "timestamp": at.timestamp(), "metadata": {}, "text": None,
        "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": [],
                       "intent_ranking": [{"name": intent, "confidence": 0.9},
                                          {"name": "carer_how_to_help", "confidence": 0.05}],
                       "risk": {"level": risk, "signals": [] if risk == "none" else ["x"]}},
        "input_channel": input_channel, "message_id": uuid.uuid4().hex,
    }
    return {"sender_id": sender, "type_name": "user", "timestamp": at.timestamp(),
            "intent_name": intent, "action_name": None, "data": json.dumps(data)}


def _slot_event(sender: str, at: dt.datetime, name: str, value) -> dict:
    # SlotSet.as_dict() as Rasa 3.6 saves it (action_name: the slot's name).
    data = {"event": "slot", "timestamp": at.timestamp(), "name": name, "value": value}
    return {"sender_id": sender, "type_name": "slot", "timestamp": at.timestamp(),
            "intent_name": None, "action_name": name, "data": json.dumps(data)}


def _events(conv: Conversation) -> list[dict]:
    rows = []
    for n, (at, risk) in enumerate(conv.messages):
        intent = "carer_how_to_help" if conv.carer_by == "intent" and n == 0 else "greet"
        rows.append(_user_event(conv.sender, at, conv.channel, risk, intent))
        after = at + dt.timedelta(seconds=1)
        if n == len(conv.messages) - 1:
            # What action_find_services sets: carers, or (for others) no audience.
            rows.append(_slot_event(conv.sender, after, "audience",
                                    "carers" if conv.carer_by == "slot" else None))
        rows.append(_slot_event(conv.sender, after, "risk_level", risk))
    return rows


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
    _carers_unmet_and_feedback(world, random.Random(seed + 1))
    return world


def _carers_unmet_and_feedback(world: World, rng: random.Random) -> None:
    """Carers, unmet needs and survey answers, from a generator of their own (so the rest of
    a seed's world is what it always was)."""
    for conv in world.conversations:
        roll = rng.random()
        conv.carer_by = "intent" if roll < 0.12 else "slot" if roll < 0.2 else None
        last = conv.messages[-1][0]
        if rng.random() < 0.15:
            need = "carers" if conv.carer and rng.random() < 0.5 else rng.choices(
                UNMET_NEEDS, (8, 5, 3, 2, 2, 1, 1))[0]
            place = rng.choices(UNMET_PLACES, (10, 6, 4, 2, 1, 1, 1, 2, 3))[0]
            world.unmet.append(Unmet(conv, last + dt.timedelta(seconds=2), need, place))
        if rng.random() < 0.3:
            set_name = "carers" if conv.carer else "default"
            answers: list[tuple[str, str, Optional[int], Optional[str]]] = []
            comment = None
            if rng.random() < 0.65:  # otherwise declined or never answered
                for qid, criterion, choices in QUESTIONS[set_name]:
                    if rng.random() < 0.12:
                        answers.append((qid, criterion, None, None))
                    else:
                        pick = rng.choices(range(len(choices)), (6, 2, 1, 1)[:len(choices)])[0]
                        answers.append((qid, criterion, pick + 1, choices[pick]))
                if rng.random() < 0.2:
                    comment = SECRET_COMMENT
            world.surveys.append(Survey(conv, last + dt.timedelta(seconds=30), set_name,
                                        answers, comment))


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
            rows.extend(_events(conv))
            if len(rows) >= batch:
                conn.execute(insert(RASA_EVENTS), rows)
                rows = []
        if rows:
            conn.execute(insert(RASA_EVENTS), rows)
    _load_unmet_and_feedback(engine, world, batch)
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


def _load_unmet_and_feedback(engine: Engine, world: World, batch: int) -> None:
    with engine.begin() as conn:
        for start in range(0, len(world.unmet), batch):
            conn.execute(insert(UnmetNeed.__table__), [
                {"conversation_id": u.conversation.sender, "need": u.need, "place": u.place,
                 "asked_at": u.at} for u in world.unmet[start:start + batch]])
    with Session(engine) as session, session.begin():
        for survey in world.surveys:
            conv = survey.conversation.sender
            status = "done" if survey.answers else "declined"
            record = FeedbackSurvey(
                conversation_id=conv, person=conv,
                channel={"SMS": "sms", "web chat": "socketio"}.get(survey.conversation.channel,
                                                                   "rest"),
                trigger="goodbye", set_name=survey.set_name, status=status,
                position=len(survey.answers), retried=False, offered_at=survey.offered_at,
                updated_at=survey.offered_at, ended_at=survey.offered_at)
            session.add(record)
            session.flush()
            at = survey.offered_at
            for qid, criterion, choice, value in survey.answers:
                at += dt.timedelta(seconds=20)
                session.add(FeedbackAnswer(
                    survey_id=record.id, conversation_id=conv, set_name=survey.set_name,
                    question_id=qid, criterion=criterion, choice=choice, value=value,
                    answered_at=at))
            if survey.comment is not None:
                session.add(FeedbackComment(survey_id=record.id, conversation_id=conv,
                                            question_id="anything_else", text=survey.comment,
                                            at=at))
