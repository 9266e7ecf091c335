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

from sqlalchemy import and_, case, inspect, literal, or_, select
from sqlalchemy.engine import Engine

from bot.directory import bank_holidays
from bot.escalation.engine import LEVELS, OUTCOMES
from bot.store.rasa_events import RASA_EVENTS
from bot.directory.needs import CARER_INTENTS, NEEDS
from bot.directory.query import NEED_WORDS
from bot.feedback.questions import CRITERIA
from bot.report import feedback, unmet
from bot.store.models import Escalation, EscalationEvent

SESSION_GAP_S = 60 * 60
BATCH = 10_000
RISK_LOOKBACK_S = 30 * 60
RISK_LEVELS = ("none", "concern", "urgent", "imminent")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CHANNELS = ("SMS", "web chat", "other")
AUDIENCES = ("service users", "carers")
LEVEL_LABELS = {"support": "wants a person", "urgent": "urgent", "imminent": "imminent"}
# A place and need are named in the unmet need table only when asked for this often (the
# suppression threshold: a named pair under it would say "at least one" where a blank cannot).
SHOWN_PAIR = 5
TRAIL_KINDS = ("alerted", "taken_over", "resolved", "ladder_exhausted", "referred",
               "referral_accepted", "referral_declined")


@dataclass
class Figure:
    """One table of the report (and one plot when ``chart``).

    ``rows`` are ``[label, value, ...]`` in ``columns`` order. Columns named in ``counts``
    hold counts (suppressed under 5); ``seconds`` columns hold durations, shown only when
    the row's ``basis`` count column is 5 or more. ``partition``: the rows' counts split one
    whole, so a lone suppressed cell must not be recoverable by subtraction. ``row_parts``
    split the row's ``row_total`` the same way, across a row. ``rates``: a percentage column
    and the (numerator, denominator) count columns it is worked out from; shown only when
    both are. ``plot``: ``bars`` (the first count column) or ``months`` (each ``row_parts``
    column as a share of ``row_total``, and each rate, month by month).
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
    row_total: str = ""
    row_parts: tuple[str, ...] = ()
    rates: dict[str, tuple[str, str]] = field(default_factory=dict)
    plot: str = "bars"


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


# A carer's contact: a message whose top intent (Rasa's intent_name column) is one of the
# carers' intents, or the audience slot set to carers (by action_find_services; a slot
# event's action_name is the slot's name). Columns, not the JSON text: cheaper to match.
_CARER_SLOT = '%"value": "carers"%'


def _carer():
    return case(
        (RASA_EVENTS.c.type_name == "slot", literal(1)),  # only carers' slots are read
        (RASA_EVENTS.c.intent_name.in_(CARER_INTENTS), literal(1)),
        else_=literal(0),
    )


@dataclass
class _Contacts:
    starts: list[dt.datetime] = field(default_factory=list)  # local time of each contact
    channels: Counter = field(default_factory=Counter)
    risk: Counter = field(default_factory=Counter)
    audience: Counter = field(default_factory=Counter)
    # Per sender, the timestamps of urgent/imminent messages (for the escalations' clocks).
    risk_times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def _read_contacts(conn, first: dt.datetime, after: dt.datetime, zone: ZoneInfo) -> _Contacts:
    out = _Contacts()
    if not inspect(conn).has_table("events"):
        return out  # no Rasa server has written to this database: no contacts yet
    lo, hi = first.timestamp(), after.timestamp()
    kind = RASA_EVENTS.c.type_name
    query = (
        select(RASA_EVENTS.c.sender_id, RASA_EVENTS.c.timestamp, _channel(), _risk_rank(),
               _carer(), kind == "slot")
        .where(or_(kind == "user",
                   and_(kind == "slot", RASA_EVENTS.c.action_name == "audience",
                        RASA_EVENTS.c.data.like(_CARER_SLOT))),
               RASA_EVENTS.c.timestamp >= lo - SESSION_GAP_S - RISK_LOOKBACK_S,
               RASA_EVENTS.c.timestamp < hi)
        .order_by(RASA_EVENTS.c.sender_id, RASA_EVENTS.c.timestamp)
    )
    sender: Optional[str] = None
    last = -math.inf
    current: Optional[list] = None  # [start, channel, risk, carer]

    def close(contact: Optional[list]) -> None:
        if contact is not None and contact[0] >= lo:
            out.starts.append(dt.datetime.fromtimestamp(contact[0], zone))
            out.channels[CHANNELS[contact[1]]] += 1
            out.risk[RISK_LEVELS[contact[2]]] += 1
            out.audience[AUDIENCES[contact[3]]] += 1

    # A server-side cursor read in batches (a year of a busy line is 250,000 messages or
    # more; partitions rather than row by row: measured 2 s less on bench/report_bench.py).
    result = conn.execution_options(stream_results=True).execute(query)
    for part in result.partitions(BATCH):
        for who, stamp, channel, rank, carer, slot in part:
            if slot:
                # Set by an action during a turn: it marks the contact it falls in, and
                # neither starts one nor keeps one open.
                if current is not None and who == sender and stamp - last <= SESSION_GAP_S:
                    current[3] = 1
                continue
            if who != sender or stamp - last > SESSION_GAP_S:
                close(current)
                current = [stamp, channel, rank, carer]
                sender = who
            else:
                current[2] = max(current[2], rank)
                current[3] = max(current[3], carer)
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
            by_month = feedback.monthly(session, first, after, zone) if feedback_rows else None
            unmet_counts = unmet.counts(session, first, after)
            places = unmet.places(session)

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
        "contacts_by_audience", "Contacts: carers and service users", ["who", "count"],
        [[a, contacts.audience[a]] for a in AUDIENCES], partition=True, chart=True,
        note="A carer's contact: the person asked as a family member, friend or carer (the "
             "carers' questions, or services for carers). Every other contact counts as a "
             "service user's.",
    ))
    figs.append(Figure(
        "risk_levels", "Highest risk seen in a contact", ["risk level", "count"],
        [[level, contacts.risk[level]] for level in RISK_LEVELS], partition=True, chart=True,
        note="The risk guard's reading of what people wrote, the highest in each contact.",
    ))

    figs.extend(_escalation_figures(escalations, trail, contacts.risk_times))
    figs.extend(_unmet_figures(unmet_counts, places))

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
        whole = start.day == 1 and (end + dt.timedelta(days=1)).day == 1
        figs.extend(_feedback_month_figures(by_month, months(start, end), whole))
    return report


def months(start: dt.date, end: dt.date) -> list[tuple[int, int]]:
    """The calendar months the range touches, first to last."""
    out, (year, month) = [], (start.year, start.month)
    while (year, month) <= (end.year, end.month):
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def month_label(month: tuple[int, int]) -> str:
    return dt.date(month[0], month[1], 1).strftime("%b %Y")


def _rate(part: int, whole: int) -> Optional[float]:
    return 100.0 * part / whole if whole else None


def _feedback_month_figures(data: "feedback.Monthly", span: list[tuple[int, int]],
                            whole: bool) -> list[Figure]:
    partial = "" if whole else "A month the range does not cover whole counts its days in it."
    figs = [Figure(
        "feedback_by_month", "Feedback month by month: surveys offered and answered",
        ["month", "surveys offered", "with an answer", "response rate"],
        [[month_label(m), data.offered[m], data.responded[m],
          _rate(data.responded[m], data.offered[m])] for m in span],
        counts=("surveys offered", "with an answer"),
        rates={"response rate": ("with an answer", "surveys offered")},
        partition=True, chart=True, plot="months",
        note="The response rate is the share of surveys offered that month with at least one "
             f"answer, shown only when both counts are. {partial}".strip(),
    )]
    for criterion in [c for c in CRITERIA if c in data.criteria] + sorted(
            c for c in data.criteria if c not in CRITERIA):
        counts = data.criteria[criterion]
        fixed = ("month", "surveys offered", "answered", "response rate", "skipped")
        words = sorted(counts.values, key=lambda v: (counts.position.get(v, 99), v))
        columns = [v if v not in fixed else f"{v} (answer)" for v in words]
        rows = []
        for m in span:
            rows.append([month_label(m), counts.offered[m], counts.answered[m],
                         _rate(counts.answered[m], counts.offered[m]),
                         *[counts.values[v][m] for v in words], counts.skipped[m]])
        name = CRITERIA.get(criterion, criterion)
        figs.append(Figure(
            f"feedback_{criterion}", f"Feedback over time: {name}",
            ["month", "surveys offered", "answered", "response rate", *columns, "skipped"],
            rows, counts=("surveys offered", "answered", *columns, "skipped"),
            rates={"response rate": ("answered", "surveys offered")},
            row_total="answered", row_parts=tuple(columns),
            partition=True, chart=True, plot="months",
            note=f"Each month: the surveys offered whose questions include \u201c{name}\u201d "
                 "(a question set that asks it), how many answered that question (its response "
                 "rate) and with which answer, and how many skipped it. The plot shows each "
                 "answer as a share of the month's answers, and the response rate, where they "
                 f"are shown. {partial}".strip(),
        ))
    return figs


def _unmet_figures(pairs: Counter, places: list[tuple[str, str]]) -> list[Figure]:
    names = dict(places)
    names.update(unmet.SPECIAL_PLACES)

    def place_label(key: str) -> str:
        return names.get(key, key)

    def need_label(need: str) -> str:
        return NEED_WORDS.get(need, need)

    by_need = Counter()
    by_place = Counter()
    for (need, place), n in pairs.items():
        by_need[need] += n
        by_place[place] += n
    place_keys = [k for k, _ in places] + sorted(
        k for k in by_place if k not in names) + list(unmet.SPECIAL_PLACES)
    shown = sorted(((n, need_label(need), place_label(place)) for (need, place), n
                    in pairs.items() if n >= SHOWN_PAIR), key=lambda t: (-t[0], t[2], t[1]))
    rest = sum(pairs.values()) - sum(n for n, _, _ in shown)
    what = "nothing suitable was open"
    return [
        Figure(
            "unmet_need", "Unmet need: what people asked for, by place and need, when "
            f"{what}", ["place and need", "count"],
            [[f"{place}: {need}", n] for n, need, place in shown]
            + [[f"every other place and need (each fewer than {SHOWN_PAIR})", rest]],
            note="A request is unmet when the directory had no service for that need, serving "
                 "that place, open with room when the person asked (the answer still named "
                 "the lines open across the UK). One conversation asking the same again within "
                 "the hour counts once. A place and need asked for fewer than "
                 f"{SHOWN_PAIR} times is not named. Counted since the line began to keep "
                 "it (migration 0014_unmet_need); a range before then shows none.",
        ),
        Figure("unmet_need_by_need", "Unmet need by need", ["need", "count"],
               [[need_label(need), by_need[need]] for need in NEEDS]
               + [[need, by_need[need]] for need in sorted(by_need) if need not in NEEDS],
               partition=True, chart=True),
        Figure("unmet_need_by_place", "Unmet need by place", ["place", "count"],
               [[place_label(key), by_place[key]] for key in place_keys],
               partition=True, chart=True,
               note="Places as the directory names them (a town, or the county when that is "
                    "all the person said); never the words or postcode the person gave."),
    ]


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
