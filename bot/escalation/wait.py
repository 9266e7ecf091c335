"""An honest wait: what a person waiting for a human is told, and when (issue 27, part 3).

A person who asked for a human (or whose risk opened an escalation) used to hear "it may take
a few minutes" and then nothing until someone joined. The duty service's wait watcher
(``bot/escalation/wait_watch.py``) now sends them an update every ``WAIT_UPDATE_SECONDS``
while their escalation waits (``open`` or ``alerted``: nobody has acknowledged, taken it over
or resolved it). This module is that watcher's policy and database work:

- ``estimate``: the numbers, from the live queue and the rota: people waiting before this one,
  staff on call now in this escalation's ladder, and the median time from an escalation to
  its acknowledgement over recent ones of the same level. With too little history (fewer
  than ``MIN_SAMPLES``) or nobody on call, there is no estimate, and the person is told so.
- ``wait_text``: the words. Always worded as an estimate, never a promise; always the
  emergency numbers; an offer of the calming exercise (CALM) and, when the person has a
  crisis plan, of their plan (PLAN); "I'll tell you when a person joins". One SMS (at most
  306 GSM-7 characters) whatever the numbers.
- ``due``: escalations whose next update is due.
- ``claim_update``: one transaction under the escalation's row lock (the lock every transition
  takes) re-checks that it still waits and that the update is still due, then puts a
  ``wait_update`` entry on the trail (the numbers, never the text). So an update is never
  claimed after a take-over, an acknowledgement or a resolution has committed, and two duty
  services never send the same update. ``record_unsent`` notes one that did not go.

The update itself goes through the Rasa server's staff relay (``/webhooks/relay/wait``),
which refuses it once the conversation is paused for a human: a take-over that commits
between the claim and the send still never has a wait message after "has joined".
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Optional

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from bot.escalation import audit, engine
from bot.escalation import rota as rota_module
from bot.store.db import transaction
from bot.store.models import Escalation, EscalationEvent, utcnow

# Statuses in which a person waits for a human (nobody has picked the escalation up).
WAITING = engine.ALERTABLE
# Channels the staff relay delivers on (``bot/channels/relay.py``): a REST conversation (tests,
# integrations) has no one to text.
CHANNELS = ("sms", "socketio", "webchat")
UPDATE_KIND = "wait_update"
UNSENT_KIND = "wait_update_unsent"
ACTOR = "system:wait"
# Acknowledged escalations of the same level within this many days make the history; at
# least MIN_SAMPLES of them, or the person is told "I don't know yet".
RECENT_DAYS = 14
MIN_SAMPLES = 5
HISTORY_LIMIT = 50
# Defaults of the watcher (WAIT_UPDATE_SECONDS is the setting).
UPDATE_S = 180.0
MAX_UPDATES = 10
# A duty service started after an outage does not text people about escalations opened
# longer ago than this (they are waiting still, but staff see them; a sudden burst of
# "still waiting" texts hours later would be worse than none).
WINDOW_S = 2 * 3600.0

# How the update is worded (``WaitEstimate.wording``), also on the trail.
ESTIMATE = "estimate"  # enough history and someone on call: about N minutes
LONGER = "longer_than_usual"  # waited past the estimate already
UNKNOWN = "unknown"  # too little history: "I don't know yet how long"
NOBODY = "nobody_on_call"  # nobody on call in this escalation's ladder now
UNREACHED = "unreached"  # the whole ladder went unanswered (the person was told once)

NUMBERS = ("If you're in danger call 999. Samaritans 116 123 and NHS 111 option 2 "
           "are open now.")


@dataclass(frozen=True)
class WaitEstimate:
    """The numbers behind one update; all of them go on the trail."""

    ahead: int  # escalations waiting that were opened before this one
    on_call: int  # staff on call now in this escalation's ladder
    samples: int  # recent acknowledged escalations of this level
    median_s: Optional[float]  # their median time from opening to acknowledgement
    waited_s: float
    unreached: bool = False  # the ladder was exhausted (``ladder_exhausted`` on the trail)

    @property
    def minutes(self) -> Optional[int]:
        """Minutes still to wait, by the estimate: the median time to a human for each round
        of the queue (``ahead + 1`` people shared among ``on_call`` staff), less the time
        already waited. None without an estimate; 0 when that time has already passed."""
        if self.median_s is None or self.samples < MIN_SAMPLES or self.on_call < 1:
            return None
        rounds = math.ceil((self.ahead + 1) / self.on_call)
        left = self.median_s * rounds - self.waited_s
        return max(0, math.ceil(left / 60.0))

    @property
    def wording(self) -> str:
        if self.unreached:
            return UNREACHED
        if self.on_call < 1:
            return NOBODY
        minutes = self.minutes
        if minutes is None:
            return UNKNOWN
        return LONGER if minutes < 1 else ESTIMATE

    def trail(self) -> dict[str, Any]:
        return {"wording": self.wording, "minutes": self.minutes, "ahead": self.ahead,
                "on_call": self.on_call, "samples": self.samples,
                "median_s": None if self.median_s is None else round(self.median_s, 1),
                "waited_s": round(self.waited_s, 1)}


def _minutes(n: int) -> str:
    return "over an hour" if n > 60 else f"about {n} min"


# The words, each reviewed in docs/safety/safe-messaging-review.md (tests/unit/
# test_safe_messaging_review.py reads them here: a constant, or a function returning one).
# An update is ``wait_text``: the lead for its wording, NUMBERS, then the offer.
UPDATE_UNREACHED = ("Automated update: I still haven't reached anyone from our team, and I'm "
                    "still trying. I'll tell you if a person joins.")
UPDATE_NOBODY = ("Automated update: nobody from our team is on call right now, so I don't "
                 "know when a person can join. I'll tell you if one does.")
OFFER_CALM = "Reply CALM for a calming exercise while you wait."
OFFER_CALM_OR_PLAN = "Reply CALM for a calming exercise or PLAN for your plan."


def update_queue(est: WaitEstimate) -> str:
    return f"Waiting before you: {est.ahead}. Team on call now: {est.on_call}."


def update_unknown(queue: str) -> str:
    return (f"Automated update: you're still waiting for a person. I don't know yet how "
            f"long it will be. {queue}")


def update_longer(queue: str) -> str:
    return (f"Automated update: it's taking longer than usual, sorry. I don't know how "
            f"much longer. {queue}")


def update_estimate(minutes: str, queue: str) -> str:
    return (f"Automated update: my estimate, not a promise, is {minutes} until a person "
            f"joins. {queue}")


def wait_text(est: WaitEstimate, has_plan: bool = False) -> str:
    """The update for ``est``: one SMS, no promise, the numbers, the offers."""
    wording = est.wording
    if wording == UNREACHED:
        lead = UPDATE_UNREACHED
    elif wording == NOBODY:
        lead = UPDATE_NOBODY
    elif wording == UNKNOWN:
        lead = update_unknown(update_queue(est))
    elif wording == LONGER:
        lead = update_longer(update_queue(est))
    else:
        lead = update_estimate(_minutes(est.minutes or 0), update_queue(est))
    offer = OFFER_CALM_OR_PLAN if has_plan else OFFER_CALM
    return f"{lead} {NUMBERS} {offer}"


# ``first_sentence``'s words, in ``utter_human_requested``'s {wait_estimate}.
FIRST_UNREACHED = "I haven't reached anyone from our team yet, and I'm still trying."
FIRST_NOBODY = ("Nobody from our team is on call right now, so I don't know how long it may "
                "take.")


def first_queue(est: WaitEstimate) -> str:
    return f"Waiting before you: {est.ahead}. On call now: {est.on_call}."


def first_unknown(queue: str) -> str:
    return f"I don't know yet how long it may take. {queue}"


def first_longer(queue: str) -> str:
    return f"It may take longer than usual; I don't know how long. {queue}"


def first_estimate(minutes: str, queue: str) -> str:
    return f"My estimate, not a promise: {minutes}. {queue}"


def first_sentence(est: WaitEstimate) -> str:
    """The estimate in the first reply after a person asks for a human
    (``utter_human_requested``, slot ``wait_estimate``): one sentence or two, at most
    ``FIRST_MAX`` characters, in place of "It may take a few minutes"."""
    wording = est.wording
    if wording == UNREACHED:
        return FIRST_UNREACHED
    if wording == NOBODY:
        return FIRST_NOBODY
    if wording == UNKNOWN:
        return first_unknown(first_queue(est))
    if wording == LONGER:
        return first_longer(first_queue(est))
    return first_estimate(_minutes(est.minutes or 0), first_queue(est))


# The longest ``first_sentence`` (numbers of five digits): utter_human_requested's text with
# it stays within one SMS (tests/escalation/test_wait.py).
FIRST_MAX = 110


_shared_rota: Optional[Any] = None


def shared_rota() -> Any:
    """The action server's ``RotaSource`` for ``first_reply`` (made on first use). The action
    server reads it once at start-up (``bot/action_server.py``): parsing the rota on the first
    request would use up the estimate's time budget."""
    global _shared_rota
    if _shared_rota is None:
        from bot.escalation.rota_store import RotaSource
        from bot.settings import settings

        _shared_rota = RotaSource(settings().rota_file)
    return _shared_rota


def first_reply(escalation_ref: str, source: Any) -> Optional[str]:
    """``first_sentence`` for the escalation just recorded for a person who asked for a human;
    ``source``: a ``RotaSource``. Reads only (the caller bounds the time it may take)."""
    r = source.get()
    with transaction() as s:
        esc = engine.load(s, escalation_ref, lock=False)
        if esc.status not in WAITING:
            return None  # someone already has it: the usual words
        return first_sentence(estimate(s, esc, r))


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.timezone.utc)  # SQLite


def history(session: Session, level: str, now: dt.datetime) -> list[float]:
    """Seconds from opening to acknowledgement of recent escalations of ``level``."""
    since = now - dt.timedelta(days=RECENT_DAYS)
    rows = session.execute(
        select(Escalation.created_at, Escalation.acknowledged_at)
        .where(Escalation.level == level, Escalation.acknowledged_at.is_not(None),
               Escalation.acknowledged_at >= since)
        .order_by(Escalation.acknowledged_at.desc())
        .limit(HISTORY_LIMIT)
    ).all()
    return [max(0.0, (_aware(ack) - _aware(created)).total_seconds()) for created, ack in rows]


def staff_on_call(r: rota_module.Rota, level: str, now: dt.datetime) -> int:
    """Distinct people on call now in the tiers ``level``'s ladder alerts."""
    found: set[str] = set()
    for tier in r.ladder(level):
        found.update(m.id for m in r.on_call(tier, now))
    return len(found)


def estimate(session: Session, esc: Escalation, r: rota_module.Rota,
             now: Optional[dt.datetime] = None) -> WaitEstimate:
    now = now or utcnow()
    ahead = session.execute(
        select(func.count(Escalation.id))
        .where(Escalation.status.in_(WAITING), Escalation.id < esc.id)
    ).scalar_one()
    times = history(session, esc.level, now)
    unreached = session.execute(
        select(func.count(EscalationEvent.id))
        .where(EscalationEvent.escalation_id == esc.id,
               EscalationEvent.kind == "ladder_exhausted")
    ).scalar_one() > 0
    return WaitEstimate(
        ahead=int(ahead), on_call=staff_on_call(r, esc.level, now), samples=len(times),
        median_s=statistics.median(times) if times else None,
        waited_s=max(0.0, (now - _aware(esc.created_at)).total_seconds()),
        unreached=unreached,
    )


@dataclass(frozen=True)
class Waiting:
    """An escalation whose next update is due (``due``)."""

    escalation_id: int
    conversation_id: str
    channel: str
    sent: int  # updates claimed so far


def due(now: dt.datetime, interval_s: float, max_updates: int = MAX_UPDATES,
        window_s: float = WINDOW_S, limit: int = 100) -> list[Waiting]:
    """Waiting escalations on a channel the relay reaches, opened within ``window_s``, whose
    last update (or opening) is at least ``interval_s`` old, with fewer than ``max_updates``
    updates so far."""
    last = (select(EscalationEvent.escalation_id.label("eid"),
                   func.max(EscalationEvent.at).label("last_at"),
                   func.count(EscalationEvent.id).label("sent"))
            .where(EscalationEvent.kind == UPDATE_KIND)
            .group_by(EscalationEvent.escalation_id)
            .subquery())
    with transaction() as s:
        rows = s.execute(
            select(Escalation.id, Escalation.conversation_id, Escalation.channel,
                   Escalation.created_at, last.c.last_at, last.c.sent)
            .outerjoin(last, last.c.eid == Escalation.id)
            .where(Escalation.status.in_(WAITING), Escalation.channel.in_(CHANNELS),
                   Escalation.created_at >= now - dt.timedelta(seconds=window_s))
            .order_by(Escalation.id)
            .limit(limit)
        ).all()
    found = []
    for eid, cid, channel, created, last_at, sent in rows:
        since = _aware(last_at or created)
        if int(sent or 0) < max_updates and (now - since).total_seconds() >= interval_s:
            found.append(Waiting(eid, cid, channel, int(sent or 0)))
    return found


@dataclass
class Claimed:
    """An update claimed and on the trail, to be sent (never logged: names a conversation)."""

    escalation_id: int
    ref: str
    conversation_id: str
    channel: str
    number: int  # 1 for the first update
    text: str
    estimate: WaitEstimate
    offers: list[str] = field(default_factory=list)


def claim_update(escalation_id: int, r: rota_module.Rota, interval_s: float,
                 max_updates: int = MAX_UPDATES, has_plan: bool = False,
                 now: Optional[dt.datetime] = None) -> Optional[Claimed]:
    """Claim the next update of a waiting escalation: None when it no longer waits (taken
    over, acknowledged, resolved since ``due`` read it) or another duty service just sent
    one. One transaction under the escalation's row lock."""
    with transaction() as s:
        # The lock every transition takes, before anything is read (on SQLite: the write lock,
        # so the reads below see a take-over or a second duty service's claim that committed
        # while this one waited).
        audit.lock_escalation(s, escalation_id)
        esc = engine.load(s, escalation_id)
        if esc.status not in WAITING or engine.taken_by(s, esc.id) is not None:
            return None
        now = now or utcnow()
        last_at, sent = s.execute(
            select(func.max(EscalationEvent.at), func.count(EscalationEvent.id))
            .where(and_(EscalationEvent.escalation_id == esc.id,
                        EscalationEvent.kind == UPDATE_KIND))
        ).one()
        since = _aware(last_at or esc.created_at)
        if int(sent or 0) >= max_updates or (now - since).total_seconds() < interval_s:
            return None
        est = estimate(s, esc, r, now)
        offers = ["calm", "plan"] if has_plan else ["calm"]
        number = int(sent or 0) + 1
        text = wait_text(est, has_plan)
        audit.append(s, esc, UPDATE_KIND, ACTOR,
                     reason=f"update {number} to the waiting person ({est.wording})",
                     data={"number": number, "offers": offers, **est.trail()}, at=now)
        return Claimed(esc.id, esc.ref, esc.conversation_id, esc.channel, number, text, est,
                       offers)


def record_unsent(escalation_id: int, number: int, code: str) -> None:
    """The relay did not deliver update ``number`` (``code``: paused, absent, unreachable)."""
    with transaction() as s:
        esc = engine.load(s, escalation_id)
        audit.append(s, esc, UNSENT_KIND, ACTOR, reason=f"update {number} not delivered ({code})",
                     data={"number": number, "code": code})
