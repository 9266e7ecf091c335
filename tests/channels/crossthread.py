"""An event the test's loop sets and a bot turn awaits, across threads.

The SMS channel runs bot turns in their own thread and event loop (bot/channels/turnloop.py),
so a stub agent cannot await an ``asyncio.Event`` that the test sets: that event belongs to
one loop only. This one is a ``threading.Event`` that either loop can wait on.
"""

from __future__ import annotations

import asyncio
import threading


class CrossThreadEvent:
    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> bool:
        while not self._event.is_set():
            await asyncio.sleep(0.01)
        return True
