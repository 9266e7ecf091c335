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
        # ``_lock`` guards the state and is never held over a database read: the event loop
        # takes it (``known``). ``_reading`` lets one thread read while others wait for it.
        self._lock = threading.Lock()
        self._reading = threading.Lock()
        self._live: FrozenSet[str] = frozenset()
        # what this process did since the last read, with when (a note made while a read is
        # under way outlives it: the read may have started before that commit)
        self._added: Dict[str, float] = {}
        self._removed: Dict[str, float] = {}
        self._read_at: Optional[float] = None
        self._passed: Dict[str, dt.datetime] = {}

    def _due(self) -> bool:
        return self._read_at is None or self._clock() - self._read_at >= self.refresh_s

    def _fresh(self) -> FrozenSet[str]:
        with self._reading:
            with self._lock:
                due = self._due()
            if due:
                started = self._clock()
                live = self._read()  # outside ``_lock``: the event loop never waits on a query
                with self._lock:
                    self._live, self._read_at = live, started
                    for notes in (self._added, self._removed):
                        for conversation in [c for c, at in notes.items() if at < started]:
                            del notes[conversation]
        with self._lock:
            return self._view()

    def _view(self) -> FrozenSet[str]:
        return (self._live | self._added.keys()) - self._removed.keys()

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
            if self._due():
                return None
            return conversation_id in self._view()

    def note(self, conversation_id: str, live: bool) -> None:
        """What this process just did: an offer made (live) or a survey step handled."""
        with self._lock:
            (self._added if live else self._removed)[conversation_id] = self._clock()
            (self._removed if live else self._added).pop(conversation_id, None)

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
