"""The background loop (``bot/store/loop.py``) that the inbox worker, the outbox sender and the
alert dispatcher run: passes, wake-ups, the gap, a failed pass, stopping."""

from __future__ import annotations

import asyncio
import logging
import time

from bot.store.loop import AT_ONCE, BackgroundLoop


class Steps:
    """A pass that records when it ran and does what the test tells it."""

    def __init__(self, *results) -> None:
        self.times: list[float] = []
        self.results = list(results)
        self.blocked = asyncio.Event()  # set while a pass is waiting in ``hold``
        self.hold: asyncio.Event | None = None
        self.finished = 0

    async def __call__(self):
        self.times.append(time.monotonic())
        result = self.results.pop(0) if self.results else None
        if self.hold is not None:
            self.blocked.set()
            await self.hold.wait()
        if isinstance(result, BaseException):
            raise result
        self.finished += 1
        return result


async def until(condition, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_passes_come_at_the_poll_and_a_wake_ends_the_nap():
    steps = Steps()
    loop = BackgroundLoop("test-loop", steps, poll_s=0.1)
    loop.start()
    try:
        await until(lambda: len(steps.times) >= 3)
        gaps = [b - a for a, b in zip(steps.times, steps.times[1:], strict=False)]
        assert all(0.08 <= g < 1.0 for g in gaps), gaps
        loop.poll_s = 60.0
        await until(lambda: len(steps.times) >= 4, timeout=1.0)  # the nap under way at 0.1 s
        await asyncio.sleep(0.2)
        before = len(steps.times)
        loop.wake()
        await until(lambda: len(steps.times) == before + 1, timeout=0.5)
    finally:
        await loop.stop()


async def test_a_wake_during_a_pass_is_kept():
    steps = Steps()
    steps.hold = asyncio.Event()
    loop = BackgroundLoop("test-loop", steps, poll_s=60.0)
    loop.start()
    try:
        await until(steps.blocked.is_set)
        loop.wake()  # work arrived while the pass was claiming
        steps.hold.set()
        await until(lambda: len(steps.times) == 2, timeout=0.5)
    finally:
        await loop.stop()


async def test_a_pass_may_ask_for_the_next_at_once_or_sooner_than_the_poll():
    steps = Steps(AT_ONCE, AT_ONCE, 0.05, None)
    loop = BackgroundLoop("test-loop", steps, poll_s=60.0)
    loop.start()
    try:
        await until(lambda: len(steps.times) == 4, timeout=1.0)
        assert steps.times[2] - steps.times[0] < 0.5  # two passes back to back, not a minute
        assert 0.04 <= steps.times[3] - steps.times[2] < 1.0  # then after 0.05 s
        await asyncio.sleep(0.3)
        assert len(steps.times) == 4  # and then at the poll: a minute
    finally:
        await loop.stop()


async def test_the_gap_holds_unless_the_wake_is_urgent():
    steps = Steps()
    loop = BackgroundLoop("test-loop", steps, poll_s=60.0, gap_s=1.0)
    loop.start()
    try:
        await until(lambda: len(steps.times) == 1)
        loop.wake()
        await until(lambda: len(steps.times) == 2, timeout=2.0)
        assert steps.times[1] - steps.times[0] >= 0.98  # an ordinary wake waits out the gap
        await asyncio.sleep(0.02)
        loop.wake(urgent=True)
        await until(lambda: len(steps.times) == 3, timeout=1.0)
        assert steps.times[2] - steps.times[1] < 0.6  # an urgent one does not
    finally:
        await loop.stop()


async def test_a_failed_pass_is_logged_without_its_message_and_the_loop_goes_on(caplog):
    caplog.set_level(logging.INFO)
    log = logging.getLogger("tests.store.loop")
    steps = Steps(RuntimeError("+447700900123 said I want to die"), None, None)
    loop = BackgroundLoop("test-loop", steps, poll_s=0.02, log=log, label="test worker")
    loop.start()
    try:
        await until(lambda: steps.finished >= 2)
        assert loop.running
    finally:
        await loop.stop()
    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert ("tests.store.loop", "ERROR",
            "test worker: pass failed (RuntimeError); retrying") in lines
    logged = "\n".join(m for _, _, m in lines) + caplog.text
    assert "+447700900123" not in logged and "die" not in logged
    assert not [r for r in caplog.records if r.exc_info]


async def test_stop_ends_a_pass_under_way_and_no_pass_runs_after_it():
    steps = Steps()
    steps.hold = asyncio.Event()  # a pass that never ends on its own
    loop = BackgroundLoop("test-loop", steps, poll_s=0.01)
    loop.start()
    await until(steps.blocked.is_set)
    assert loop.running and loop.started and not loop.stopping
    started = time.monotonic()
    await asyncio.wait_for(loop.stop(), 2.0)
    assert time.monotonic() - started < 0.5
    assert loop.stopping and not loop.running and not loop.started
    assert steps.finished == 0  # cancelled, not finished
    count = len(steps.times)
    await asyncio.sleep(0.1)
    assert len(steps.times) == count
    await loop.stop()  # again: nothing to do
    # No task of its own is left behind (nap's waiters included).
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t for t in others if not t.done()]


async def test_stop_during_the_nap_and_start_again():
    steps = Steps()
    loop = BackgroundLoop("test-loop", steps, poll_s=60.0)
    loop.start()
    loop.start()  # once only
    await until(lambda: len(steps.times) == 1)
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await asyncio.wait_for(loop.stop(), 2.0)
    assert time.monotonic() - started < 0.5
    loop.start()
    try:
        await until(lambda: len(steps.times) == 2)
        assert loop.running
    finally:
        await loop.stop()
    assert len(steps.times) == 2


async def test_the_loop_survives_a_cancellation_lost_by_the_pass():
    """A pass that swallows its cancellation (as ``wait_for`` could on 3.10) does not keep the
    loop going: ``stop`` also sets the flag the loop checks."""
    calls = []

    async def stubborn():
        calls.append(time.monotonic())
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass  # lost
        return AT_ONCE

    loop = BackgroundLoop("test-loop", stubborn, poll_s=0.01)
    loop.start()
    await until(lambda: calls)
    await asyncio.wait_for(loop.stop(), 1.0)
    assert len(calls) == 1
