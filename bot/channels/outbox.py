"""The outbox and its sender: every SMS is a row before it is posted to Twilio.

Delivery from the person's view is exactly once in all but one case: a row is marked ``sent``
with Twilio's message SID as soon as Twilio accepts it, and only rows not yet marked are sent
again (after a crash, on start-up). If the process dies after Twilio accepted a message and
before the row was marked, or a request times out after Twilio accepted it, that one part is
sent a second time. Twilio's Messages API has no idempotency key, so at-most-one duplicate is
the price of never losing a reply.

Retries: 429, 5xx, timeouts and connection errors are retried with exponential backoff and
full jitter, up to ``max_attempts``. Other 4xx errors are permanent (21610: the person texted
STOP; 21211: not a valid number): recorded with their code, not retried, and shown to staff
when the conversation has a live escalation. A staff alert that cannot be delivered goes on
its escalation's trail and moves the ladder on (``bot.escalation.dispatch.alert_undeliverable``).
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import aliased
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bot.channels.dbthread import nap
from bot.channels.models import (
    OUT_FAILED,
    OUT_NOT_SENT_LOCAL,
    OUT_PENDING,
    OUT_SENDING,
    OUT_SENT,
    OUT_SUPPRESSED,
    SmsContact,
    SmsOutbox,
)
from bot.channels.pseudonym import decrypt_number
from bot.channels.segments import split_message
from bot.escalation.dispatch import alert_undeliverable
from bot.escalation.engine import flag_for_staff
from bot.settings import settings
from bot.store.db import transaction
from bot.store.models import utcnow

logger = logging.getLogger(__name__)

STATUS_PATH = "/webhooks/sms/status"
# Twilio status callbacks can arrive out of order; a later-ranked status is never overwritten
# by an earlier one.
_STATUS_RANK = {
    "accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
    "delivered": 4, "undelivered": 4, "failed": 4, "read": 5, "canceled": 4,
}
FAILED_DELIVERY = frozenset({"failed", "undelivered"})


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


def enqueue(pid: str, text: str, kind: str, inbox_id: int | None, max_segments: int,
            replay: bool = False) -> list[int]:
    """Write the parts of one bot message; the sender posts them in id order.

    ``replay``: the turn for ``inbox_id`` is being run again (the process died mid-turn), so a
    message it already wrote then is skipped rather than sent twice. A reply with several
    variations may come out differently the second time; that one is sent.
    """
    parts = split_message(text, max_segments=max_segments)
    now = utcnow()
    ids = []
    with transaction() as s:
        if replay and inbox_id is not None:
            already = s.execute(
                select(SmsOutbox.id).where(
                    SmsOutbox.inbox_id == inbox_id, SmsOutbox.kind == kind,
                    SmsOutbox.part == 1, SmsOutbox.body == parts[0].text,
                ).limit(1)
            ).first()
            if already is not None:
                logger.info("sms outbox: replayed turn for inbox row %s repeated a message "
                            "already queued; not sent twice", inbox_id)
                return []
        for n, part in enumerate(parts, start=1):
            row = SmsOutbox(
                pseudonym=pid, inbox_id=inbox_id, kind=kind, body=part.text, part=n,
                parts=len(parts), encoding=part.encoding, segments=part.segments,
                status=OUT_PENDING, attempts=0, next_attempt_at=now, created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            ids.append(row.id)
    return ids


def reclaim_expired() -> int:
    """Rows left ``sending`` by a process that died: send again (see the module docstring)."""
    with transaction() as s:
        result = s.execute(
            update(SmsOutbox)
            .where(SmsOutbox.status == OUT_SENDING, SmsOutbox.lease_until < utcnow())
            .values(status=OUT_PENDING, lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount or 0


def claim_due(owner: str, lease: dt.timedelta, busy: set[str], limit: int = 32) -> list[OutRow]:
    """The next due part of each conversation, never overtaking an earlier unsent part."""
    now = utcnow()
    with transaction() as s:
        query = (
            select(SmsOutbox.id, SmsOutbox.pseudonym)
            .where(SmsOutbox.status == OUT_PENDING, SmsOutbox.next_attempt_at <= now)
            .order_by(SmsOutbox.id)
            .limit(200)
        )
        if s.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        chosen, seen = [], set()
        for row in s.execute(query).all():
            if len(chosen) >= limit:
                break
            if row.pseudonym in seen or row.pseudonym in busy:
                continue
            seen.add(row.pseudonym)
            chosen.append(row.id)
        if not chosen:
            return []
        # One statement for the batch (SQLite's write lock stays short); per row, a part
        # waits while an earlier part of the same conversation is unsent.
        earlier = aliased(SmsOutbox)
        blocked = (
            exists()
            .where(and_(earlier.pseudonym == SmsOutbox.pseudonym, earlier.id < SmsOutbox.id,
                        earlier.status.in_((OUT_PENDING, OUT_SENDING))))
            .correlate(SmsOutbox)
        )
        s.execute(
            update(SmsOutbox)
            .where(SmsOutbox.id.in_(chosen), SmsOutbox.status == OUT_PENDING, ~blocked)
            .values(status=OUT_SENDING, lease_owner=owner, lease_until=now + lease, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        rows = s.execute(
            select(SmsOutbox.id, SmsOutbox.pseudonym, SmsOutbox.body, SmsOutbox.kind,
                   SmsOutbox.attempts, SmsContact.number_enc, SmsContact.opted_out)
            .outerjoin(SmsContact, SmsContact.pseudonym == SmsOutbox.pseudonym)
            .where(SmsOutbox.id.in_(chosen), SmsOutbox.status == OUT_SENDING,
                   SmsOutbox.lease_owner == owner)
            .order_by(SmsOutbox.id)
        ).all()
    return [OutRow(r.id, r.pseudonym, r.body, r.kind, r.attempts, _number(r.number_enc),
                   bool(r.opted_out)) for r in rows]


def _number(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        return decrypt_number(token)
    except ValueError:  # PSEUDONYM_KEY changed since the number was stored
        return None


def next_due_in() -> float | None:
    """Seconds until the earliest pending retry is due (None when nothing waits)."""
    with transaction() as s:
        at = s.execute(
            select(SmsOutbox.next_attempt_at)
            .where(SmsOutbox.status == OUT_PENDING)
            .order_by(SmsOutbox.next_attempt_at)
            .limit(1)
        ).scalar_one_or_none()
    if at is None:
        return None
    if at.tzinfo is None:  # SQLite hands back naive UTC
        at = at.replace(tzinfo=dt.timezone.utc)  # noqa: UP017  dt.UTC is 3.11+
    return max(0.0, (at - utcnow()).total_seconds())


def _update(row_id: int, **values) -> None:
    values["updated_at"] = utcnow()
    with transaction() as s:
        s.execute(
            update(SmsOutbox).where(SmsOutbox.id == row_id).values(**values)
            .execution_options(synchronize_session=False)
        )


def mark_sent(row_id: int, twilio_sid: str | None, twilio_status: str | None,
              attempts: int, error_code: str | None = None) -> None:
    _update(row_id, status=OUT_SENT, twilio_sid=twilio_sid, delivery_status=twilio_status,
            sent_at=utcnow(), attempts=attempts, lease_owner=None, lease_until=None,
            error_code=error_code)


def mark_retry(row_id: int, attempts: int, delay_s: float, error_code: str) -> None:
    _update(row_id, status=OUT_PENDING, attempts=attempts, lease_owner=None, lease_until=None,
            next_attempt_at=utcnow() + dt.timedelta(seconds=delay_s), error_code=error_code)


def mark_final(row_id: int, status: str, attempts: int, error_code: str | None) -> None:
    _update(row_id, status=status, attempts=attempts, lease_owner=None, lease_until=None,
            error_code=error_code)


def flag_delivery_problem(pid: str, outbox_id: int, error_code: str | None, reason: str) -> bool:
    """Tell staff, but only on a conversation with a live escalation (level=None).

    A staff alert that can never be delivered is the escalation's problem, not a
    conversation's: it goes on that escalation's trail and may move the ladder on at once
    (``dispatch.alert_undeliverable``).
    """
    if alert_undeliverable(outbox_id, error_code) is not None:
        return True
    record = flag_for_staff(
        pid, "delivery_failed", reason,
        {"outbox_id": outbox_id, "error_code": error_code}, level=None, channel="sms",
    )
    return record is not None


def apply_status(twilio_sid: str, status: str, error_code: str | None) -> str | None:
    """Record a Twilio status callback; returns the conversation when delivery failed."""
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
            if alert_undeliverable(row.id, error_code, session=s) is not None:
                return row.pseudonym  # a staff alert: on its escalation's trail, not a person's
            flag_for_staff(
                row.pseudonym, "delivery_failed",
                f"SMS to the person was {status} (Twilio error {error_code or 'none'})",
                {"outbox_id": row.id, "twilio_sid": twilio_sid, "error_code": error_code},
                level=None, channel="sms", session=s,
            )
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
        max_attempts: int = 6,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        send_timeout_s: float = 10.0,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        concurrency: int = 8,
        rng: Callable[[], float] = random.random,
        run_db: Callable[..., Awaitable[Any]] = asyncio.to_thread,
    ) -> None:
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.send_timeout_s = send_timeout_s
        self.lease = dt.timedelta(seconds=lease_s)
        self.poll_s = poll_s
        self.concurrency = concurrency
        self._rng = rng
        self._db = run_db
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._active: dict[str, asyncio.Task] = {}
        self._client = None
        self._http = None
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._last_reclaim = float("-inf")
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            if settings().twilio_configured:
                # twilio imports its API classes on first use, for over a second: do that in a
                # thread now, not in the event loop during the first reply.
                await asyncio.to_thread(_warm_up_twilio)  # once, before traffic
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="sms-outbox-sender")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._stopping = True  # in case a cancellation is lost, the loop still ends
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # A part in flight is allowed to finish: cancelling after Twilio accepted it but
        # before the row was marked is exactly the case that sends a duplicate.
        if self._active:
            await asyncio.wait(list(self._active.values()), timeout=self.send_timeout_s + 1)
        if self._http is not None:
            await self._http.close()
            self._http = self._client = None

    def wake(self) -> None:
        self._wake.set()

    # -- loop ------------------------------------------------------------------------------

    def backoff_s(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))], at least 1/10 of it."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2 ** max(0, attempt - 1)))
        return ceiling * (0.1 + 0.9 * self._rng())

    async def _run(self) -> None:
        while not self._stopping:
            try:
                now = time.monotonic()
                # At start (what a crashed run left) and then now and again (other processes).
                if now - self._last_reclaim > min(5.0, self.lease.total_seconds() / 3):
                    self._last_reclaim = now
                    await self._db(reclaim_expired)
                free = self.concurrency - len(self._active)
                rows = []
                if free > 0:
                    rows = await self._db(
                        claim_due, self.owner, self.lease, set(self._active), free
                    )
                for row in rows:
                    task = asyncio.create_task(self._send(row))
                    self._active[row.pseudonym] = task
                    task.add_done_callback(lambda _t, pid=row.pseudonym: self._done(pid))
                due = await self._db(next_due_in)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 the database is down: keep trying, say so without data
                logger.error("sms outbox: pass failed (%s); retrying", type(exc).__name__)
                due = None
            await nap(self._wake, self.poll_s if due is None else min(self.poll_s, max(due, 0.01)))

    def _done(self, pid: str) -> None:
        self._active.pop(pid, None)
        self._wake.set()  # the conversation's next part may go now

    def _twilio(self):
        if self._client is None:
            cfg = settings()
            # Made inside the running loop: the aiohttp session belongs to this loop.
            self._http = AsyncTwilioHttpClient()
            client = Client(cfg.twilio_account_sid, cfg.twilio_auth_token, http_client=self._http)
            # Point the API domain at TWILIO_API_URL (tests use a local fake; a proxy may too).
            client.api.base_url = cfg.twilio_api_url
            self._client = client
        return self._client

    async def _send(self, row: OutRow) -> None:
        try:
            await self._send_one(row)
        except Exception as exc:  # noqa: BLE001
            # Most likely the database went away mid-send. The row keeps its lease and is
            # sent again once the lease runs out (reclaim_expired).
            logger.error("sms outbox: row %s for %s: %s", row.id, row.pseudonym,
                         type(exc).__name__)

    async def _send_one(self, row: OutRow) -> None:
        attempts = row.attempts + 1
        if row.number is None:
            logger.error("sms outbox: no usable contact for %s (row %s)", row.pseudonym, row.id)
            await self._db(mark_final, row.id, OUT_FAILED, attempts, "no_contact")
            await self._db(flag_delivery_problem, row.pseudonym, row.id, "no_contact",
                                    "reply not sent: no usable phone number on record")
            return
        number = row.number
        if row.opted_out:
            await self._db(mark_final, row.id, OUT_SUPPRESSED, row.attempts, "21610")
            await self._db(
                flag_delivery_problem, row.pseudonym, row.id, "21610",
                "reply not sent: the person has opted out of SMS (texted STOP)",
            )
            return
        cfg = settings()
        if not cfg.twilio_configured:
            await self._db(mark_final, row.id, OUT_NOT_SENT_LOCAL, row.attempts, None)
            logger.info("sms outbox: local mode, row %s for %s recorded, NOT sent",
                        row.id, row.pseudonym)
            return
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
                await self._retry(row, attempts, code)
                return
            # exc.msg can quote the number (21211); only the code is kept or logged.
            logger.warning("sms outbox: row %s for %s refused by Twilio, code %s",
                           row.id, row.pseudonym, code)
            await self._db(mark_final, row.id, OUT_FAILED, attempts, code)
            await self._db(
                flag_delivery_problem, row.pseudonym, row.id, code,
                f"reply could not be sent (Twilio error {code})",
            )
            return
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:  # noqa: UP041  (3.10)
            code = "timeout" if isinstance(exc, asyncio.TimeoutError) else "network"
            await self._retry(row, attempts, code)
            return
        except json.JSONDecodeError:
            # Twilio answered 2xx with a body we cannot read: it created the message, so
            # sending again would duplicate it. Mark it sent without a SID.
            await self._db(mark_sent, row.id, None, None, attempts, "unreadable_response")
            return
        await self._db(mark_sent, row.id, message.sid, message.status, attempts)
        logger.info("sms outbox: row %s for %s sent as %s", row.id, row.pseudonym, message.sid)

    async def _retry(self, row: OutRow, attempts: int, code: str) -> None:
        if attempts >= self.max_attempts:
            logger.error("sms outbox: row %s for %s gave up after %s attempts (%s)",
                         row.id, row.pseudonym, attempts, code)
            await self._db(mark_final, row.id, OUT_FAILED, attempts, f"gave_up:{code}")
            await self._db(
                flag_delivery_problem, row.pseudonym, row.id, code,
                f"reply could not be sent after {attempts} attempts ({code})",
            )
            return
        delay = self.backoff_s(attempts)
        logger.warning("sms outbox: row %s for %s attempt %s failed (%s); retry in %.2fs",
                       row.id, row.pseudonym, attempts, code, delay)
        await self._db(mark_retry, row.id, attempts, delay, code)
        self.wake()
