"""Which conversations have a live survey, known without a query on every turn.

The channels see every message of the line; a survey is live for a handful of conversations at
most. Asking the database on each turn cost the SMS webhook's acknowledgement its p99 target
(docs/feedback.md, "What it costs a turn"), so the channels ask ``LiveSurveys.needs_lookup``
first and take the survey's database path only when it says so:

- the conversation is in the set of live surveys this process last read (at most
  ``refresh_s`` old; an offer or an answer handled in this process updates it at once);
- or the message could answer an offer (YES, NO, SKIP, STOP and their variants), so an offer
  made a moment ago by another process (the action server's goodbye offer, the duty
  service's) is never missed when the person takes it up;
- or the message shows risk, so a live survey always ends on it.

Anything else goes to the dialogue. If an offer made elsewhere was not yet in the set, the
channels note the time (``passed``); the next look-up for that conversation lapses an offer
made before it, exactly as if the message had been read against it (an offer followed by
anything but an answer is dropped), so a later "yes" to the dialogue never starts a survey.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Callable, Dict, FrozenSet, Optional

from bot.feedback import survey
from bot.feedback.questions import normalise

# Every word that answers an offer (survey.YES and survey.NO): these always take the look-up.
OFFER_ANSWERS = survey.YES | survey.NO
# How many conversations' "went to the dialogue" times are kept (the oldest go first).
MAX_PASSED = 100_000


def could_answer_offer(text: str) -> bool:
    """An offer's answer, or a question's number (in case this process has not seen the
    survey start: another Rasa server took the YES)."""
    said = normalise(text)
    return said in OFFER_ANSWERS or (said.isdigit() and len(said) <= 2)


class LiveSurveys:
    """A per-process view of the conversations with a live survey.

    ``read`` returns the live conversation ids from the database (``store.live_conversations``);
    it is called at most once per ``refresh_s`` and never by two threads at once.
    """

    def __init__(self, read: Callable[[], FrozenSet[str]], refresh_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._live: FrozenSet[str] = frozenset()
        self._added: set[str] = set()
        self._removed: set[str] = set()
        self._read_at: Optional[float] = None
        self._passed: Dict[str, dt.datetime] = {}

    def _fresh(self) -> FrozenSet[str]:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self.refresh_s:
                self._live = self._read()
                self._read_at = now
                self._added.clear()
                self._removed.clear()
            return (self._live | self._added) - self._removed

    def needs_lookup(self, conversation_id: str, text: str, shows_risk: bool) -> bool:
        """True when the message must be read against the database's survey (see above)."""
        if shows_risk or could_answer_offer(text):
            return True
        return conversation_id in self._fresh()

    def known(self, conversation_id: str, text: str, shows_risk: bool) -> Optional[bool]:
        """``needs_lookup`` when it needs no database read; None when the set is due a read."""
        if shows_risk or could_answer_offer(text):
            return True
        with self._lock:
            if self._read_at is None or self._clock() - self._read_at >= self.refresh_s:
                return None
            return conversation_id in ((self._live | self._added) - self._removed)

    def note(self, conversation_id: str, live: bool) -> None:
        """What this process just did: an offer made (live) or a survey step handled."""
        with self._lock:
            (self._added if live else self._removed).add(conversation_id)
            (self._removed if live else self._added).discard(conversation_id)

    def went_to_dialogue(self, conversation_id: str, at: dt.datetime) -> None:
        """A message of this conversation went to the dialogue without a look-up."""
        with self._lock:
            self._passed.pop(conversation_id, None)
            self._passed[conversation_id] = at
            while len(self._passed) > MAX_PASSED:
                self._passed.pop(next(iter(self._passed)))

    def passed(self, conversation_id: str) -> Optional[dt.datetime]:
        """When a message of this conversation last went to the dialogue without a look-up."""
        with self._lock:
            return self._passed.get(conversation_id)


_views: Dict[str, LiveSurveys] = {}
_views_lock = threading.Lock()


def view() -> LiveSurveys:
    """The process's view for the configured database (tests switch databases)."""
    from bot.feedback import store
    from bot.settings import settings

    url = settings().database_url
    with _views_lock:
        found = _views.get(url)
        if found is None:
            found = _views[url] = LiveSurveys(store.live_conversations)
        return found


def reset() -> None:
    """Forget every view (tests)."""
    with _views_lock:
        _views.clear()
