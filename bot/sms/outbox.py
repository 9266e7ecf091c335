"""The outbox and its sender: every SMS is a row before it is posted to Twilio.

Delivery from the person's view is exactly once: a row is marked ``sent`` with Twilio's
message SID as soon as Twilio accepts it, and only rows not yet marked are sent again (after a
crash, on start-up). Twilio's Messages API has no idempotency key, so a post whose outcome we
never learnt could already be at Twilio: the process died with the row ``sending`` (its lease
runs out, ``reclaim_expired``), or the request timed out or broke after it was sent. Such a
row is *in doubt*, and before posting it again the sender reads one page of the recent
messages from the line to that number and looks for one with exactly the row's text, created
since the row's first attempt and held by no other row. Found: the row is marked sent with
that message's SID and status, and nothing is posted. Rows that certainly never reached
Twilio (a first attempt, or every earlier post answered 4xx/5xx/429 or never connected) post
without a look-up.

A duplicate remains possible in three narrow cases, each chosen over losing a reply: the
look-up itself fails (then the row is posted anyway), Twilio accepts a timed-out request only
after the look-up has been made (a request still in progress there), or Twilio stores the
text changed (a trial account's prefix) so that it does not match.

Retries: 429, 5xx, timeouts and connection errors are retried with exponential backoff and
full jitter, up to ``max_attempts``. Other 4xx errors are permanent (21610: the person texted
STOP; 21211: not a valid number): recorded with their code, not retried, and shown to staff
when the conversation has a live escalation. A staff alert that cannot be delivered goes on
its escalation's trail and moves the ladder on (``bot.escalation.dispatch.alert_undeliverable``).
What happens on a delivery problem is the escalation layer's business: it is handed in
(``DeliveryProblems``, made by ``bot.escalation.delivery``), so the transport imports nothing
above ``bot.store``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from sqlalchemy import and_, bindparam, case, exists, func, insert, or_, select, update
from sqlalchemy.orm import aliased
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bot.store.dbthread import PASS_GAP_S
from bot.store.loop import BackgroundLoop
from bot.store.models.sms import (
    OUT_FAILED,
    OUT_NOT_SENT_LOCAL,
    OUT_PENDING,
    OUT_SENDING,
    OUT_SENT,
    OUT_SUPPRESSED,
    SmsContact,
    SmsOutbox,
)
from bot.sms.pseudonym import decrypt_number
from bot.sms.segments import split_message
from bot.settings import settings
from bot.store.db import group_safe, shared_transaction, transaction
from bot.store.models import utcnow
from bot.store.queue import Claimer, LeasedQueue

if TYPE_CHECKING:  # twilio's API classes take over a second to import (see _warm_up_twilio)
    from twilio.rest.api.v2010.account.message import MessageInstance

logger = logging.getLogger(__name__)
# twilio's HTTP client logs every request's query string at INFO, and the look-up's query
# (To=...) is the person's number: its log stays at WARNING whatever the root level is.
_twilio_http_log = logging.getLogger(__name__ + ".twilio_http")
_twilio_http_log.setLevel(logging.WARNING)

STATUS_PATH = "/webhooks/sms/status"
# Twilio status callbacks can arrive out of order; a later-ranked status is never overwritten
# by an earlier one.
_STATUS_RANK = {
    "accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
    "delivered": 4, "undelivered": 4, "failed": 4, "read": 5, "canceled": 4,
}
FAILED_DELIVERY = frozenset({"failed", "undelivered"})
# The look-up before posting a part that may already be at Twilio reads one page of the most
# recent messages to the number, newest first. No later part of the conversation is sent while
# this one is unsent (claim_due), so a copy, if there is one, is the newest or nearly so; a
# page of 20 leaves room for anything sent to the number some other way and stays one small
# request.
LOOKUP_PAGE_SIZE = 20
# Twilio's date_created is in whole seconds (RFC 2822) and from Twilio's clock, not ours: a
# copy created just after our first attempt may carry a time up to a second before it, plus
# whatever our clocks disagree by.
LOOKUP_CLOCK_SKEW = dt.timedelta(seconds=3)


@dataclass(frozen=True)
class OutRow:
    id: int
    pseudonym: str
    body: str
    kind: str
    attempts: int
    # Looked up in the same query as the claim; None when there is no usable contact.
    number: str | None = field(default=None, repr=False)
    opted_out: bool = False
    # An earlier post may have reached Twilio (see SmsOutbox.in_doubt); when, at the earliest.
    in_doubt: bool = False
    first_attempt_at: dt.datetime | None = None


# A sender takes a part written by another process (``kinds``) only after it has been due
# this long: the two senders do not race for every part, and one still covers for the other
# when that one is down.
BACKUP_AFTER_S = 3.0


# Parts of one conversation claimed together and posted one after another by one task: a
# reply of several messages costs one claim instead of one per part.
PARTS_PER_CLAIM = 6


# The hot path's statements, built once: building and cache-keying a statement each time cost
# more CPU than running it, in the thread that shares the GIL with the bot's turns.
_REPLAYED = (
    select(SmsOutbox.id)
    .where(SmsOutbox.inbox_id == bindparam("inbox_id"), SmsOutbox.kind == bindparam("kind"),
           SmsOutbox.part == 1, SmsOutbox.body == bindparam("body"))
    .limit(1)
)
_NEW_PART = insert(SmsOutbox)
# sms_outbox.kind of a message a staff member writes to a person through the Rasa server's
# staff relay (``relay.deliver``).
STAFF_KIND = "staff"
# The PostgreSQL channel on which new parts are announced to the duty service's sender
# (``enqueue(announce=True)``, ``bot/escalation/wakeup.py``). Anyone connected to the database
# may LISTEN, so the payload is only ``URGENT`` or empty, never text, numbers or references.
OUTBOX_CHANNEL = "sms_outbox"
# The payload of a part that must not wait for the gap between the sender's passes: a reply
# in a conversation that shows risk (the one with 999 in it) or the fail-safe reply.
URGENT = "urgent"
# The outbox as a leased queue (``bot/store/queue.py``). Attempts are counted by the sender
# when it posts, not by the claim; a part reclaimed from a process that died is in doubt.
QUEUE = LeasedQueue(
    SmsOutbox, ready=OUT_PENDING, claimed=OUT_SENDING, attempts=None,
    release_values={"updated_at": bindparam("now")}, reclaim_values={"in_doubt": True},
    channel=OUTBOX_CHANNEL,
)


@group_safe
def enqueue(pid: str, text: str, kind: str, inbox_id: int | None, max_segments: int,
            replay: bool = False, announce: bool = False, urgent: bool = False) -> list[int]:
    """Write the parts of one bot message; the sender posts them in id order.

    ``replay``: the turn for ``inbox_id`` is being run again (the process died mid-turn), so a
    message it already wrote then is skipped rather than sent twice. A reply with several
    variations may come out differently the second time; that one is sent.

    ``announce``: on PostgreSQL, NOTIFY the duty service's sender when this commits (the
    parts are its to post, ``SMS_SENDER=duty``); nothing is announced for a rollback.
    ``urgent``: announced as ``URGENT``, so that sender's next pass comes at once.
    """
    parts = split_message(text, max_segments=max_segments)
    now = utcnow()
    ids = []
    with transaction() as s:
        conn = s.connection()
        if replay and inbox_id is not None:
            already = conn.execute(_REPLAYED, {"inbox_id": inbox_id, "kind": kind,
                                               "body": parts[0].text}).first()
            if already is not None:
                logger.info("sms outbox: replayed turn for inbox row %s repeated a message "
                            "already queued; not sent twice", inbox_id)
                return []
        for n, part in enumerate(parts, start=1):
            result = conn.execute(_NEW_PART, {
                "pseudonym": pid, "inbox_id": inbox_id, "kind": kind, "body": part.text,
                "part": n, "parts": len(parts), "encoding": part.encoding,
                "segments": part.segments, "status": OUT_PENDING, "attempts": 0,
                "next_attempt_at": now, "created_at": now, "updated_at": now,
                "in_doubt": False,
            })
            ids.append(result.inserted_primary_key[0])
        if announce and ids:
            QUEUE.announce(conn, URGENT if urgent else "")
    return ids


@group_safe
def reclaim_expired() -> int:
    """Rows left ``sending`` by a process that died: send again, but look first.

    The dead process may have posted the row and been killed before marking it (or lost the
    database just then), so the row is in doubt: its next post first asks Twilio whether the
    message is already there (``OutboxSender._find_accepted``).
    """
    return QUEUE.reclaim_expired()


_earlier = aliased(SmsOutbox)
# An earlier part of the same conversation that is not sent yet.
_EARLIER_UNSENT = and_(_earlier.pseudonym == SmsOutbox.pseudonym, _earlier.id < SmsOutbox.id,
                       _earlier.status.in_((OUT_PENDING, OUT_SENDING)))


def _claimer(kinds: bool) -> Claimer:
    """The claim of due parts, oldest first (``kinds``: own kinds now, the other process's
    only when late)."""
    due = SmsOutbox.next_attempt_at <= bindparam("now")
    if kinds:
        due = and_(due, or_(SmsOutbox.kind.in_(bindparam("kinds", expanding=True)),
                            SmsOutbox.next_attempt_at <= bindparam("late")))
    return QUEUE.claimer(
        SmsOutbox.id, SmsOutbox.pseudonym,
        where=(due,),
        # Per row, a part waits while an earlier part of the same conversation is unsent,
        # unless that part is claimed in this batch too (the sender then posts them in order,
        # one after another).
        guard=~exists()
        .where(_EARLIER_UNSENT, _earlier.id.notin_(bindparam("ids", expanding=True)))
        .correlate(SmsOutbox),
        values={
            "updated_at": bindparam("now"),
            # The first claim's time bounds the look-up for a copy Twilio already has: no
            # post of the row can be older. Set here, so it costs no extra write.
            "first_attempt_at": func.coalesce(SmsOutbox.first_attempt_at, bindparam("now")),
        },
        read=(
            select(SmsOutbox.id, SmsOutbox.pseudonym, SmsOutbox.body, SmsOutbox.kind,
                   SmsOutbox.attempts, SmsContact.number_enc, SmsContact.opted_out,
                   SmsOutbox.in_doubt, SmsOutbox.first_attempt_at)
            .outerjoin(SmsContact, SmsContact.pseudonym == SmsOutbox.pseudonym)
            .where(SmsOutbox.id.in_(bindparam("ids", expanding=True)),
                   SmsOutbox.status == OUT_SENDING,
                   SmsOutbox.lease_owner == bindparam("owner"))
            .order_by(SmsOutbox.id)
        ),
    )


_CLAIMS = {k: _claimer(k) for k in (False, True)}


@group_safe
def claim_due(owner: str, lease: dt.timedelta, busy: set[str], limit: int = 32,
              per_conversation: int = 1, kinds: Collection[str] | None = None,
              others_after_s: float = BACKUP_AFTER_S) -> list[OutRow]:
    """The next due parts (up to ``per_conversation``) of up to ``limit`` conversations, in
    order, never overtaking an earlier unsent part that is not claimed with them.

    ``kinds``: the kinds this sender's process writes; a part of another kind is taken only
    once it has been due for ``others_after_s`` (its own process's sender is down or stuck).
    None: every kind at once.
    """
    now = utcnow()
    params: dict[str, Any] = {}
    if kinds is not None:
        params["kinds"] = list(kinds)
        params["late"] = now - dt.timedelta(seconds=others_after_s)

    def choose(rows: list) -> list[int]:
        chosen: list[int] = []
        taken: dict[str, int] = {}
        for row in rows:
            if row.pseudonym in busy:
                continue
            count = taken.get(row.pseudonym, 0)
            if (count == 0 and len(taken) >= limit) or count >= per_conversation:
                continue
            taken[row.pseudonym] = count + 1
            chosen.append(row.id)
        return chosen

    rows = _CLAIMS[kinds is not None](owner, limit=limit, lease=lease, choose=choose,
                                      params=params, now=now)
    return [OutRow(r.id, r.pseudonym, r.body, r.kind, r.attempts, _number(r.number_enc),
                   bool(r.opted_out), bool(r.in_doubt), _aware(r.first_attempt_at))
            for r in rows]


@group_safe
def claim_due_and_wait(owner: str, lease: dt.timedelta, busy: set[str], limit: int = 32,
                       per_conversation: int = 1, kinds: Collection[str] | None = None,
                       others_after_s: float = BACKUP_AFTER_S
                       ) -> tuple[list[OutRow], float | None]:
    """``claim_due`` and then ``next_due_in``, in one transaction: the sender's whole pass."""
    with shared_transaction():
        return (claim_due(owner, lease, busy, limit, per_conversation, kinds, others_after_s),
                next_due_in(kinds, others_after_s))


@group_safe
def release(owner: str, ids: list[int]) -> None:
    """Give claimed parts back unposted (their chain stopped): pending again, as they were."""
    QUEUE.release(owner, ids)


def _aware(at: dt.datetime | None) -> dt.datetime | None:
    if at is not None and at.tzinfo is None:  # SQLite hands back naive UTC
        at = at.replace(tzinfo=dt.timezone.utc)  # noqa: UP017  dt.UTC is 3.11+
    return at


def _number(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        return decrypt_number(token)
    except ValueError:  # PSEUDONYM_KEY changed since the number was stored
        return None


# Only a conversation's first unsent part counts: the parts behind it cannot go before it.
_FIRST_UNSENT = and_(
    SmsOutbox.status == OUT_PENDING,
    ~exists().where(_EARLIER_UNSENT).correlate(SmsOutbox),
)
_NEXT_DUE = select(func.min(SmsOutbox.next_attempt_at)).where(_FIRST_UNSENT)
_own = SmsOutbox.kind.in_(bindparam("kinds", expanding=True))
# The earliest of this process's kinds, and of the others', in one statement.
_NEXT_DUE_BY_KIND = select(
    func.min(case((_own, SmsOutbox.next_attempt_at))),
    func.min(case((~_own, SmsOutbox.next_attempt_at))),
).where(_FIRST_UNSENT)


@group_safe
def next_due_in(kinds: Collection[str] | None = None,
                others_after_s: float = BACKUP_AFTER_S) -> float | None:
    """Seconds until the earliest pending part this sender could claim is due (None when
    nothing waits); ``kinds`` as in ``claim_due``.

    Only a conversation's first unsent part counts: the parts behind it cannot go before it,
    and counting them (due, but blocked while the first waits for its retry) had the sender
    pass every few milliseconds for nothing.
    """
    with transaction() as s:
        conn = s.connection()
        if kinds is None:
            times = [conn.execute(_NEXT_DUE).scalar()]
        else:
            own, other = conn.execute(_NEXT_DUE_BY_KIND, {"kinds": list(kinds)}).one()
            times = [own, None if other is None
                     else _aware(other) + dt.timedelta(seconds=others_after_s)]
    times = [_aware(t) for t in times if t is not None]
    if not times:
        return None
    return max(0.0, (min(times) - utcnow()).total_seconds())


# One UPDATE of a row by id per set of columns (mark_sent, mark_retry, mark_final), built on
# first use. The parameters are prefixed: a bind named like its column is reserved.
_UPDATES: dict[tuple[str, ...], Any] = {}


def _update(row_id: int, **values) -> None:
    values["updated_at"] = utcnow()
    columns = tuple(sorted(values))
    statement = _UPDATES.get(columns)
    if statement is None:
        statement = _UPDATES[columns] = (
            update(SmsOutbox)
            .where(SmsOutbox.id == bindparam("row_id"))
            .values({c: bindparam("v_" + c) for c in columns})
        )
    params = {"v_" + c: v for c, v in values.items()}
    params["row_id"] = row_id
    with transaction() as s:
        s.connection().execute(statement, params)


@group_safe
def mark_sent(row_id: int, twilio_sid: str | None, twilio_status: str | None,
              attempts: int, error_code: str | None = None) -> None:
    _update(row_id, status=OUT_SENT, twilio_sid=twilio_sid, delivery_status=twilio_status,
            sent_at=utcnow(), attempts=attempts, lease_owner=None, lease_until=None,
            error_code=error_code)


@group_safe
def mark_retry(row_id: int, attempts: int, delay_s: float, error_code: str,
               in_doubt: bool = False) -> None:
    """Back to ``pending`` for a later attempt; ``in_doubt`` when this post may have reached
    Twilio. A definite answer never clears it: an earlier post may still be accepted late."""
    values: dict[str, Any] = {"in_doubt": True} if in_doubt else {}
    _update(row_id, status=OUT_PENDING, attempts=attempts, lease_owner=None, lease_until=None,
            next_attempt_at=utcnow() + dt.timedelta(seconds=delay_s), error_code=error_code,
            **values)


@group_safe
def recorded_sids(sids: list[str]) -> set[str]:
    """Which of these Twilio SIDs some outbox row already holds."""
    if not sids:
        return set()
    with transaction() as s:
        return set(s.execute(
            select(SmsOutbox.twilio_sid).where(SmsOutbox.twilio_sid.in_(sids))
        ).scalars())


@group_safe
def mark_final(row_id: int, status: str, attempts: int, error_code: str | None) -> None:
    _update(row_id, status=status, attempts=attempts, lease_owner=None, lease_until=None,
            error_code=error_code)


@dataclass(frozen=True)
class DeliveryProblems:
    """Who hears of an SMS that cannot be delivered (``bot.escalation.delivery.PROBLEMS``).

    ``flag(pid, outbox_id, error_code, reason) -> bool`` runs in its own transaction when the
    sender gives up on a part; ``failed(session, outbox_id, pid, status, error_code,
    twilio_sid)`` runs inside the transaction that records a failed status callback.
    """
    flag: Callable[[str, int, str | None, str], bool]
    failed: Callable[..., None]


def apply_status(twilio_sid: str, status: str, error_code: str | None,
                 on_failed: Callable[..., None]) -> str | None:
    """Record a Twilio status callback; returns the conversation when delivery failed.

    On a failed delivery ``on_failed(session, outbox_id, pid, status, error_code, twilio_sid)``
    runs in the same transaction (``DeliveryProblems.failed``).
    """
    with transaction() as s:
        row = s.execute(
            select(SmsOutbox).where(SmsOutbox.twilio_sid == twilio_sid)
        ).scalar_one_or_none()
        if row is None:
            return None
        current = _STATUS_RANK.get(row.delivery_status or "", -1)
        if _STATUS_RANK.get(status, 0) >= current:
            row.delivery_status = status
            if error_code:
                row.error_code = error_code
            row.updated_at = utcnow()
        if status in FAILED_DELIVERY:
            on_failed(s, row.id, row.pseudonym, status, error_code, twilio_sid)
            return row.pseudonym
    return None


def _warm_up_twilio() -> None:
    client = Client("AC" + "0" * 32, "warm-up")
    client.api.v2010.account.messages  # noqa: B018  the attribute access does the imports


def _is_transient(exc: TwilioRestException) -> bool:
    return exc.status == 429 or exc.status >= 500


class OutboxSender:
    """Posts pending outbox rows with twilio's aiohttp client, in the server's event loop."""

    def __init__(
        self,
        *,
        problems: DeliveryProblems,
        max_attempts: int = 6,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        send_timeout_s: float = 10.0,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        pass_gap_s: float = PASS_GAP_S,
        concurrency: int = 8,
        rng: Callable[[], float] = random.random,
        run_db: Callable[..., Awaitable[Any]] = asyncio.to_thread,
        kinds: Collection[str] | None = None,
        others_after_s: float = BACKUP_AFTER_S,
    ) -> None:
        self.problems = problems
        self.max_attempts = max_attempts
        # What this process writes (claimed at once); other kinds after others_after_s.
        self.kinds = frozenset(kinds) if kinds is not None else None
        self.others_after_s = others_after_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.send_timeout_s = send_timeout_s
        self.lease = dt.timedelta(seconds=lease_s)
        self.concurrency = concurrency
        self._rng = rng
        self._db = run_db
        self.loop = BackgroundLoop("sms-outbox-sender", self._pass, poll_s=poll_s,
                                   gap_s=pass_gap_s, log=logger, label="sms outbox")
        self._active: dict[str, asyncio.Task] = {}
        self._client = None
        self._http = None
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._last_reclaim = float("-inf")

    @property
    def poll_s(self) -> float:
        return self.loop.poll_s

    @property
    def pass_gap_s(self) -> float:
        return self.loop.gap_s

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.loop.started:
            if settings().twilio_configured:
                # twilio imports its API classes on first use, for over a second: do that in a
                # thread now, not in the event loop during the first reply.
                await asyncio.to_thread(_warm_up_twilio)  # once, before traffic
            self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()
        # A part in flight is allowed to finish: cancelling after Twilio accepted it but
        # before the row was marked would leave it in doubt, costing a look-up at Twilio
        # (and a duplicate if that look-up fails).
        if self._active:
            await asyncio.wait(list(self._active.values()), timeout=self.send_timeout_s + 1)
        if self._http is not None:
            await self._http.close()
            self._http = self._client = None

    def wake(self, urgent: bool = False) -> None:
        """A part is waiting; ``urgent`` (a reply that shows risk, a staff alert): the next
        pass comes at once, not after the gap between passes (``dbthread.PASS_GAP_S``)."""
        self.loop.wake(urgent)

    def wake_urgent(self) -> None:
        self.wake(True)

    # -- loop ------------------------------------------------------------------------------

    def backoff_s(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))], at least 1/10 of it."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2 ** max(0, attempt - 1)))
        return ceiling * (0.1 + 0.9 * self._rng())

    async def _pass(self) -> float | None:
        """Reclaim now and again, claim what is due, start a task per conversation; when the
        next pass is wanted (the next part due, None: at the poll)."""
        started = time.monotonic()
        # At start (what a crashed run left) and then now and again (other processes).
        if started - self._last_reclaim > min(5.0, self.lease.total_seconds() / 3):
            self._last_reclaim = started
            await self._db(reclaim_expired)
        free = self.concurrency - len(self._active)
        rows = []
        if free > 0:
            rows, due = await self._db(
                claim_due_and_wait, self.owner, self.lease, set(self._active), free,
                PARTS_PER_CLAIM, self.kinds, self.others_after_s,
            )
        else:
            due = await self._db(next_due_in, self.kinds, self.others_after_s)
        chains: dict[str, list[OutRow]] = {}
        for row in rows:
            chains.setdefault(row.pseudonym, []).append(row)
        for pid, chain in chains.items():
            task = asyncio.create_task(self._send_chain(chain, started))
            self._active[pid] = task
            task.add_done_callback(lambda _t, pid=pid: self._done(pid))
        return None if due is None else max(due, 0.01)

    def _done(self, pid: str) -> None:
        self._active.pop(pid, None)
        self.loop.wake()  # the conversation's next part may go now

    def _twilio(self):
        if self._client is None:
            cfg = settings()
            # Made inside the running loop: the aiohttp session belongs to this loop.
            self._http = AsyncTwilioHttpClient(logger=_twilio_http_log)
            client = Client(cfg.twilio_account_sid, cfg.twilio_auth_token, http_client=self._http)
            # Point the API domain at TWILIO_API_URL (tests use a local fake; a proxy may too).
            client.api.base_url = cfg.twilio_api_url
            self._client = client
        return self._client

    async def _send_chain(self, rows: list[OutRow], claimed_at: float) -> None:
        """Post one conversation's claimed parts in order, each after the last is settled.

        The chain stops when a part is to be tried again later (the parts after it must not
        overtake it) or when the lease might run out before the next part is settled (a post
        and a look-up, each up to ``send_timeout_s``); the rest go back to pending.
        """
        settled = True
        for i, row in enumerate(rows):
            elapsed = time.monotonic() - claimed_at
            if i and (not settled
                      or elapsed + 2 * self.send_timeout_s >= self.lease.total_seconds()):
                try:
                    await self._db(release, self.owner, [r.id for r in rows[i:]])
                except Exception as exc:  # noqa: BLE001 their lease runs out instead
                    logger.error("sms outbox: could not release rows for %s (%s)",
                                 row.pseudonym, type(exc).__name__)
                return
            settled = await self._send(row)

    async def _send(self, row: OutRow) -> bool:
        """Post one part; True when it is settled (sent, or failed for good)."""
        try:
            return await self._send_one(row)
        except Exception as exc:  # noqa: BLE001
            # Most likely the database went away mid-send. The row keeps its lease and is
            # sent again once the lease runs out (reclaim_expired).
            logger.error("sms outbox: row %s for %s: %s", row.id, row.pseudonym,
                         type(exc).__name__)
            return False

    async def _send_one(self, row: OutRow) -> bool:
        attempts = row.attempts + 1
        if row.number is None:
            logger.error("sms outbox: no usable contact for %s (row %s)", row.pseudonym, row.id)
            await self._db(mark_final, row.id, OUT_FAILED, attempts, "no_contact")
            await self._db(self.problems.flag, row.pseudonym, row.id, "no_contact",
                                    "reply not sent: no usable phone number on record")
            return True
        number = row.number
        if row.opted_out:
            await self._db(mark_final, row.id, OUT_SUPPRESSED, row.attempts, "21610")
            await self._db(
                self.problems.flag, row.pseudonym, row.id, "21610",
                "reply not sent: the person has opted out of SMS (texted STOP)",
            )
            return True
        cfg = settings()
        if not cfg.twilio_configured:
            await self._db(mark_final, row.id, OUT_NOT_SENT_LOCAL, row.attempts, None)
            logger.info("sms outbox: local mode, row %s for %s recorded, NOT sent",
                        row.id, row.pseudonym)
            return True
        if row.in_doubt:
            found = await self._find_accepted(row, number, cfg.twilio_number)
            if found is not None:
                await self._record_found(row, found)
                return True
        try:
            message = await asyncio.wait_for(
                self._twilio().messages.create_async(
                    to=number, from_=cfg.twilio_number, body=row.body,
                    status_callback=cfg.public_base_url + STATUS_PATH,
                ),
                self.send_timeout_s,
            )
        except TwilioRestException as exc:
            code = str(exc.code or exc.status)
            if _is_transient(exc):
                return await self._retry(row, attempts, code)
            # exc.msg can quote the number (21211); only the code is kept or logged.
            logger.warning("sms outbox: row %s for %s refused by Twilio, code %s",
                           row.id, row.pseudonym, code)
            await self._db(mark_final, row.id, OUT_FAILED, attempts, code)
            await self._db(
                self.problems.flag, row.pseudonym, row.id, code,
                f"reply could not be sent (Twilio error {code})",
            )
            return True
        except aiohttp.ClientConnectorError:
            # No connection was made, so nothing was sent: Twilio certainly has no copy.
            return await self._retry(row, attempts, "network")
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:  # noqa: UP041  (3.10)
            # The request may have been sent and accepted with the answer lost on the way
            # back: the next attempt looks for it before posting again.
            code = "timeout" if isinstance(exc, asyncio.TimeoutError) else "network"
            return await self._retry(row, attempts, code, in_doubt=True)
        except json.JSONDecodeError:
            # Twilio answered 2xx with a body we cannot read: it created the message, so
            # sending again would duplicate it. Mark it sent without a SID.
            await self._db(mark_sent, row.id, None, None, attempts, "unreadable_response")
            return True
        await self._db(mark_sent, row.id, message.sid, message.status, attempts)
        logger.info("sms outbox: row %s for %s sent as %s", row.id, row.pseudonym, message.sid)
        return True

    async def _find_accepted(self, row: OutRow, number: str,
                             line_number: str) -> MessageInstance | None:
        """The copy of ``row`` Twilio already accepted, if its recent messages show one.

        One page of the messages from the line to the number, newest first; a copy has exactly
        the row's text and was created at or after the row's first attempt (less the clock
        skew). A message another row already holds is that row's, not this one's: a short
        reply ("OK.", the fail-safe) can be sent twice on purpose.
        """
        try:
            page = await asyncio.wait_for(
                self._twilio().messages.page_async(
                    to=number, from_=line_number, page_size=LOOKUP_PAGE_SIZE),
                self.send_timeout_s,
            )
            recent = list(page)
        except (TwilioException, asyncio.TimeoutError, aiohttp.ClientError, OSError,  # noqa: UP041
                ValueError) as exc:
            # Not knowing is no reason to hold a reply back on a crisis line: post it, and if
            # the earlier post did arrive the person gets it twice. A duplicate is better
            # than a lost reply. (TwilioRestException's text can quote the number: type only.)
            logger.warning("sms outbox: row %s for %s: look-up for an earlier copy failed (%s);"
                           " posting", row.id, row.pseudonym, type(exc).__name__)
            return None
        # Every claim sets first_attempt_at (and migration 0009 filled it for rows waiting at
        # the upgrade); were it missing, "now" finds nothing and the part is posted, a possible
        # duplicate rather than a wrong match.
        since = (row.first_attempt_at or utcnow()) - LOOKUP_CLOCK_SKEW
        copies = [m for m in recent
                  if m.sid and m.body == row.body and isinstance(m.date_created, dt.datetime)
                  and m.date_created >= since]
        if not copies:
            return None
        taken = await self._db(recorded_sids, [m.sid for m in copies])
        copies = [m for m in copies if m.sid not in taken]
        # Oldest first: the earliest post is the one whose answer was lost.
        return min(copies, key=lambda m: m.date_created) if copies else None

    async def _record_found(self, row: OutRow, message: MessageInstance) -> None:
        """Twilio has this row's message already: mark the row sent with it, post nothing."""
        status = message.status if isinstance(message.status, str) else None
        await self._db(mark_sent, row.id, message.sid, status, row.attempts, "found_at_twilio")
        logger.info("sms outbox: row %s for %s was already accepted by Twilio as %s; "
                    "not posted again", row.id, row.pseudonym, message.sid)
        if status in FAILED_DELIVERY:
            # Its status callbacks came before the row held the SID and matched nothing;
            # the failure still goes in front of staff as a callback's would.
            code = message.error_code
            await self._db(apply_status, message.sid, status, str(code) if code else None,
                           self.problems.failed)

    async def _retry(self, row: OutRow, attempts: int, code: str, in_doubt: bool = False) -> bool:
        """Schedule another attempt, or give up after the last; True when given up."""
        if attempts >= self.max_attempts:
            logger.error("sms outbox: row %s for %s gave up after %s attempts (%s)",
                         row.id, row.pseudonym, attempts, code)
            await self._db(mark_final, row.id, OUT_FAILED, attempts, f"gave_up:{code}")
            await self._db(
                self.problems.flag, row.pseudonym, row.id, code,
                f"reply could not be sent after {attempts} attempts ({code})",
            )
            return True
        delay = self.backoff_s(attempts)
        logger.warning("sms outbox: row %s for %s attempt %s failed (%s); retry in %.2fs",
                       row.id, row.pseudonym, attempts, code, delay)
        await self._db(mark_retry, row.id, attempts, delay, code, in_doubt)
        self.wake()
        return False
