"""One background loop: a pass, then a nap until woken or the poll comes round, until stopped.

The inbox worker (``bot/channels/worker.py``), the outbox sender (``bot/sms/outbox.py``) and
the alert dispatcher (``bot/escalation/dispatch.py``) each run one in an event loop. What a
pass does is theirs; when it runs, how it is woken, how a failed pass is survived and how the
loop stops are here, once.

Timings are the loop's constructor arguments: ``poll_s`` (the longest nap), ``gap_s`` (the
least time from the start of one pass to the next, unless an urgent wake-up comes; see
``dbthread.PASS_GAP_S`` for why the SMS loops have one). A pass returns when it wants the
next one: None at the poll, a number of seconds (capped at the poll), or ``AT_ONCE`` (the
next pass starts straight away, e.g. a full batch means more work is waiting).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.store.dbthread import nap

logger = logging.getLogger(__name__)

# A pass that returns this (or anything <= 0) has the next pass start at once, with no nap.
AT_ONCE = 0.0

Pass = Callable[[], Awaitable["float | None"]]


class BackgroundLoop:
    """Runs ``step`` over and over in the running event loop between ``start`` and ``stop``.

    A pass that raises is logged by its exception's type only (never its message: it could
    quote a database parameter, a number or message text) under ``name``, and the loop goes on
    after the usual nap, so a database outage is waited out. ``wake()`` ends the nap now
    (a wake-up during a pass is kept: the next pass follows it); ``wake(urgent=True)`` also
    skips what is left of the gap.
    """

    def __init__(self, name: str, step: Pass, *, poll_s: float, gap_s: float = 0.0,
                 log: logging.Logger | None = None, label: str | None = None) -> None:
        self.name = name  # the task's name
        self.label = label or name  # what its log lines begin with
        self.step = step
        self.poll_s = poll_s
        self.gap_s = gap_s
        self.log = log or logger
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    @property
    def started(self) -> bool:
        """Started and not stopped (the task may have ended on its own, see ``running``)."""
        return self._task is not None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def stopping(self) -> bool:
        """``stop`` has been called: a pass under way should hand back what it just took."""
        return self._stopping

    def start(self) -> None:
        """Start the loop in the running event loop (again after ``stop``); once only."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the pass or nap under way and wait for the loop to end (idempotent)."""
        task, self._task = self._task, None
        self._stopping = True  # in case a cancellation is lost, the loop still ends
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def wake(self, urgent: bool = False) -> None:
        if urgent:
            self._urgent.set()
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            started = time.monotonic()
            try:
                wanted = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  the database is down: keep trying, say so without data
                self.log.error("%s: pass failed (%s); retrying", self.label, type(exc).__name__)
                wanted = None
            if wanted is not None and wanted <= AT_ONCE:
                continue
            timeout = self.poll_s if wanted is None else min(self.poll_s, wanted)
            # ``nap`` rather than ``wait_for``, which can lose a cancellation on Python 3.10.
            await nap(self._wake, timeout, started + min(self.gap_s, self.poll_s), self._urgent)
            self._urgent.clear()
