"""The durable inbox: what the webhook writes and the worker claims.

All functions here are synchronous database work; the async code runs them in a thread so
the Rasa server's event loop never waits on the database.

Claiming is safe across processes: the inbox is a leased queue (``bot/store/queue.py``: a
compare-and-set claim, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), and its claim also requires
no earlier unfinished row of the same conversation, so two workers never run two turns of one
conversation, nor run them out of order. A claim is a lease: a worker that dies stops renewing
it, and after ``lease_until`` another worker takes the row again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, exists, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from bot.sms import keywords
from bot.channels.gate import shows_risk
from bot.store.models.sms import (
    INBOX_KEYWORD,
    INBOX_PROCESSING,
    INBOX_RECEIVED,
    SmsContact,
    SmsInbox,
    SmsOptOut,
)
from bot.sms.pseudonym import encrypt_number, pseudonym
from bot.feedback import store as feedback_store
from bot.plan import store as plan_store
from bot.escalation.engine import LIVE_STATUSES, flag_for_staff
from bot.store.db import group_safe, transaction
from bot.store.models import Escalation, utcnow
from bot.store.queue import LeasedQueue

logger = logging.getLogger(__name__)

CHANNEL = "sms"
# How far back a risk word in an earlier message still counts as "this conversation showed risk"
# when the person then opts out.
RISK_LOOKBACK = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Received:
    inbox_id: int | None
    pseudonym: str
    kind: str  # message | help | opt_out | opt_in
    duplicate: bool = False
    staff_flagged: bool = False
    risk: bool = False  # the message shows risk (its ``risk_hint``): the worker hurries


@dataclass(frozen=True)
class Claimed:
    id: int
    message_sid: str
    pseudonym: str
    body: str
    num_media: int
    kind: str
    attempts: int
    # When the webhook stored it: the start of the turn latency people feel (bot/duty/metrics.py).
    received_at: "dt.datetime | None" = None


def _showed_risk(session: Session, pid: str, now: dt.datetime) -> bool:
    live = session.execute(
        select(Escalation.id)
        .where(Escalation.conversation_id == pid, Escalation.status.in_(LIVE_STATUSES))
        .limit(1)
    ).first()
    if live is not None:
        return True
    recent = session.execute(
        select(SmsInbox.id)
        .where(SmsInbox.pseudonym == pid, SmsInbox.risk_hint.is_(True))
        .where(SmsInbox.received_at >= now - RISK_LOOKBACK)
        .limit(1)
    ).first()
    return recent is not None


def receive(message_sid: str, number: str, body: str | None, num_media: int) -> Received:
    """Store one inbound message (and act on STOP / START) in one transaction.

    A repeated ``message_sid`` (Twilio retrying a webhook) changes nothing and is reported as
    a duplicate, so it is acknowledged and never answered twice.
    """
    try:
        with transaction() as s:
            return _receive(s, message_sid, number, body, num_media)
    except IntegrityError:
        # Two deliveries of one MessageSid raced (two processes); the other one stored it.
        with transaction() as s:
            seen = s.execute(_SEEN, {"sid": message_sid}).scalar_one_or_none()
        return Received(seen, pseudonym(number), "message", duplicate=True)


def receive_many(items: list[tuple]) -> list[Received]:
    """``receive`` for several webhooks in one transaction: one commit for all of them.

    The webhook awaits this through the database thread, which groups the messages that
    arrived while it was busy. If any insert collides with another process, each message is
    stored again on its own, so one collision cannot fail the others.
    """
    try:
        with transaction() as s:
            return [_receive(s, *item) for item in items]
    except IntegrityError:
        return [receive(*item) for item in items]


# The hot path's statements, built once: building and cache-keying a statement per message
# cost as much as running it.
_SEEN = select(SmsInbox.id).where(SmsInbox.message_sid == bindparam("sid"))
_KNOWN = select(SmsContact.pseudonym).where(SmsContact.pseudonym == bindparam("pid"))
_NEW_CONTACT = insert(SmsContact)
_TOUCH_CONTACT = (
    update(SmsContact)
    .where(SmsContact.pseudonym == bindparam("pid"))
    .values(last_seen_at=bindparam("now"))
)
_NEW_ROW = insert(SmsInbox)
# PostgreSQL: the row is inserted unless its MessageSid is there already, and the answer says
# which, in one round trip instead of a look-up and an insert. As text: SQLAlchemy 1.4 never
# caches the compiled form of its PostgreSQL ``insert`` (``inherit_cache = False``), and
# compiling it for every message took more of the GIL than running it (py-spy).
_NEW_ROW_UNLESS_SEEN = text(
    "INSERT INTO sms_inbox (message_sid, pseudonym, body, num_media, kind, risk_hint, status,"
    " attempts, received_at) VALUES (:message_sid, :pseudonym, :body, :num_media, 'message',"
    " :risk_hint, :status, 0, :received_at) ON CONFLICT (message_sid) DO NOTHING RETURNING id"
)
_NEW_CONTACT_UNLESS_KNOWN = text(
    "INSERT INTO sms_contacts (pseudonym, number_enc, opted_out, created_at, last_seen_at)"
    " VALUES (:pseudonym, :number_enc, false, :now, :now) ON CONFLICT (pseudonym) DO NOTHING"
)


def _receive(
    s: Session, message_sid: str, number: str, body: str | None, num_media: int
) -> Received:
    """One message; the common case in Core statements (the webhook's hot path).

    Through the ORM this cost about 3 ms of CPU per message, in the one thread that also
    serves the worker and the sender; Core statements on the session's connection do the same
    in a fraction of it. Keywords (STOP, START...) are rare and keep the ORM path.
    """
    pid = pseudonym(number)
    now = utcnow()
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        received = _receive_pg(conn, message_sid, number, pid, body, num_media, now)
        if received is not None:
            return received
    # SQLite (no round trips to save), and keywords everywhere.
    seen = conn.execute(_SEEN, {"sid": message_sid}).scalar_one_or_none()
    if seen is not None:
        return Received(seen, pid, "message", duplicate=True)
    word = keywords.keyword(body) if not num_media else None
    kind = keywords.classify(body) if word else None
    if kind is not None:
        return _receive_keyword(s, message_sid, number, pid, body, num_media, word, kind, now)
    if conn.execute(_KNOWN, {"pid": pid}).first() is None:
        conn.execute(_NEW_CONTACT, {
            "pseudonym": pid, "number_enc": encrypt_number(number), "opted_out": False,
            "created_at": now, "last_seen_at": now,
        })
    else:
        conn.execute(_TOUCH_CONTACT, {"pid": pid, "now": now})
    risk = shows_risk(body)
    result = conn.execute(_NEW_ROW, {
        "message_sid": message_sid, "pseudonym": pid, "body": body or "",
        "num_media": num_media, "kind": "message", "risk_hint": risk,
        "status": INBOX_RECEIVED, "attempts": 0, "received_at": now, "done_at": None,
    })
    return Received(result.inserted_primary_key[0], pid, "message", risk=risk)


def _receive_pg(
    conn: Connection, message_sid: str, number: str, pid: str, body: str | None, num_media: int,
    now: dt.datetime,
) -> Received | None:
    """``_receive`` on PostgreSQL in two round trips for a person who texted before (three
    for a new one), not four: each round trip of the webhook's is a wait for PostgreSQL and,
    while a bot turn holds the GIL, for the interpreter too. None for a keyword.

    The contact is touched first (a repeated webhook touches it too: the person did text),
    then the row is inserted unless its MessageSid is stored already (by an earlier delivery
    of the webhook, or another process at the same moment: ``ON CONFLICT`` waits for that
    one's transaction, so a repeat is never stored twice nor turned into an error).
    """
    if not num_media and keywords.keyword(body) and keywords.classify(body) is not None:
        return None
    if conn.execute(_TOUCH_CONTACT, {"pid": pid, "now": now}).rowcount == 0:
        conn.execute(_NEW_CONTACT_UNLESS_KNOWN,
                     {"pseudonym": pid, "number_enc": encrypt_number(number), "now": now})
    risk = shows_risk(body)
    inbox_id = conn.execute(_NEW_ROW_UNLESS_SEEN, {
        "message_sid": message_sid, "pseudonym": pid, "body": body or "",
        "num_media": num_media, "risk_hint": risk, "status": INBOX_RECEIVED,
        "received_at": now,
    }).scalar_one_or_none()
    if inbox_id is None:
        seen = conn.execute(_SEEN, {"sid": message_sid}).scalar_one()
        return Received(seen, pid, "message", duplicate=True)
    return Received(inbox_id, pid, "message", risk=risk)


def _receive_keyword(
    s: Session, message_sid: str, number: str, pid: str, body: str | None, num_media: int,
    word: str, kind: str, now: dt.datetime,
) -> Received:
    """STOP / START and the other keywords: contact, opt-out record and inbox row."""
    contact = s.get(SmsContact, pid)
    if contact is None:
        contact = SmsContact(
            pseudonym=pid, number_enc=encrypt_number(number), opted_out=False,
            created_at=now, last_seen_at=now,
        )
        s.add(contact)
    else:
        contact.last_seen_at = now

    risk = shows_risk(body)
    status = INBOX_RECEIVED
    flagged = False
    if kind == keywords.OPT_OUT:
        status = INBOX_KEYWORD
        contact.opted_out, contact.opted_out_at = True, now
        if _showed_risk(s, pid, now):
            # Twilio will now refuse every reply: a person at risk has gone silent on us,
            # and only a human can decide what to do (call back, another contact).
            flag_for_staff(
                pid, "opted_out",
                "the person texted an opt-out keyword; SMS replies are now blocked",
                {"message_sid": message_sid, "keyword": word},
                level="urgent", channel=CHANNEL, session=s,
            )
            flagged = True
        s.add(SmsOptOut(pseudonym=pid, action="opt_out", keyword=word,
                        message_sid=message_sid, at=now, staff_flagged=flagged))
        # Twilio blocks the number now, and the line never asks them for feedback again:
        # a survey under way ends here (docs/feedback.md).
        feedback_store.do_not_ask(pid, "opt_out", now=now, session=s)
        # Making a plan ends too (what was saved stays): a later START and "yes" must not be
        # read as the answer to a step asked before the opt-out (docs/plan.md).
        plan_store.stop(pid, session=s)
    elif kind == keywords.OPT_IN and contact.opted_out:
        status = INBOX_KEYWORD
        contact.opted_out, contact.opted_out_at = False, None
        s.add(SmsOptOut(pseudonym=pid, action="opt_in", keyword=word,
                        message_sid=message_sid, at=now, staff_flagged=False))
    else:
        # "yes" / "start" from someone who never opted out is part of the conversation; a
        # help keyword is a message the worker answers with the line's details.
        kind = None if kind == keywords.OPT_IN else kind
    row = SmsInbox(
        message_sid=message_sid, pseudonym=pid,
        body=None if status == INBOX_KEYWORD else (body or ""),
        num_media=num_media, kind=kind or "message", risk_hint=risk, status=status,
        attempts=0, received_at=now, done_at=now if status == INBOX_KEYWORD else None,
    )
    s.add(row)
    s.flush()
    return Received(row.id, pid, kind or "message", staff_flagged=flagged,
                    risk=risk and status == INBOX_RECEIVED)


# The inbox as a leased queue (``bot/store/queue.py``): a claim counts as an attempt; a row given
# back unrun (a clean shutdown mid-turn) does not.
QUEUE = LeasedQueue(SmsInbox, ready=INBOX_RECEIVED, claimed=INBOX_PROCESSING)


@group_safe
def reclaim_expired() -> int:
    """Put rows whose worker stopped renewing its lease back in the queue."""
    return QUEUE.reclaim_expired()


_earlier = aliased(SmsInbox)
# The guard, evaluated per row: no earlier unfinished message of the same conversation.
_BLOCKED = (
    exists()
    .where(
        and_(
            _earlier.pseudonym == SmsInbox.pseudonym,
            _earlier.id < SmsInbox.id,
            _earlier.status.in_((INBOX_RECEIVED, INBOX_PROCESSING)),
        )
    )
    .correlate(SmsInbox)
)
# The worker's claim, built once (see ``_receive``): claims run several times a second under
# load, in the thread whose every millisecond of CPU is taken from the bot's turns. PostgreSQL
# hands the claimed rows back from the UPDATE itself; SQLite reads them again.
_CLAIM = QUEUE.claimer(
    SmsInbox.id, SmsInbox.pseudonym, SmsInbox.risk_hint,
    guard=~_BLOCKED,
    values={"started_at": bindparam("now")},
    read=(SmsInbox.id, SmsInbox.message_sid, SmsInbox.pseudonym, SmsInbox.body,
          SmsInbox.num_media, SmsInbox.kind, SmsInbox.attempts, SmsInbox.received_at),
    returning=True,
)


@group_safe
def claim(
    owner: str,
    lease: dt.timedelta,
    busy: Collection[str] = (),
    may_start: Callable[[str], bool] = lambda _pid: True,
    limit: int = 16,
    at_risk: Callable[[str], bool] = lambda _pid: False,
    risk_only: bool = False,
) -> list[Claimed]:
    """Claim the next message of up to ``limit`` conversations, risk first, then oldest first.

    ``risk_only``: only conversations showing risk (the worker's headroom when it is full).

    ``busy``: conversations this process is already running. ``may_start``: the rate limit,
    asked only for conversations with no risk waiting; a refusal leaves the row queued.
    ``at_risk``: conversations that showed risk earlier (their "no" to "are you safe?" shows
    none on its own); they count as risky here.

    In a group commit that is rolled back, the claim runs again and asks ``may_start`` again:
    at worst a conversation spends one more token of its rate limit.
    """

    def choose(rows: list) -> list[int]:
        first: dict[str, int] = {}
        risky: dict[str, bool] = {}
        for row in rows:
            first.setdefault(row.pseudonym, row.id)
            risky[row.pseudonym] = risky.get(row.pseudonym, False) or row.risk_hint
        for pid in first:
            risky[pid] = risky[pid] or at_risk(pid)
        chosen: list[int] = []
        # Conversations showing risk first, then oldest first: with more conversations
        # waiting than ``limit``, a risk message is never the one left for the next pass.
        for pid, row_id in sorted(first.items(), key=lambda kv: (not risky[kv[0]], kv[1])):
            if len(chosen) >= limit:
                break
            if pid in busy or (risk_only and not risky[pid]):
                continue
            if not risky[pid] and not may_start(pid):
                continue
            chosen.append(row_id)
        return chosen

    claimed = _CLAIM(owner, limit=limit, lease=lease, choose=choose)
    return [Claimed(r.id, r.message_sid, r.pseudonym, r.body or "", r.num_media, r.kind,
                    r.attempts, r.received_at) for r in claimed]


@group_safe
def renew(owner: str, ids: Collection[int], lease: dt.timedelta) -> None:
    QUEUE.renew(owner, list(ids), lease)


@group_safe
def finish(inbox_id: int, owner: str, status: str, error: str | None = None) -> None:
    """Close a row. The text is dropped: the tracker store has the conversation."""
    QUEUE.finish(owner, inbox_id, status, done_at=utcnow(), body=None, error=error)


@group_safe
def release(owner: str, ids: Collection[int]) -> None:
    """Give rows back unfinished (a clean shutdown mid-turn): the next worker runs them."""
    QUEUE.release(owner, list(ids), count_attempt=False)
