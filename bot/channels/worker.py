"""The inbox worker: runs one bot turn per inbox row, in order, one at a time per conversation.

It lives in the Rasa server's event loop (started by the channel's ``after_server_start``
listener) and hands each message to Rasa's ``on_new_message``. The webhook has already answered
Twilio; nothing here is on the webhook's path.

Fail-safe: a turn that raises, or has not finished after ``turn_timeout_s``, gets the short
fail-safe reply (999, Samaritans, NHS 111 option 2) and staff are told. The real turn is left
to finish (its late reply is still sent) for up to ``turn_hard_limit_s``, holding the
conversation so that the next message waits its turn.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage

from bot.channels import inbox, retention
from bot.store.dbthread import PASS_GAP_S
from bot.store.loop import BackgroundLoop
from bot.channels.gate import recently_at_risk
from bot.sms.keywords import FAILSAFE_REPLY, HELP_REPLY
from bot.store.models.sms import INBOX_DONE, INBOX_FAILED, INBOX_FAILSAFE
from bot.channels.ratelimit import TokenBucket
from bot.escalation.engine import flag_for_staff
from bot.escalation.watch import conversation_held

logger = logging.getLogger(__name__)

Handler = Callable[[UserMessage], Awaitable[Any]]


def _epoch(at: dt.datetime | None) -> float | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)).timestamp()


class InboxWorker:
    def __init__(
        self,
        handler: Handler,
        output_for: Callable[..., Any],
        enqueue: Callable[[str, str, str, int | None], Awaitable[None]],
        *,
        turn_timeout_s: float = 8.0,
        turn_hard_limit_s: float = 120.0,
        lease_s: float = 30.0,
        poll_s: float = 0.5,
        pass_gap_s: float = PASS_GAP_S,
        purge_every_s: float = 3600.0,
        purge_first_after_s: float = 300.0,
        max_attempts: int = 3,
        concurrency: int = 32,
        risk_headroom: int = 16,
        limiter: TokenBucket | None = None,
        retention_days: float | None = None,
        run_db: Callable[..., Awaitable[Any]] = asyncio.to_thread,
    ) -> None:
        self.handler = handler
        self.output_for = output_for
        self.enqueue = enqueue
        self.turn_timeout_s = turn_timeout_s
        self.turn_hard_limit_s = max(turn_hard_limit_s, turn_timeout_s)
        self.lease = dt.timedelta(seconds=lease_s)
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        # Turns beyond ``concurrency`` for messages that show risk: a full worker must not
        # leave "I've taken all my pills" in the inbox until an ordinary turn ends (they go
        # first at the turn gate once claimed).
        self.risk_headroom = risk_headroom
        self._risk_waiting = False
        self.limiter = limiter or TokenBucket()
        self._db = run_db
        # Unique per worker instance: a restarted process must not mistake a dead worker's
        # lease for its own.
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.loop = BackgroundLoop("sms-inbox-worker", self._pass, poll_s=poll_s,
                                   gap_s=pass_gap_s, log=logger, label="sms worker")
        # pseudonym -> (inbox id, task). One entry per conversation: this is the in-process
        # "one turn at a time" lock; the database claim extends it across processes.
        self._active: dict[str, tuple] = {}
        self._last_renew = 0.0
        self._last_reclaim = float("-inf")
        # The first purge waits a few minutes: start-up (and a restart loop) stays light.
        self.purge_every_s = purge_every_s
        self._last_purge = time.monotonic() - purge_every_s + purge_first_after_s
        self.retention_days = retention_days

    @property
    def poll_s(self) -> float:
        return self.loop.poll_s

    async def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        """Stop taking messages; turns under way are cancelled and their rows given back."""
        await self.loop.stop()
        active = dict(self._active)
        for _, turn in active.values():
            turn.cancel()
        if active:
            await asyncio.gather(*(t for _, t in active.values()), return_exceptions=True)
        try:
            await self._db(inbox.release, self.owner, [i for i, _ in active.values()])
        except Exception as exc:  # noqa: BLE001 the leases run out and another worker takes the rows
            logger.error("sms worker: could not release rows on stop (%s)", type(exc).__name__)

    def wake(self, risk: bool = False) -> None:
        """A message is waiting; ``risk``: it shows risk, so the next pass comes at once (not
        after the gap between passes) and may claim it even when the worker is full."""
        if risk:
            self._risk_waiting = True
        self.loop.wake(urgent=risk)

    @property
    def running(self) -> bool:
        return self.loop.running

    async def _pass(self) -> None:
        now = time.monotonic()
        # At start (what a crashed run left) and then now and again (other processes' leases).
        if now - self._last_reclaim > min(5.0, self.lease.total_seconds() / 3):
            self._last_reclaim = now
            await self._db(inbox.reclaim_expired)
        if self.retention_days and now - self._last_purge > self.purge_every_s:
            self._last_purge = now
            purged = await self._db(retention.purge, self.retention_days)
            if purged.inbox or purged.outbox:
                logger.info("sms worker: purged %d inbox and %d outbox rows older than %g days",
                            purged.inbox, purged.outbox, self.retention_days)
        if self._active and now - self._last_renew > self.lease.total_seconds() / 3:
            self._last_renew = now
            await self._db(
                inbox.renew, self.owner, [i for i, _ in self._active.values()], self.lease
            )
        free = self.concurrency - len(self._active)
        risk_only = free <= 0
        if risk_only:
            free = self.concurrency + self.risk_headroom - len(self._active)
            if not self._risk_waiting or free <= 0:
                return
        asked, self._risk_waiting = self._risk_waiting, False
        try:
            rows = await self._db(
                inbox.claim, self.owner, self.lease, set(self._active), self.limiter.try_take,
                free, recently_at_risk, risk_only,
            )
        except BaseException:
            self._risk_waiting = self._risk_waiting or asked  # still waiting: the next pass
            raise
        if self.loop.stopping:  # stop() came while claiming: give the rows straight back
            await self._db(inbox.release, self.owner, [r.id for r in rows])
            return
        for row in rows:
            task = asyncio.create_task(self._handle(row), name=f"sms-turn-{row.id}")
            self._active[row.pseudonym] = (row.id, task)

    async def _handle(self, row: inbox.Claimed) -> None:
        status, error = INBOX_DONE, None
        try:
            if row.kind == "help":
                await self.enqueue(row.pseudonym, HELP_REPLY, "help", row.id)
            elif row.attempts > self.max_attempts:
                # This message has already taken a worker down more than once: answer safely
                # and let a human look, rather than crash again.
                status, error = INBOX_FAILED, "too_many_attempts"
                await self._failsafe(row, error)
            else:
                status, error = await self._turn(row)
            await self._db(inbox.finish, row.id, self.owner, status, error)
            logger.info("sms worker: %s for %s: %s", row.message_sid, row.pseudonym, status)
        except asyncio.CancelledError:
            raise  # stop() gives the row back
        except Exception as exc:  # noqa: BLE001
            # Our own failure (most likely the database): the lease runs out and the row is
            # taken again, so the message is not lost.
            logger.error("sms worker: %s for %s not finished (%s)", row.message_sid,
                         row.pseudonym, type(exc).__name__)
        finally:
            self._active.pop(row.pseudonym, None)
            # The conversation's next message may have waited for this turn ("no" to "are
            # you safe?"): it counts as risk, so a full worker still takes it.
            self.wake(recently_at_risk(row.pseudonym))

    async def _turn(self, row: inbox.Claimed) -> tuple:
        # attempts > 1: this row's turn ran before and its process died; what it sent then is
        # not sent again.
        output = self.output_for(row.id, row.attempts > 1)
        message = UserMessage(
            row.body,
            output,
            sender_id=row.pseudonym,
            input_channel="sms",
            message_id=row.message_sid,
            # No phone number here: metadata is stored in the tracker. received_at: the turn
            # gate stamps it as the message's arrival (gate.mark_arrival).
            metadata={"sms": {"num_media": row.num_media, "message_sid": row.message_sid,
                              "received_at": _epoch(row.received_at)}},
        )
        started = time.monotonic()
        task = asyncio.ensure_future(self.handler(message))
        try:
            await asyncio.wait_for(asyncio.shield(task), self.turn_timeout_s)
            if getattr(output, "sent", 1) or await self._db(conversation_held, row.pseudonym):
                return INBOX_DONE, None
            # The turn "worked" but said nothing: Rasa carries on when a custom action fails
            # (the action server down), and the person would hear nothing at all. Silence is
            # not an answer on a crisis line; a conversation a human holds is meant to be quiet.
            reason = "no_reply"
            logger.warning("sms worker: turn for %s sent nothing; sending the fail-safe reply",
                           row.pseudonym)
            await self._failsafe(row, reason)
            return INBOX_FAILSAFE, reason
        except asyncio.TimeoutError:  # noqa: UP041  on Python 3.10 it is not the builtin TimeoutError
            reason = "timeout"
        except asyncio.CancelledError:
            task.cancel()
            raise
        except Exception as exc:  # noqa: BLE001
            reason = type(exc).__name__
        logger.warning("sms worker: turn for %s failed (%s); sending the fail-safe reply",
                       row.pseudonym, reason)
        await self._failsafe(row, reason)
        if not task.done():
            remaining = self.turn_hard_limit_s - (time.monotonic() - started)
            try:
                await asyncio.wait_for(task, max(remaining, 0.0))
            except asyncio.TimeoutError:  # noqa: UP041  on Python 3.10 it is not the builtin TimeoutError
                logger.error("sms worker: turn for %s abandoned after %.0fs", row.pseudonym,
                             self.turn_hard_limit_s)
            except asyncio.CancelledError:
                task.cancel()
                raise
            except Exception as exc:  # noqa: BLE001
                logger.error("sms worker: late turn for %s raised %s", row.pseudonym,
                             type(exc).__name__)
        return INBOX_FAILSAFE, reason

    async def _failsafe(self, row: inbox.Claimed, reason: str) -> None:
        await self.enqueue(row.pseudonym, FAILSAFE_REPLY, "failsafe", row.id)
        await self._db(
            flag_for_staff, row.pseudonym, "turn_failed",
            f"the assistant could not answer an SMS ({reason}); the fail-safe reply was sent",
            {"message_sid": row.message_sid, "reason": reason}, "support", "sms",
        )
