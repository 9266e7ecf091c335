"""Login rate limit: failed sign-ins per username and per client address, in memory."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class LoginLimiter:
    """Failed sign-ins allowed per username and per client address in a sliding window.

    Kept in this process's memory: the duty service runs as one process per line, and a
    restart forgetting the counts is acceptable (argon2 already makes each guess slow).
    Behind a proxy every client shares one address, so the per-address limit is set high
    enough not to lock all staff out; the per-username limit is the one that bites.
    """

    per_user: int = 5
    per_address: int = 30
    window_s: float = 15 * 60
    _failures: dict[str, deque] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> deque:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, username: str, address: str, now: Optional[float] = None) -> int:
        """Seconds until a sign-in may be tried again; 0 when it may be tried now."""
        now = time.monotonic() if now is None else now
        waits = []
        for key, limit in ((f"u:{username}", self.per_user), (f"a:{address}", self.per_address)):
            q = self._recent(key, now)
            if len(q) >= limit:
                waits.append(int(q[0] + self.window_s - now) + 1)
        return max(waits, default=0)

    def failed(self, username: str, address: str, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        self._recent(f"u:{username}", now).append(now)
        self._recent(f"a:{address}", now).append(now)

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"u:{username}", None)
