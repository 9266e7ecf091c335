"""Every figure of the report, read from the database in a handful of queries.

What is counted (docs/report.md says the same for readers):

- A **contact** is one conversation: a run of one sender's messages (``user`` events in
  Rasa's tracker store) with no gap longer than ``SESSION_GAP_S``, the line's Rasa session
  expiry (``domain.yml`` ``session_expiration_time: 60`` minutes). It belongs to the range
  when its first message does, and is placed by that message's local time (``TZ_LINE``).
- Its **channel**: SMS when the sender is an SMS pseudonym (``sms-...``), web chat when Rasa
  recorded the ``socketio`` channel, otherwise "other" (REST, the terminal).
- Its **risk**: the highest level the risk guard put on any of its messages
  (``parse_data.risk.level``), matched in SQL on the text Rasa stores (``json.dumps``).
- **Escalations** opened in the range, with their audit trail (``escalation_events``): the
  first ``alerted`` entry (first staff alert), ``acknowledged_at``, the first ``taken_over``
  (a human joining), the highest ladder step alerted, ``ladder_exhausted``, the ``resolved``
  entry's outcome code, and the sanctuary referral entries. Times run from the person's
  risk message: the first urgent or imminent message of the conversation in the
  ``RISK_LOOKBACK_S`` before the escalation opened, or the opening itself when there is none
  (a request for a person, the safety net's own record).

Nothing here keeps a sender id, reference or text past the query that groups by it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import case, inspect, literal, select
from sqlalchemy.engine import Engine

from bot.directory import bank_holidays
from bot.escalation.engine import LEVELS, OUTCOMES
from bot.escalation.watch import RASA_EVENTS
from bot.report import feedback
from bot.store.models import Escalation, EscalationEvent

SESSION_GAP_S = 60 * 60
BATCH = 10_000
RISK_LOOKBACK_S = 30 * 60
RISK_LEVELS = ("none", "concern", "urgent", "imminent")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CHANNELS = ("SMS", "web chat", "other")
LEVEL_LABELS = {"support": "wants a person", "urgent": "urgent", "imminent": "imminent"}
TRAIL_KINDS = ("alerted", "taken_over", "resolved", "ladder_exhausted", "referred",
               "referral_accepted", "referral_declined")


@dataclass
class Figure:
    """One table of the report (and one plot when ``chart``).

    ``rows`` are ``[label, value, ...]`` in ``columns`` order. Columns named in ``counts``
    hold counts (suppressed under 5); ``seconds`` columns hold durations, shown only when
    the row's ``basis`` count column is 5 or more. ``partition``: the rows' counts split one
    whole, so a lone suppressed cell must not be recoverable by subtraction.
    """

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    counts: tuple[str, ...] = ("count",)
    seconds: tuple[str, ...] = ()
    basis: str = "count"
    partition: bool = False
    chart: bool = False
    note: str = ""


@dataclass
class Report:
    start: dt.date  # first day, inclusive
    end: dt.date  # last day, inclusive
    tz: str
    contacts: int
    escalations: int
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.contacts == 0 and self.escalations == 0


def bounds(start: dt.date, end: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants of local midnight starting ``start`` and ending ``end``."""
    zone = ZoneInfo(tz)
    first = dt.datetime.combine(start, dt.time(), zone).astimezone(dt.timezone.utc)
    after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
    return first, after.astimezone(dt.timezone.utc)


def percentile(values: list[float], q: float) -> Optional[float]:
    """Nearest-rank percentile (the smallest value with at least ``q`` of them at or below)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)  # SQLite: naive UTC


def _risk_rank():
    data = RASA_EVENTS.c.data
    whens = [(data.like(f'%"risk": {{"level": "{level}"%'), rank)
             for rank, level in reversed(list(enumerate(RISK_LEVELS))) if rank > 0]
    return case(*whens, else_=literal(0))


def _channel():
    return case(
        (RASA_EVENTS.c.sender_id.like("sms-%"), literal(0)),
        (RASA_EVENTS.c.data.like('%"input_channel": "socketio"%'), literal(1)),
        else_=literal(2),
    )


@dataclass
class _Contacts:
    starts: list[dt.datetime] = field(default_factory=list)  # local time of each contact
    channels: Counter = field(default_factory=Counter)
    risk: Counter = field(default_factory=Counter)
    # Per sender, the timestamps of urgent/imminent messages (for the escalations' clocks).
    risk_times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def _read_contacts(conn, first: dt.datetime, after: dt.datetime, zone: ZoneInfo) -> _Contacts:
    out = _Contacts()
    if not inspect(conn).has_table("events"):
        return out  # no Rasa server has written to this database: no contacts yet
    lo, hi = first.timestamp(), after.timestamp()
    query = (
        select(RASA_EVENTS.c.sender_id, RASA_EVENTS.c.timestamp, _channel(), _risk_rank())
        .where(RASA_EVENTS.c.type_name == "user",
               RASA_EVENTS.c.timestamp >= lo - SESSION_GAP_S - RISK_LOOKBACK_S,
               RASA_EVENTS.c.timestamp < hi)
        .order_by(RASA_EVENTS.c.sender_id, RASA_EVENTS.c.timestamp)
    )
    sender: Optional[str] = None
    last = -math.inf
    current: Optional[list] = None  # [start, channel, risk]

    def close(contact: Optional[list]) -> None:
        if contact is not None and contact[0] >= lo:
            out.starts.append(dt.datetime.fromtimestamp(contact[0], zone))
            out.channels[CHANNELS[contact[1]]] += 1
            out.risk[RISK_LEVELS[contact[2]]] += 1

    # A server-side cursor read in batches (a year of a busy line is 250,000 messages or
    # more; partitions rather than row by row: measured 2 s less on bench/report_bench.py).
    result = conn.execution_options(stream_results=True).execute(query)
    for part in result.partitions(BATCH):
        for who, stamp, channel, rank in part:
            if who != sender or stamp - last > SESSION_GAP_S:
                close(current)
                current = [stamp, channel, rank]
                sender = who
            elif rank > current[2]:
                current[2] = rank
            last = stamp
            if rank >= 2:
                out.risk_times[who].append(stamp)
    close(current)
    return out


def _read_escalations(conn, first: dt.datetime, after: dt.datetime):
    escalations = conn.execute(
        select(Escalation.id, Escalation.conversation_id, Escalation.level,
               Escalation.created_at, Escalation.acknowledged_at)
        .where(Escalation.created_at >= first, Escalation.created_at < after)
    ).all()
    trail: dict[int, list] = defaultdict(list)
    if escalations:
        rows = conn.execution_options(stream_results=True).execute(
            select(EscalationEvent.escalation_id, EscalationEvent.kind, EscalationEvent.at,
                   EscalationEvent.data)
            .join(Escalation, Escalation.id == EscalationEvent.escalation_id)
            .where(Escalation.created_at >= first, Escalation.created_at < after,
                   EscalationEvent.kind.in_(TRAIL_KINDS))
            .order_by(EscalationEvent.escalation_id, EscalationEvent.seq)
        )
        for part in rows.partitions(BATCH):
            for escalation_id, kind, at, data in part:
                trail[escalation_id].append((kind, _aware(at), data or {}))
    return escalations, trail


def build(engine: Engine, start: dt.date, end: dt.date, tz: str = "Europe/London",
          nation: Optional[str] = None) -> Report:
    """The report for the local days ``start`` to ``end`` inclusive (counts not yet suppressed)."""
    if end < start:
        raise ValueError("the report's last day is before its first")
    zone = ZoneInfo(tz)
    first, after = bounds(start, end, tz)
    with engine.connect() as conn:
        contacts = _read_contacts(conn, first, after, zone)
        escalations, trail = _read_escalations(conn, first, after)
        from sqlalchemy.orm import Session

        with Session(bind=conn) as session:
            feedback_rows = feedback.feedback_rows(session, first, after)

    report = Report(start, end, tz, len(contacts.starts), len(escalations))
    figs = report.figures
    figs.append(Figure("overview", "Overview", ["what", "count"],
                       [["contacts (conversations)", report.contacts],
                        ["escalations (a person asked for or risk seen)", report.escalations]]))

    hours = Counter(s.hour for s in contacts.starts)
    figs.append(Figure("contacts_by_hour", "Contacts by hour of day (local time)",
                       ["hour", "count"], [[f"{h:02d}:00", hours[h]] for h in range(24)],
                       partition=True, chart=True))
    days = Counter(s.weekday() for s in contacts.starts)
    figs.append(Figure("contacts_by_day", "Contacts by day of the week", ["day", "count"],
                       [[DAYS[d], days[d]] for d in range(7)], partition=True, chart=True))
    holiday_dates = {
        start + dt.timedelta(days=n) for n in range((end - start).days + 1)
        if bank_holidays.is_bank_holiday(start + dt.timedelta(days=n), nation)
    }
    holiday = Counter(s.date() in holiday_dates for s in contacts.starts)
    holiday_days = len(holiday_dates)
    figs.append(Figure(
        "contacts_bank_holidays", "Contacts on bank holidays", ["days", "count"],
        [["on a bank holiday", holiday[True]], ["on other days", holiday[False]]],
        partition=True,
        note=f"{holiday_days} of the {(end - start).days + 1} days in the range were bank "
             "holidays.",
    ))
    figs.append(Figure("contacts_by_channel", "Contacts by channel", ["channel", "count"],
                       [[c, contacts.channels[c]] for c in CHANNELS], partition=True, chart=True))
    figs.append(Figure(
        "risk_levels", "Highest risk seen in a contact", ["risk level", "count"],
        [[level, contacts.risk[level]] for level in RISK_LEVELS], partition=True, chart=True,
        note="The risk guard's reading of what people wrote, the highest in each contact.",
    ))

    figs.extend(_escalation_figures(escalations, trail, contacts.risk_times))

    if feedback_rows is None:
        report.notes.append(
            "Feedback: no survey was offered in this range (people are asked a few questions "
            "after they say goodbye; docs/feedback.md).")
    else:
        figs.append(Figure(
            "feedback", "Feedback in people's own criteria", ["answer", "count"], feedback_rows,
            note="Surveys offered in the range, how many got an answer, and each criterion's "
                 "answers (a skipped question counts as skipped). Free text is never shown "
                 "here."))
    report.notes.append(
        "Unmet need (what people asked for when nothing suitable was open): not recorded. "
        "The line answers from the service directory but keeps no record of a request it "
        "could not meet, so this report cannot count it.")
    return report


def _escalation_figures(escalations, trail, risk_times) -> list[Figure]:
    levels = Counter(row.level for row in escalations)
    to_alert: list[float] = []
    to_ack: list[float] = []
    to_human: list[float] = []
    climbs: Counter = Counter()
    outcomes: Counter = Counter()
    referrals: Counter = Counter()
    exhausted = never_acked = 0
    for esc_id, conversation, _level, created, acked in escalations:
        created = _aware(created)
        began = created.timestamp()
        times = risk_times.get(conversation, [])
        i = bisect.bisect_left(times, began - RISK_LOOKBACK_S)
        if i < len(times) and times[i] <= began:
            began = times[i]
        entries = trail.get(esc_id, [])
        alerted = [at for kind, at, _ in entries if kind == "alerted"]
        taken = [at for kind, at, _ in entries if kind == "taken_over"]
        if alerted:
            to_alert.append(max(0.0, alerted[0].timestamp() - began))
        if acked is not None:
            to_ack.append(max(0.0, _aware(acked).timestamp() - began))
        else:
            never_acked += 1
        if taken:
            to_human.append(max(0.0, taken[0].timestamp() - began))
        steps = [int(data.get("step") or 0) for kind, _, data in entries if kind == "alerted"]
        if steps:
            climbs[min(max(steps), 2)] += 1
        else:
            climbs["none"] += 1
        if any(kind == "ladder_exhausted" for kind, _, _ in entries):
            exhausted += 1
        resolved = [data.get("outcome") for kind, _, data in entries if kind == "resolved"]
        outcomes[resolved[-1] if resolved and resolved[-1] in OUTCOMES else "open"] += 1
        referred = sum(1 for kind, _, _ in entries if kind == "referred")
        if referred:
            referrals["referred"] += referred
            accepted = sum(1 for kind, _, _ in entries if kind == "referral_accepted")
            declined = sum(1 for kind, _, _ in entries if kind == "referral_declined")
            referrals["accepted"] += accepted
            referrals["declined"] += declined
            referrals["no answer recorded"] += max(0, referred - accepted - declined)

    def timing(label: str, values: list[float]) -> list[Any]:
        return [label, len(values), percentile(values, 0.5), percentile(values, 0.9)]

    figs = [
        Figure("escalation_levels", "Escalations by level", ["level", "count"],
               [[LEVEL_LABELS[level], levels[level]] for level in LEVELS], partition=True,
               chart=True),
        Figure(
            "time_to_human", "From a risk message to staff (minutes)",
            ["step", "count", "p50_seconds", "p90_seconds"],
            [timing("to the first staff alert", to_alert),
             timing("to acknowledgement", to_ack),
             timing("to a human joining the conversation", to_human)],
            seconds=("p50_seconds", "p90_seconds"),
            note="Half of the escalations measured took no longer than p50, nine in ten no "
                 "longer than p90. Shown only when 5 or more were measured.",
        ),
        Figure("ladder", "How far the alert ladder climbed", ["alerts reached", "count"],
               [["no alert sent", climbs["none"]], ["first tier", climbs[0]],
                ["second tier", climbs[1]], ["third tier or later", climbs[2]]],
               partition=True),
        Figure("unacknowledged", "Escalations nobody acknowledged", ["what", "count"],
               [["every tier alerted and none acknowledged in time (ladder exhausted)",
                 exhausted],
                ["never acknowledged at all", never_acked]]),
        Figure("outcomes", "Outcomes recorded by staff", ["outcome", "count"],
               [[OUTCOMES[code], outcomes[code]] for code in OUTCOMES]
               + [["not resolved yet", outcomes["open"]]], partition=True, chart=True),
        Figure("sanctuary", "Referrals to sanctuary houses and their answers",
               ["what", "count"],
               [[label, referrals[label]] for label in
                ("referred", "accepted", "declined", "no answer recorded")]),
    ]
    return figs
