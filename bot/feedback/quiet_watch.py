"""The duty service's quiet-period watcher: a conversation that ended without a goodbye gets
the survey's offer once (docs/feedback.md, "When the line asks").

A pass: end offers a dead duty service left half-sent (``quiet.reap``); find conversations
whose person last wrote between ``quiet_s`` and ``quiet_s + window_s`` ago and whose quiet
spell nobody has handled (``quiet.find``); for each, claim, check and offer in one
transaction (``quiet.claim_and_offer``), send the offer through the staff relay
(``Offers.deliver``) and record how it went (``quiet.settle``). ``window_s`` bounds how late
an offer may come: a duty service that was down for a day, or a line that has just turned
the survey on, does not text people about conversations that ended long ago.

The loop is ``bot/store/loop.py``'s ``BackgroundLoop``; every timing is a constructor
argument. A failed pass is logged by its exception's type and retried at the next poll.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Callable, Optional

from bot.feedback import quiet
from bot.feedback.offers import ABSENT, Offers, RunDb
from bot.feedback.questions import Questions, configured
from bot.store.loop import AT_ONCE, BackgroundLoop
from bot.store.models import utcnow

logger = logging.getLogger(__name__)

QUIET_MINUTES = 30  # FEEDBACK_QUIET_MINUTES' default
WINDOW_S = 2 * 3600.0
POLL_S = 60.0
# An offer still ``sending`` after this long was cut off (the relay's own time-out is 5 s).
SENDING_TIMEOUT = dt.timedelta(minutes=2)
BATCH = 50


class QuietWatcher:
    """``run_once`` every ``poll_s`` seconds (at once again after a full batch)."""

    task_name = "feedback-quiet-watcher"

    def __init__(self, offers: Offers, *, quiet_s: float = QUIET_MINUTES * 60.0,
                 window_s: float = WINDOW_S, poll_s: float = POLL_S, batch: int = BATCH,
                 sending_timeout: dt.timedelta = SENDING_TIMEOUT,
                 run_db: RunDb = asyncio.to_thread,
                 questions: Callable[[], Optional[Questions]] = configured,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.offers = offers
        self.quiet_s = quiet_s
        self.window_s = window_s
        self.batch = batch
        self.sending_timeout = sending_timeout
        self._db = run_db
        self.questions = questions
        self.clock = clock
        self.loop = BackgroundLoop(self.task_name, self._pass, poll_s=poll_s, log=logger,
                                   label="feedback quiet watcher")
        self.outcomes: list[str] = []  # recent outcomes, for tests

    @property
    def running(self) -> bool:
        return self.loop.running

    async def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    async def _pass(self) -> Optional[float]:
        found = await self.run_once()
        return AT_ONCE if found >= self.batch else None

    async def run_once(self) -> int:
        """One pass; how many quiet conversations it looked at."""
        questions = self.questions()
        if questions is None:
            return 0
        now = self.clock()
        await self._db(quiet.reap, self.sending_timeout, now)
        found = await self._db(quiet.find, now, self.quiet_s, self.window_s, self.batch)
        for conversation in found:
            claimed = await self._db(quiet.claim_and_offer, conversation, questions, now)
            if claimed is None:
                continue  # another duty service has it
            outcome = claimed.outcome
            if claimed.offered is not None:
                code = await self.offers.deliver(claimed.offered, claimed.conversation_id,
                                                 claimed.channel, quiet.TRIGGER)
                outcome = (quiet.OFFERED if code is None
                           else quiet.ABSENT if code == ABSENT else quiet.UNSENT)
                await self._db(quiet.settle, claimed.conversation_id, outcome,
                               claimed.offered.survey_id if code is None else None)
            self.outcomes = (self.outcomes + [outcome])[-200:]
        return len(found)

