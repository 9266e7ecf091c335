"""One thread for the channel's database work, with the webhook's writes served first.

Why not a thread pool: on SQLite, several threads writing at once wait for each other in
SQLite's busy handler, which sleeps in steps of up to 100 ms, and Twilio's request waits with
them. On any database, each busy thread also takes the GIL from the event loop. One thread
never contends with itself, and a priority queue lets an inbound message jump ahead of the
worker's and sender's queued housekeeping: its wait is at most the one statement in progress.

Group commit: jobs queued together whose functions are marked ``db.group_safe`` run in one
transaction. On PostgreSQL a transaction of its own costs each job round trips beyond its
statements (BEGIN, COMMIT, and a pre-ping after the connection sat idle), and while a bot
turn holds the GIL in another
thread, every round trip waits up to the switch interval to get it back: measured, 4.4 ms
for a one-statement transaction instead of 0.5 ms on an idle process. If one job of a group
raises, the group is rolled back and each job runs again in its own transaction, so one bad
job never takes the others down; if the commit itself fails, every job of the group hears
of it, as a job of its own would.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.store.db import shared_transaction

INGEST = 0  # the webhook and status callback: Twilio is waiting
BACKGROUND = 1  # worker, sender
_STOP = 2


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    fn: Callable[..., Any] | None = field(compare=False)
    args: tuple = field(compare=False)
    loop: asyncio.AbstractEventLoop | None = field(compare=False)
    future: asyncio.Future | None = field(compare=False)
    # Jobs with the same batch function that are queued together run as one call, e.g. one
    # transaction (one commit, one fsync) for every webhook that arrived meanwhile.
    batch: Callable[[list], list] | None = field(default=None, compare=False)


# The least time from one pass of the worker or the sender to the next. Both are woken by
# every message in and every part out, and each pass is a claim (three statements and a
# commit). Under load, passes back to back claimed a row or two each and, with the database
# thread, held over a quarter of the GIL the bot's turns need (py-spy --gil, 50 SMS
# conversations); spaced out, one pass claims what arrived meanwhile. Measured at 50 SMS
# conversations, runs interleaved: 20 ms 20.1 / 16.8 turns/s, 80 ms 23.0 / 20.0 and
# 23.1 / 24.5, 150 ms 24.7 / 23.0 with a slower emergency reply. When the line is quiet the
# last pass is long past, and nothing waits.
PASS_GAP_S = 0.08


async def nap(wake: asyncio.Event, timeout: float, not_before: float = 0.0,
              urgent: asyncio.Event | None = None) -> None:
    """Sleep until ``wake`` is set or ``timeout`` passes, then clear it; in any case not
    until ``time.monotonic()`` reaches ``not_before``, unless ``urgent`` is set (the caller
    clears it).

    Not ``asyncio.wait_for``: on Python 3.10 it can swallow a cancellation that arrives as the
    event fires (bpo-42130), and a loop that lost its cancellation never stops.
    """
    waiter = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    wake.clear()
    rest = not_before - time.monotonic()
    if rest <= 0 or (urgent is not None and urgent.is_set()):
        return
    if urgent is None:
        await asyncio.sleep(rest)
        return
    early = asyncio.ensure_future(urgent.wait())
    try:
        await asyncio.wait({early}, timeout=rest)
    finally:
        early.cancel()


def _resolve(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class DbThread:
    def __init__(self, name: str = "sms-db", max_batch: int = 64) -> None:
        self.name = name
        self.max_batch = max_batch
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._seq = itertools.count()  # FIFO within one priority
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                # Daemon: a stuck database call must not keep the server from exiting.
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()

    def _put(self, priority: int, fn: Callable[..., Any] | None, args: tuple,
             batch: Callable[[list], list] | None = None) -> asyncio.Future:
        self._ensure_thread()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Job(priority, next(self._seq), fn, args, loop, future, batch))
        return future

    async def _submit(self, priority: int, fn: Callable[..., Any] | None, args: tuple,
                      batch: Callable[[list], list] | None = None) -> Any:
        return await self._put(priority, fn, args, batch)

    def run(self, priority: int, fn: Callable[..., Any], *args: Any):
        return self._submit(priority, fn, args)

    def ingest(self, fn: Callable[..., Any], *args: Any):
        return self._submit(INGEST, fn, args)

    def ingest_batched(self, batch: Callable[[list], list], *args: Any):
        """Run ``batch([args, ...])`` for this and any other queued jobs of the same batch.

        ``batch`` returns one result per item, in order; an item's result that is an
        exception is raised to that item's caller only.
        """
        return self._submit(INGEST, None, args, batch)

    def background(self, fn: Callable[..., Any], *args: Any):
        return self._submit(BACKGROUND, fn, args)

    def background_soon(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Queue ``fn(*args)`` now and return its future without waiting (call from a loop).

        Jobs run in the order they were queued, so a caller may queue several and wait for
        them all later; it must wait for (or at least retrieve) every future it was given.
        """
        return self._put(BACKGROUND, fn, args)

    def close(self) -> None:
        """Finish what is queued, then end the thread."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._queue.put(_Job(_STOP, next(self._seq), None, (), None, None))
            self._thread = None

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            if job.priority == _STOP:
                return
            if job.batch is None:
                if getattr(job.fn, "group_safe", False):
                    self._run_group(self._gather(job, lambda j: getattr(j.fn, "group_safe",
                                                                        False)))
                else:
                    self._run_one(job)
                continue
            self._run_batch(self._gather(job, lambda j, b=job.batch: j.batch is b))

    def _gather(self, job: _Job, fits: Callable[[_Job], bool]) -> list[_Job]:
        """``job`` and the jobs queued right behind it that ``fits`` accepts."""
        jobs = [job]
        while len(jobs) < self.max_batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt.priority == _STOP or not fits(nxt):
                self._queue.put(nxt)  # keeps its place: ordering is by (priority, seq)
                break
            jobs.append(nxt)
        return jobs

    @staticmethod
    def _deliver(job: _Job, result: Any, error: BaseException | None) -> None:
        try:
            job.loop.call_soon_threadsafe(_resolve, job.future, result, error)
        except RuntimeError:
            pass  # that event loop is closed: nobody is waiting any more

    def _run_one(self, job: _Job) -> None:
        result, error = None, None
        try:
            result = job.fn(*job.args)
        except BaseException as exc:  # noqa: BLE001  handed to the awaiting coroutine
            error = exc
        self._deliver(job, result, error)

    def _run_group(self, jobs: list[_Job]) -> None:
        if len(jobs) == 1:
            self._run_one(jobs[0])
            return
        results: list[Any] = []
        try:
            with shared_transaction():
                for job in jobs:
                    results.append(job.fn(*job.args))
        except BaseException as exc:  # noqa: BLE001  handed to the awaiting coroutines
            if len(results) < len(jobs):
                # A job raised and the group was rolled back: nothing of it was written.
                # Each runs again on its own, so only the one that fails hears of it.
                for job in jobs:
                    self._run_one(job)
                return
            for job in jobs:  # the commit failed: each job's outcome is that of the commit
                self._deliver(job, None, exc)
            return
        for job, result in zip(jobs, results, strict=True):
            self._deliver(job, result, None)

    def _run_batch(self, jobs: list[_Job]) -> None:
        try:
            results = jobs[0].batch([j.args for j in jobs])
        except BaseException as exc:  # noqa: BLE001  every caller in the batch hears of it
            results = [exc] * len(jobs)
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, BaseException):
                self._deliver(job, None, result)
            else:
                self._deliver(job, result, None)
