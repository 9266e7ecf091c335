"""Risk first: a few bot turns at a time in the Rasa server, messages that show risk first.

Why: a Rasa turn is CPU work done inside an event loop. Without a gate, every message that
arrives starts its turn at once and the turns share the CPU: at 50 conversations each turn
took 50 times its own work, and a message saying "I've taken all my pills" waited behind
49 ordinary ones (`make bench`: emergency reply p99 8.3 s, first staff alert p99 7.1 s).
With the gate, at most ``TURN_SLOTS`` turns run at once (enough to keep the CPU busy while
one waits on the action server or the database); the rest wait in a queue where a message
that shows urgent or imminent risk goes before every ordinary one, and ordinary ones keep
their order. A risk message then waits for one slot, not for the whole crowd. So do the next
messages of a conversation that showed risk within the hour ("no" to "are you safe?").

This only orders work; it never changes what the assistant says or the risk the NLU reports
(no component can downgrade a risk signal). The priority comes from the line's own risk
detector (``bot/nlu/risk.py``, the one the NLU pipeline's risk guard uses, once the model has
loaded it in this process; its answers are cached so the NLU pays nothing twice) or, before
that, from the SMS channel's over-inclusive risk-word check. Every channel's turn timeout
covers the wait, so a turn stuck in the queue still ends in the fail-safe reply.

The gate is shared by the turns of every channel in the process, which run in two event loops
(the server's, and the SMS channel's turn thread): it is guarded by a thread lock, and a
waiter is woken in its own loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from rasa.core.channels.channel import UserMessage

from bot.sms.keywords import has_risk_words
from bot.nlu import risk

logger = logging.getLogger(__name__)

RISK = 0  # urgent or imminent: goes first
ORDINARY = 1


class _Waiter:
    __slots__ = ("priority", "seq", "loop", "future", "gone")

    def __init__(self, priority: int, seq: int, loop: asyncio.AbstractEventLoop,
                 future: asyncio.Future) -> None:
        self.priority = priority
        self.seq = seq
        self.loop = loop
        self.future = future
        self.gone = False  # cancelled while queued: skipped when its turn comes

    def __lt__(self, other: _Waiter) -> bool:
        return (self.priority, self.seq) < (other.priority, other.seq)


class TurnGate:
    """A semaphore with ``slots`` permits whose queue is ordered by (priority, arrival)."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a turn gate needs at least one slot")
        self.slots = slots
        self._free = slots
        self._queue: list[_Waiter] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        with self._lock:
            return sum(1 for w in self._queue if not w.gone)

    @property
    def running(self) -> int:
        with self._lock:
            return self.slots - self._free

    async def acquire(self, priority: int = ORDINARY) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free > 0 and not self._queue:
                self._free -= 1
                return
            waiter = _Waiter(priority, next(self._seq), loop, loop.create_future())
            heapq.heappush(self._queue, waiter)
        try:
            await waiter.future
        except asyncio.CancelledError:
            with self._lock:
                waiter.gone = True
            if waiter.future.done() and not waiter.future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise

    def release(self) -> None:
        with self._lock:
            while self._queue:
                waiter = heapq.heappop(self._queue)
                if waiter.gone:
                    continue
                try:
                    # The slot passes straight to the waiter (never back to the pool in
                    # between), so a newcomer cannot jump the queue.
                    waiter.loop.call_soon_threadsafe(self._grant, waiter)
                    return
                except RuntimeError:
                    continue  # its loop has closed: nobody is waiting there any more
            self._free = min(self.slots, self._free + 1)

    def _grant(self, waiter: _Waiter) -> None:
        if waiter.future.cancelled():
            self.release()
        else:
            waiter.future.set_result(None)

    @asynccontextmanager
    async def slot(self, priority: int = ORDINARY) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()


class RiskMemory:
    """Conversations that showed risk recently, so that their next messages go first too.

    A risk message is often followed by one that shows nothing on its own: "no" to "are you
    safe right now?" is the most urgent answer a person can give. For ``window_s`` after a
    message rated as risk, every message of that conversation is. Bounded (oldest forgotten
    first) and in memory: one conversation's turns run in one Rasa server.
    """

    def __init__(self, window_s: float = 3600.0, size: int = 10_000) -> None:
        self.window_s = window_s
        self.size = size
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, conversation_id: str) -> None:
        with self._lock:
            self._seen[conversation_id] = time.monotonic()
            self._seen.move_to_end(conversation_id)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)

    def recent(self, conversation_id: str) -> bool:
        with self._lock:
            at = self._seen.get(conversation_id)
            return at is not None and time.monotonic() - at < self.window_s


def priority_of(text: str | None) -> int:
    """``RISK`` when the message shows urgent or imminent risk, else ``ORDINARY``."""
    if not text:
        return ORDINARY
    if has_risk_words(text):
        return RISK  # cheap and over-inclusive: no need to ask the detector
    detector = risk.loaded_detector()
    if detector is None:
        return ORDINARY
    return RISK if detector.assess(text).level in ("urgent", "imminent") else ORDINARY


def shows_risk(text: str | None) -> bool:
    """True when the message shows urgent or imminent risk (the SMS inbox's ``risk_hint``)."""
    try:
        return priority_of(text) == RISK
    except Exception as exc:  # noqa: BLE001  unsure is risk
        logger.error("turn gate: could not rate a message (%s)", type(exc).__name__)
        return True


def recently_at_risk(conversation_id: str) -> bool:
    """True when a message of this conversation showed risk within the last hour."""
    return _memory.recent(conversation_id)


_gate: TurnGate | None = None
_memory = RiskMemory()
_gate_lock = threading.Lock()


def shared_gate() -> TurnGate:
    """The process's one gate, sized by ``TURN_SLOTS``."""
    global _gate
    with _gate_lock:
        if _gate is None:
            from bot.settings import settings

            _gate = TurnGate(settings().turn_slots)
        return _gate


def reset() -> None:
    """Forget the process's gate and risk memory (tests)."""
    global _gate, _memory
    with _gate_lock:
        _gate = None
        _memory = RiskMemory()


Handler = Callable[[UserMessage], Awaitable[Any]]

# Where a message's arrival is kept: Rasa stores a message's metadata with its user event, so
# the duty service's turn latency (bot/duty/metrics.py) starts its clock here, not when the
# turn begins after the queue. Epoch seconds, as the tracker's own timestamps.
ARRIVED_AT = "arrived_at"


def mark_arrival(message: UserMessage, now: float | None = None) -> None:
    """Stamp ``message.metadata["arrived_at"]``: when the line received the message.

    For SMS, the moment the webhook stored it in the inbox (the worker passes it as
    ``metadata.sms.received_at``), so the inbox wait counts too; for any other channel, now,
    before the gate's queue. Always overwritten: metadata from a web chat client is the
    client's, and must not set the line's own measurements.
    """
    now = time.time() if now is None else now
    metadata = message.metadata if isinstance(message.metadata, dict) else {}
    arrived = now
    if message.input_channel == "sms":
        sms = metadata.get("sms")
        received = sms.get("received_at") if isinstance(sms, dict) else None
        if isinstance(received, (int, float)) and not isinstance(received, bool) and received <= now:
            arrived = float(received)
    metadata[ARRIVED_AT] = arrived
    message.metadata = metadata


def gated(handler: Handler, gate: TurnGate | None = None) -> Handler:
    """``handler`` run under the gate, the message's priority decided before it queues."""

    async def run(message: UserMessage) -> Any:
        mark_arrival(message)
        g = gate or shared_gate()
        conversation = message.sender_id or ""
        priority = RISK if shows_risk(message.text) else ORDINARY
        if priority == RISK:
            _memory.remember(conversation)
        elif _memory.recent(conversation):
            priority = RISK
        async with g.slot(priority):
            return await handler(message)

    return run
