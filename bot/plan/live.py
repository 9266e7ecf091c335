"""Which conversations are building a plan, known without a query on every turn.

The channels see every message of the line; a plan is being built in a handful of
conversations at most. So, as the feedback survey's view does (``bot/feedback/live.py``), the
channels ask ``LivePlans.needs_lookup`` first and read the plan's tables only when it says so:
the message is a plan word (PLAN, PLAN EDIT ...: a session only ever starts with one), or it
shows risk (so building always pauses on it, whichever process started it), or the
conversation is in the set of sessions this process last read (at most ``refresh_s`` old; a
step handled in this process updates it at once). Anything else goes to the dialogue.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, FrozenSet, Optional

from bot.plan.flow import could_be_plan_word


class LivePlans:
    """A per-process view of the conversations with a plan session; ``read`` (the store's
    ``live_conversations``) is called at most once per ``refresh_s``, by one thread at once,
    never under the lock the event loop takes."""

    def __init__(self, read: Callable[[], FrozenSet[str]], refresh_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._reading = threading.Lock()
        self._live: FrozenSet[str] = frozenset()
        self._notes: Dict[str, tuple[bool, float]] = {}  # conversation -> (live, when)
        self._read_at: Optional[float] = None

    def _due(self) -> bool:
        return self._read_at is None or self._clock() - self._read_at >= self.refresh_s

    def _has(self, conversation_id: str) -> bool:
        note = self._notes.get(conversation_id)
        return note[0] if note is not None else conversation_id in self._live

    def known(self, conversation_id: str, text: str, shows_risk: bool = False) -> Optional[bool]:
        """``needs_lookup`` when it needs no database read; None when the set is due a read."""
        if shows_risk or could_be_plan_word(text):
            return True
        with self._lock:
            if self._due():
                return None
            return self._has(conversation_id)

    def needs_lookup(self, conversation_id: str, text: str, shows_risk: bool = False) -> bool:
        if shows_risk or could_be_plan_word(text):
            return True
        with self._reading:
            with self._lock:
                due = self._due()
            if due:
                started = self._clock()
                live = self._read()
                with self._lock:
                    self._live, self._read_at = live, started
                    # A note made while the read was under way outlives it.
                    self._notes = {c: n for c, n in self._notes.items() if n[1] >= started}
        with self._lock:
            return self._has(conversation_id)

    def note(self, conversation_id: str, live: bool) -> None:
        """What this process just did: a session started or went on (live), or ended."""
        with self._lock:
            self._notes[conversation_id] = (live, self._clock())


_views: Dict[str, LivePlans] = {}
_views_lock = threading.Lock()


def view() -> LivePlans:
    """The process's view for the configured database (tests switch databases)."""
    from bot.plan import store
    from bot.settings import settings

    url = settings().database_url
    with _views_lock:
        found = _views.get(url)
        if found is None:
            found = _views[url] = LivePlans(store.live_conversations)
        return found


def reset() -> None:
    with _views_lock:
        _views.clear()
