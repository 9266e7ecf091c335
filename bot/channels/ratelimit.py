"""Per-sender token bucket: slows a flood of messages, never drops one.

The worker asks before it starts a turn. When the bucket is empty the message simply stays in
the inbox and is taken on a later pass, so a flood is answered more slowly, in order, and
completely. Messages with risk words never ask (see ``InboxWorker``).

The buckets live in the process: with several Rasa servers each slows a flood on its own,
which is enough for its purpose (sparing the dialogue and the SMS bill, not security).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        capacity: float = 5.0,
        refill_per_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or refill_per_s <= 0:
            raise ValueError("capacity must be >= 1 and refill_per_s > 0")
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        # The worker consults the bucket from a database thread.
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.refill_per_s)

    def try_take(self, key: str) -> bool:
        """Take a token for ``key`` if one is there; False means "later", never "drop"."""
        with self._lock:
            now = self._clock()
            tokens = self._level(key, now)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return True
            self._buckets[key] = (tokens, now)
            self._prune(now)
            return False

    def wait_s(self, key: str) -> float:
        """Seconds until ``key`` has a token again (0 when it has one now)."""
        with self._lock:
            return max(0.0, (1.0 - self._level(key, self._clock())) / self.refill_per_s)

    def _prune(self, now: float) -> None:
        # Buckets that have refilled carry no information; forget them so the map stays small.
        if len(self._buckets) > 10_000:
            for key in [k for k in self._buckets if self._level(k, now) >= self.capacity]:
                del self._buckets[key]
