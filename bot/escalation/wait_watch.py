"""The duty service's wait watcher: an update every few minutes to a person waiting for a human.

A pass: the waiting escalations whose next update is due (``wait.due``); for each, whether the
person has a crisis plan (``has_plan``, handed in: the plan lives in another package, wired by
the duty service), the claim (``wait.claim_update``: re-checked under the escalation's row lock
and put on the trail in one transaction), then the send through ``send`` (the duty service's
staff relay, ``/webhooks/relay/wait``). A send that did not go is noted on the trail
(``wait.record_unsent``) and the next update comes after the interval as usual.

The loop is ``bot/store/loop.py``'s ``BackgroundLoop``; every timing is a constructor
argument. A failed pass is logged by its exception's type and retried at the next poll.
Nothing here logs message text or conversation ids: references and numbers only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional

from bot.escalation import wait
from bot.escalation.rota_store import RotaSource
from bot.settings import settings
from bot.store.loop import AT_ONCE, BackgroundLoop
from bot.store.models import utcnow

logger = logging.getLogger(__name__)

POLL_S = 15.0
BATCH = 100
# Why an update did not go (``NotSent.code``), as on the trail.
PAUSED = "paused"  # a human took the conversation over between the claim and the send
ABSENT = "absent"  # web chat: no page of the conversation is open
REFUSED = "refused"  # the relay refused it (a conversation id it cannot use)
UNREACHABLE = "unreachable"  # the relay could not be reached, or failed


@dataclass(frozen=True)
class WaitMessage:
    """One update as the relay carries it: never logged (it names the conversation)."""

    conversation_id: str
    channel: str
    ref: str
    text: str
    number: int


class NotSent(Exception):
    """The relay did not deliver the update; ``code`` says why (``PAUSED`` ...)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


Send = Callable[[WaitMessage], Awaitable[None]]
RunDb = Callable[..., Awaitable[Any]]


def never_a_plan(conversation_id: str) -> bool:
    return False


class WaitWatcher:
    """``run_once`` every ``poll_s`` seconds (at once again after a full batch)."""

    task_name = "wait-watcher"

    def __init__(self, send: Send, *, rota_path: Optional[str] = None,
                 interval_s: float = wait.UPDATE_S, max_updates: int = wait.MAX_UPDATES,
                 window_s: float = wait.WINDOW_S, poll_s: float = POLL_S, batch: int = BATCH,
                 run_db: RunDb = asyncio.to_thread,
                 has_plan: Callable[[str], bool] = never_a_plan,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.send = send
        self.rota = RotaSource(rota_path or settings().rota_file)
        self.interval_s = interval_s
        self.max_updates = max_updates
        self.window_s = window_s
        self.batch = batch
        self._db = run_db
        self.has_plan = has_plan
        self.clock = clock
        self.loop = BackgroundLoop(self.task_name, self._pass, poll_s=poll_s, log=logger,
                                   label="wait watcher")
        # Recent (ref, number, outcome) for tests: outcome "sent" or a ``NotSent`` code.
        self.outcomes: list[tuple[str, int, str]] = []

    @property
    def running(self) -> bool:
        return self.loop.running

    async def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    def wake(self) -> None:
        self.loop.wake()

    async def _pass(self) -> Optional[float]:
        found = await self.run_once()
        return AT_ONCE if found >= self.batch else None

    def _plan(self, conversation_id: str) -> bool:
        try:
            return bool(self.has_plan(conversation_id))
        except Exception as exc:  # noqa: BLE001  the update goes anyway, offering CALM only
            logger.error("wait watcher: has_plan failed (%s)", type(exc).__name__)
            return False

    async def run_once(self) -> int:
        """One pass; how many due escalations it looked at."""
        now = self.clock()
        r = await self._db(self.rota.get)
        found = await self._db(wait.due, now, self.interval_s, self.max_updates,
                               self.window_s, self.batch)
        for waiting in found:
            plan = await self._db(self._plan, waiting.conversation_id)
            claimed = await self._db(wait.claim_update, waiting.escalation_id, r,
                                     self.interval_s, self.max_updates, plan)
            if claimed is None:
                continue  # picked up, resolved or sent by another duty service meanwhile
            await self._deliver(claimed)
        return len(found)

    async def _deliver(self, claimed: wait.Claimed) -> None:
        message = WaitMessage(claimed.conversation_id, claimed.channel, claimed.ref,
                              claimed.text, claimed.number)
        try:
            await self.send(message)
        except NotSent as exc:
            code = exc.code
        except Exception as exc:  # noqa: BLE001  the next update comes after the interval
            logger.error("wait watcher: sending update %s on %s failed (%s)", claimed.number,
                         claimed.ref, type(exc).__name__)
            code = UNREACHABLE
        else:
            logger.info("wait watcher: update %s on %s sent (%s)", claimed.number, claimed.ref,
                        claimed.estimate.wording)
            self.outcomes = (self.outcomes + [(claimed.ref, claimed.number, "sent")])[-200:]
            return
        logger.info("wait watcher: update %s on %s not delivered (%s)", claimed.number,
                    claimed.ref, code)
        self.outcomes = (self.outcomes + [(claimed.ref, claimed.number, code)])[-200:]
        await self._db(wait.record_unsent, claimed.escalation_id, claimed.number, code)
