"""A second event loop, in its own thread, where the SMS channel's bot turns run.

Why: a Rasa turn is mostly CPU work done inside the event loop (the NLU pipeline and the
policies run synchronously), so with turns in the Rasa server's own loop every webhook waits
behind every turn under way. Measured with the real model at 100 SMS/s on a 2-core machine,
the webhook answered Twilio after a median of 7 s (Twilio gives up at 15 s): the durable
inbox was no help if storing a message waited for the bot. With the turns here, the server's
loop only parses, checks and stores webhooks, and the turn thread gives up the GIL to it at
least every millisecond (the switch interval is lowered when the thread starts).

What runs here is only ``agent.handle_message`` and what it calls: the tracker store, the lock
store, the action server (Rasa opens an HTTP session per call), and ``SmsOutput``, whose writes
go through ``DbThread`` (which answers whichever loop asked) and whose wake-up of the sender is
handed back to the server's loop. The NLU pipeline that ``handle_message`` calls runs in
the NLU thread (``nluthread.py``), which the turn awaits. The inbox worker's bookkeeping, the
turn timeout and the fail-safe reply stay in the server's loop, so a saturated turn thread
still gets a person the emergency numbers on time.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Seconds a CPU-bound thread may hold the GIL before another thread (the one serving Twilio's
# webhook) gets it. Python's default is 5 ms; each webhook needs the GIL several times.
SWITCH_INTERVAL_S = 0.001


class TurnLoop:
    def __init__(self, name: str = "sms-turns") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            ready = threading.Event()
            self._thread = threading.Thread(
                target=self._serve, args=(ready,), name=self.name, daemon=True
            )
            self._thread.start()
            ready.wait()
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` in the turn loop and wait for it from the caller's loop.

        Cancelling the caller cancels the turn (``wrap_future`` passes it on).
        """
        if not self.running or self._loop is None:
            self.start()

        async def call() -> T:
            return await fn(*args)

        future = asyncio.run_coroutine_threadsafe(call(), self._loop)
        return await asyncio.wrap_future(future)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel what is still running there and end the thread."""
        with self._lock:
            thread, loop = self._thread, self._loop
            self._thread = None
            self._loop = None
        if thread is None or loop is None:
            return
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:
            return  # already closed
        thread.join(timeout)
        if thread.is_alive():
            logger.error("sms: the turn thread did not stop within %.0f s", timeout)
