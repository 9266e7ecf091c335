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

``endpoints.yml``: ``tracker_store: {type: bot.store.tracker_store.LineTrackerStore, url: ...}``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List, Optional, Text

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy import insert


class LineTrackerStore(SQLTrackerStore):
    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        return await asyncio.to_thread(self._load, sender_id, False)

    async def retrieve_full_tracker(
        self, conversation_id: Text
    ) -> Optional[DialogueStateTracker]:
        return await asyncio.to_thread(self._load, conversation_id, True)

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        await asyncio.to_thread(self._store_new_events, tracker)

    def _load(self, sender_id: Text, all_sessions: bool) -> Optional[DialogueStateTracker]:
        with self.session_scope() as session:
            rows = self._event_query(
                session, sender_id, fetch_events_from_all_sessions=all_sessions
            ).all()
            events = [json.loads(row.data) for row in rows]
        if not self.domain or not events:
            return None
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)

    def _store_new_events(self, tracker: DialogueStateTracker) -> None:
        with self.session_scope() as session:
            rows: List[Dict[str, Any]] = []
            # Events already stored for this session are counted, as Rasa does, so a tracker
            # saved twice never stores an event twice.
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                rows.append({
                    "sender_id": tracker.sender_id,
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
