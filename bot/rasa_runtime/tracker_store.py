"""Rasa's SQL tracker store with its database work off the Rasa server's event loop.

Rasa 3.6's ``SQLTrackerStore`` has async methods whose bodies are synchronous: every turn's
retrieve (a query, JSON parsing, replaying the events) and save (a count query, inserts, a
commit) ran in the server's one event loop, which waited for the database with nothing else
able to run. py-spy under `make bench` at 50 conversations put a third of the Rasa server's
main-thread samples in the tracker store, 12% of them waiting on PostgreSQL
(``do_commit``/``do_execute``/``do_rollback``). Here the same work runs in a worker thread,
so while one turn waits for its tracker another turn's NLU runs.

Same table, same rows, same queries as Rasa's store (the duty service's transcript view and
watchers read that table): only where the work runs changes, and new events are inserted in
one statement rather than one ORM object each. Safe because Rasa's lock store lets one turn at
a time touch a conversation, and the processor awaits ``save``/``retrieve`` before it touches
the tracker again.

It also remembers the current session of the conversations it served last (``cache_size``,
256 by default), because the same py-spy run put another 14% of the main thread in queries
whose answer this process already knew: the events it had just written (retrieve) and how
many there were (Rasa counts them again before every save). A conversation it remembers is
read from memory and saved without the count; one it does not is read from the database.
That is only true while this process is the only writer of the conversation: with
``REDIS_URL`` set, several Rasa servers share the line and the memory is off. A save that
fails forgets the conversation, so the next one counts again.

It reads Rasa's store through two of its private methods (``_event_query``,
``_additional_events``), hence its place in ``bot/rasa_runtime``: with ``RASA_PATCHES=off``
or on an untested Rasa (``bot.rasa_runtime.install``) it is Rasa's ``SQLTrackerStore`` as shipped
(``stock``), on the same table.

``endpoints.yml``: ``tracker_store: {type: bot.rasa_runtime.tracker_store.LineTrackerStore, url: ...}``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from typing import Any, Dict, List, NamedTuple, Optional, Text

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy import insert

from bot import settings as settings_module


class _Stored(NamedTuple):
    type_name: str
    timestamp: Optional[float]
    data: str  # the JSON text, as in the table


def _current_session(stored: List[_Stored]) -> List[_Stored]:
    """The events Rasa's query would return: from the latest ``session_started`` on, by
    timestamp, as ``SQLTrackerStore._event_query`` selects them."""
    starts = [e.timestamp for e in stored
              if e.type_name == SessionStarted.type_name and e.timestamp is not None]
    if not starts:
        return stored
    since = max(starts)
    return [e for e in stored if e.timestamp is not None and e.timestamp >= since]


class LineTrackerStore(SQLTrackerStore):
    # True: every method is Rasa's own (set by bot.rasa_runtime.install without the speed-ups).
    stock = False

    def __init__(self, *args: Any, cache_size: int = 256, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Several Rasa servers (REDIS_URL) may each write one conversation: no memory then.
        self.cache_size = 0 if settings_module.settings().redis_url else int(cache_size)
        self._sessions: "OrderedDict[str, List[_Stored]]" = OrderedDict()
        self._lock = threading.Lock()

    # -- memory of recent conversations ------------------------------------------------------

    def _remembered(self, sender_id: Text) -> Optional[List[_Stored]]:
        with self._lock:
            known = self._sessions.get(sender_id)
            if known is not None:
                self._sessions.move_to_end(sender_id)
            return known

    def _remember(self, sender_id: Text, stored: List[_Stored]) -> None:
        if not self.cache_size:
            return
        with self._lock:
            self._sessions[sender_id] = stored
            self._sessions.move_to_end(sender_id)
            while len(self._sessions) > self.cache_size:
                self._sessions.popitem(last=False)

    def _forget(self, sender_id: Text) -> None:
        with self._lock:
            self._sessions.pop(sender_id, None)

    # -- the store ------------------------------------------------------------------------------

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        if self.stock:
            return await super().retrieve(sender_id)
        known = self._remembered(sender_id)
        if known is not None:
            return self._tracker(sender_id, known)
        return await asyncio.to_thread(self._load, sender_id, False)

    async def retrieve_full_tracker(
        self, conversation_id: Text
    ) -> Optional[DialogueStateTracker]:
        if self.stock:
            return await super().retrieve_full_tracker(conversation_id)
        return await asyncio.to_thread(self._load, conversation_id, True)

    async def save(self, tracker: DialogueStateTracker) -> None:
        if self.stock:
            return await super().save(tracker)
        await self.stream_events(tracker)
        try:
            await asyncio.to_thread(self._store_new_events, tracker)
        except BaseException:
            # Perhaps stored, perhaps not (a commit that lost its connection): count again.
            self._forget(tracker.sender_id)
            raise

    def _tracker(self, sender_id: Text, stored: List[_Stored]) -> Optional[DialogueStateTracker]:
        if not self.domain or not stored:
            return None
        events = [json.loads(e.data) for e in stored]
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)

    def _load(self, sender_id: Text, all_sessions: bool) -> Optional[DialogueStateTracker]:
        with self.session_scope() as session:
            rows = self._event_query(
                session, sender_id, fetch_events_from_all_sessions=all_sessions
            ).all()
            stored = [_Stored(r.type_name, r.timestamp, r.data) for r in rows]
        if not all_sessions:
            # Empty too: a new conversation (most of them, on a crisis line) is then saved
            # without Rasa's count, which py-spy put at a quarter of this store's CPU.
            self._remember(sender_id, stored)
        return self._tracker(sender_id, stored)

    def _store_new_events(self, tracker: DialogueStateTracker) -> None:
        sender_id = tracker.sender_id
        known = self._remembered(sender_id)
        with self.session_scope() as session:
            if known is not None:
                # What this process read or wrote last is what the table holds for this
                # session: the same count Rasa's query would give, without asking.
                new_events = list(tracker.events)[len(known):]
            else:
                new_events = list(self._additional_events(session, tracker))
                if len(new_events) == len(tracker.events):
                    known = []  # none stored before (Rasa counted 0): now exactly these
            rows: List[Dict[str, Any]] = []
            for event in new_events:
                data = event.as_dict()
                rows.append({
                    "sender_id": sender_id,
                    "type_name": event.type_name,
                    "timestamp": data.get("timestamp"),
                    "intent_name": data.get("parse_data", {}).get("intent", {}).get(
                        INTENT_NAME_KEY),
                    "action_name": data.get("name"),
                    "data": json.dumps(data),
                })
            if rows:
                session.execute(insert(self.SQLEvent.__table__), rows)
            session.commit()
        if known is not None:
            added = [_Stored(r["type_name"], r["timestamp"], r["data"]) for r in rows]
            self._remember(sender_id, _current_session(known + added))
